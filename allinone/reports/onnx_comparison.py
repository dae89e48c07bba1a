"""The deployment table: every exported subnet in torch and through sherpa-onnx, fp32 and int8.

Per subnet, one row for the torch decoding (``decode.py``, stored features) and one per
ONNX variant decoded by ``onnx_decode.py``: the files' size on disk, the WER per test set,
the share of utterances whose hypothesis is word for word torch's, the MAPSSWE p-value
against torch (marked "worse" when significant at 0.05 with more errors), and the
real-time factor. Sizes come from ``export-onnx.py``'s ``<subnet>-onnx.json``.
"""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from allinone.decoding.result_files import result_file
from allinone.reports.decodings import load_decoded
from allinone.utils.scoring import Result, compute_wer, read_recogs
from allinone.utils.significance import mapsswe

MB = 1e6


@dataclass
class OnnxSystemRow:
    """One way of running one subnet: torch or an ONNX variant."""

    subnet: str
    system: str
    bytes: float
    rtf: float
    wer: Dict[str, float] = field(default_factory=dict)
    agreement: Dict[str, float] = field(default_factory=dict)
    p_value: Dict[str, float] = field(default_factory=dict)
    worse: Dict[str, bool] = field(default_factory=dict)


def agreement(a: Sequence[Result], b: Sequence[Result]) -> float:
    """Share of the utterances of ``a`` whose hypothesis in ``b`` is the same word sequence."""
    hyps = {u: list(h) for u, _, h in b}
    same = sum(1 for u, _, h in a if hyps.get(u) == list(h))
    return same / max(len(a), 1)


def _onnx_results(res_dir: Path, key: str, test_set: str, suffix: str) -> List[Result]:
    return read_recogs(result_file(res_dir, "recogs", test_set, suffix, key))


def compare_onnx(
    exp_dir: Path,
    epoch: Optional[int],
    onnx_dir: Path,
    subnets: Sequence[str],
    test_sets: Sequence[str],
    torch_method: str,
    onnx_res_dir: Path,
    key: str,
    variants: Sequence[str] = ("fp32", "int8", "int8-codes"),
) -> List[OnnxSystemRow]:
    """The table's rows, subnet by subnet: torch first, then each variant that was decoded.

    Args:
        exp_dir, epoch, torch_method: where ``decode.py`` wrote the torch decoding.
        onnx_dir: ``export-onnx.py``'s output directory (the ``<subnet>-onnx.json`` files).
        onnx_res_dir, key: where ``onnx_decode.py`` wrote, and its decoding key.
    """
    torch_runs = load_decoded(exp_dir, torch_method, epoch)
    rows = []
    for name in subnets:
        sizes = json.loads((Path(onnx_dir) / f"{name}-onnx.json").read_text())
        ref = torch_runs[name]
        base = OnnxSystemRow(name, "torch (.aio)", sizes["aio_bytes"], ref.rtf, dict(ref.wer))
        for t in test_sets:
            base.agreement[t] = 1.0
        rows.append(base)
        for variant in variants:
            suffix = f"{name}-{variant}"
            summary_path = Path(onnx_res_dir) / f"onnx-summary-{key}-{suffix}.json"
            if f"{variant}_bytes" not in sizes or not summary_path.is_file():
                continue
            summary = json.loads(summary_path.read_text())["test_sets"]
            audio = sum(s["audio_seconds"] for s in summary.values())
            rtf = sum(s["decode_seconds"] for s in summary.values()) / max(audio, 1e-9)
            row = OnnxSystemRow(name, f"sherpa-onnx {variant}", sizes[f"{variant}_bytes"], rtf)
            for t in test_sets:
                results = _onnx_results(onnx_res_dir, key, t, suffix)
                row.wer[t] = compute_wer(results).wer
                row.agreement[t] = agreement(ref.results[t], results)
                test = mapsswe(ref.results[t], results)
                row.p_value[t] = test.p_value
                row.worse[t] = test.significant() and test.errors_b > test.errors_a
            rows.append(row)
    return rows


def _p(row: OnnxSystemRow, t: str) -> str:
    if t not in row.p_value:
        return "-"
    return f"{row.p_value[t]:.3f}" + (" (worse)" if row.worse.get(t) else "")


def onnx_table(rows: Sequence[OnnxSystemRow], test_sets: Sequence[str]) -> str:
    """Markdown table of ``rows``."""
    head = ["subnet", "system", "size (MB)"]
    for t in test_sets:
        head += [f"{t} WER", f"{t} same hyp.", f"{t} p vs torch"]
    head.append("RTF (1 thread)")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.subnet, r.system, f"{r.bytes / MB:.3f}"]
        for t in test_sets:
            cells += [f"{r.wer[t]:.2f}", f"{100 * r.agreement[t]:.1f}%", _p(r, t)]
        cells.append(f"{r.rtf:.4f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_onnx_report(rows: Sequence[OnnxSystemRow], test_sets: Sequence[str], out_dir: Path) -> Path:
    """``comparison.md`` and ``comparison.json`` in ``out_dir``; returns the markdown's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "comparison.json").write_text(json.dumps([asdict(r) for r in rows], indent=1) + "\n")
    md = out_dir / "comparison.md"
    md.write_text(onnx_table(rows, test_sets))
    return md
