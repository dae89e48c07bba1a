"""The per-subnet summary table of a decoding run: size, compression, WER, speed."""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Sequence

import torch.nn as nn

from allinone.quant.accounting import float_model_bytes, subnet_footprint
from allinone.subnet import SubnetConfig


@dataclass
class SubnetRow:
    """One line of the summary table.

    Args:
        subnet: short name.
        params: parameters the subnet uses.
        stored_bytes: bytes under the accounting rule (``allinone.quant.accounting``).
        compression: float32 size of the full model / ``stored_bytes``.
        wer: test set -> WER in percent.
        rtf: decoding time / audio duration over all test sets.
        threads: torch threads used while decoding.
    """

    subnet: str
    params: int
    stored_bytes: float
    compression: float
    wer: Dict[str, float] = field(default_factory=dict)
    rtf: float = 0.0
    threads: int = 1


def subnet_row(model: nn.Module, subnet: SubnetConfig) -> SubnetRow:
    """Size columns of ``subnet``; WER and RTF are filled in by the caller."""
    fp = subnet_footprint(model, subnet)
    return SubnetRow(subnet.name, fp.params, fp.stored_bytes, float_model_bytes(model) / fp.stored_bytes)


def format_subnet_table(rows: Sequence[SubnetRow]) -> str:
    """Markdown table, one row per subnet."""
    test_sets: List[str] = []
    for r in rows:
        test_sets += [t for t in r.wer if t not in test_sets]
    head = ["subnet", "params (M)", "stored (MB)", "compression"] + [f"WER {t}" for t in test_sets] + ["RTF"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for r in rows:
        cells = [r.subnet, f"{r.params / 1e6:.3f}", f"{r.stored_bytes / 1e6:.3f}", f"{r.compression:.2f}x"]
        cells += [f"{r.wer[t]:.2f}" if t in r.wer else "-" for t in test_sets]
        cells.append(f"{r.rtf:.4f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def merge_subnet_rows(old: Sequence[SubnetRow], new: Sequence[SubnetRow]) -> List[SubnetRow]:
    """``old`` updated by ``new``: a subnet in both keeps the WER of test sets only ``old``
    decoded and takes everything else (sizes, RTF, the WERs decoded again) from ``new``;
    subnets only in ``new`` are appended. So decoding another split or subnet later adds to
    the summary of a checkpoint instead of replacing it."""
    fresh = {r.subnet: r for r in new}
    out = []
    for r in old:
        if r.subnet in fresh:
            n = fresh.pop(r.subnet)
            r = SubnetRow(**{**asdict(n), "wer": {**r.wer, **n.wer}})
        out.append(r)
    return out + [r for r in new if r.subnet in fresh]


def write_subnet_summary(res_dir: Path, tag: str, rows: Sequence[SubnetRow]) -> Path:
    """Write ``subnet-summary-<tag>.md`` and ``.json``, merged into an existing summary of
    the same tag (:func:`merge_subnet_rows`); returns the JSON path."""
    res_dir = Path(res_dir)
    res_dir.mkdir(parents=True, exist_ok=True)
    existing = res_dir / f"subnet-summary-{tag}.json"
    if existing.is_file():
        rows = merge_subnet_rows(read_subnet_summary(existing), rows)
    (res_dir / f"subnet-summary-{tag}.md").write_text(format_subnet_table(rows) + "\n")
    path = res_dir / f"subnet-summary-{tag}.json"
    path.write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    return path


def read_subnet_summary(path: Path) -> List[SubnetRow]:
    return [SubnetRow(**d) for d in json.loads(Path(path).read_text())]
