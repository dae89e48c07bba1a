"""The per-subnet summary table of a decoding run: size, compression, WER, speed."""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch.nn as nn

from allinone.decoding.result_files import summary_file
from allinone.deploy.accounting import compression_ratio, subnet_footprint
from allinone.subnet import SubnetConfig


@dataclass
class SubnetRow:
    """One line of the summary table.

    Args:
        subnet: short name.
        params: parameters the subnet uses.
        stored_bytes: bytes under the accounting rule (``allinone.deploy.accounting``).
        compression: float32 size of the full model / ``stored_bytes``.
        wer: test set -> WER in percent.
        rtf: decoding time / audio duration over all test sets in ``wer``.
        threads: torch threads used while decoding.
        decode_seconds, audio_seconds: test set -> decoding time and audio duration, so
            that a summary merged from several decoding runs keeps a true RTF (empty in
            summaries written before they were added).
        weights_mb: bytes (1e6) of the parameters and buffers the decoding process held
            for the model, packed codes at their size (None where not measured).
        peak_rss_mb: the decoding process's resident-set high-water mark in MiB after
            this subnet's test sets (None where not measured).
    """

    subnet: str
    params: int
    stored_bytes: float
    compression: float
    wer: Dict[str, float] = field(default_factory=dict)
    rtf: float = 0.0
    threads: int = 1
    decode_seconds: Dict[str, float] = field(default_factory=dict)
    audio_seconds: Dict[str, float] = field(default_factory=dict)
    weights_mb: Optional[float] = None
    peak_rss_mb: Optional[float] = None

    def add_test_set(self, test_set: str, wer: float, decode_seconds: float, audio_seconds: float) -> None:
        """Record one decoded test set and update the RTF over all of them."""
        self.wer[test_set] = wer
        self.decode_seconds[test_set] = decode_seconds
        self.audio_seconds[test_set] = audio_seconds
        self._update_rtf()

    def _update_rtf(self) -> None:
        self.rtf = sum(self.decode_seconds.values()) / max(sum(self.audio_seconds.values()), 1e-9)


def subnet_row(model: nn.Module, subnet: SubnetConfig) -> SubnetRow:
    """Size columns of ``subnet``; WER and RTF are filled in by the caller."""
    fp = subnet_footprint(model, subnet)
    return SubnetRow(subnet.name, fp.params, fp.stored_bytes, compression_ratio(model, subnet))


def format_subnet_table(rows: Sequence[SubnetRow]) -> str:
    """Markdown table, one row per subnet."""
    test_sets: List[str] = []
    for r in rows:
        test_sets += [t for t in r.wer if t not in test_sets]
    head = ["subnet", "params (M)", "stored (MB)", "compression"] + [f"WER {t}" for t in test_sets] + ["RTF"]
    memory = any(r.weights_mb is not None for r in rows)
    if memory:
        head += ["resident weights (MB)", "peak RSS (MiB)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for r in rows:
        cells = [r.subnet, f"{r.params / 1e6:.3f}", f"{r.stored_bytes / 1e6:.3f}", f"{r.compression:.2f}x"]
        cells += [f"{r.wer[t]:.2f}" if t in r.wer else "-" for t in test_sets]
        cells.append(f"{r.rtf:.4f}")
        if memory:
            cells += ["-" if v is None else f"{v:.2f}" for v in (r.weights_mb, r.peak_rss_mb)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def merge_subnet_rows(
    old: Sequence[SubnetRow], new: Sequence[SubnetRow], order: Sequence[str] = ()
) -> List[SubnetRow]:
    """``old`` updated by ``new``, so that decoding another split or subnet later adds to
    the summary of a checkpoint instead of replacing it.

    A subnet in both takes its sizes and the test sets it decoded again from ``new`` and
    keeps the others from ``old``; its RTF is recomputed over all of them when both
    recorded per-set times with the same thread count (otherwise it is ``new``'s).
    Rows follow ``order`` (e.g. the checkpoint's grid), then first appearance.
    """
    merged = {r.subnet: r for r in old}
    for n in new:
        o = merged.get(n.subnet)
        if o is None:
            merged[n.subnet] = n
            continue
        row = SubnetRow(**{**asdict(n), "wer": {**o.wer, **n.wer}})
        timed = o.decode_seconds.keys() == o.wer.keys() and n.decode_seconds.keys() == n.wer.keys()
        if timed and o.threads == n.threads:
            row.decode_seconds = {**o.decode_seconds, **n.decode_seconds}
            row.audio_seconds = {**o.audio_seconds, **n.audio_seconds}
            row._update_rtf()
        else:
            row.decode_seconds, row.audio_seconds = {}, {}
        merged[n.subnet] = row
    rank = {name: i for i, name in enumerate(order)}
    return sorted(merged.values(), key=lambda r: rank.get(r.subnet, len(rank)))


def write_subnet_summary(
    res_dir: Path, tag: str, rows: Sequence[SubnetRow], order: Sequence[str] = ()
) -> Path:
    """Write ``subnet-summary-<tag>.md`` and ``.json``, merged into an existing summary of
    the same tag (:func:`merge_subnet_rows`, rows in ``order``); returns the JSON path."""
    res_dir = Path(res_dir)
    res_dir.mkdir(parents=True, exist_ok=True)
    path = summary_file(res_dir, tag, "json")
    rows = merge_subnet_rows(read_subnet_summary(path) if path.is_file() else [], rows, order)
    summary_file(res_dir, tag, "md").write_text(format_subnet_table(rows) + "\n")
    path.write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    return path


def read_subnet_summary(path: Path) -> List[SubnetRow]:
    return [SubnetRow(**d) for d in json.loads(Path(path).read_text())]
