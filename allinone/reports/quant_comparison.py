"""Quantization methods side by side: bits, packed size, WER, losslessness, compression time.

One row per compression run directory. Inputs are what the recipe scripts write:
``export.py``'s ``<subnet>.json`` next to the packed file, ``decode.py --packed-model``'s
summary and recogs (so every WER is that of the packed file), ``train_seconds`` in the
run's last ``epoch-N.pt`` (plus its search run's for two-stage rows), and the decoded
float model the rows are tested against with MAPSSWE.
"""

import json
from pathlib import Path
from typing import Dict, Optional

from allinone.quant.mixed import format_bit_map
from allinone.reports.criterion import SINGLE_SEED_NOTE
from allinone.reports.decodings import load_decoded, mapsswe_per_set
from allinone.reports.run_records import last_epoch, train_seconds


def quant_row(
    name: str, exp_dir: Path, method: str, baseline, alpha: float, search_dir: Optional[Path] = None
) -> Dict:
    """One table row for the compression run in ``exp_dir`` (``search_dir``: its bit-map search)."""
    exp_dir = Path(exp_dir)
    (decoded,) = load_decoded(exp_dir, method, None).values()
    # export.py's summary is the JSON file beside the packed file that records its size
    infos = (json.loads(p.read_text()) for p in sorted(exp_dir.glob("*.json")))
    info = next((i for i in infos if isinstance(i, dict) and "file_bytes" in i), None)
    if info is None:
        raise FileNotFoundError(f"no export.py summary (<subnet>.json) in {exp_dir}")
    seconds = train_seconds(exp_dir, last_epoch(exp_dir))
    cpu = train_seconds(exp_dir, last_epoch(exp_dir), "train_cpu_seconds")
    if search_dir is not None:
        seconds += train_seconds(search_dir, last_epoch(search_dir))
        cpu += train_seconds(search_dir, last_epoch(search_dir), "train_cpu_seconds")
    vs_float = mapsswe_per_set(decoded, baseline, alpha)
    return {
        "method": name,
        "subnet": decoded.name,
        "average_bits": info["average_bits"],
        "bit_map": info.get("bit_map"),
        "stored_mb": info["file_bytes"] / 1e6,
        "accounted_mb": info["accounted_bytes"] / 1e6,
        "compression": decoded.compression,
        "wer": decoded.wer,
        "vs_float": vs_float,
        "lossless": not any(t["better"] == "B" for t in vs_float.values()),
        "compression_seconds": seconds,
        "compression_cpu_seconds": cpu,
    }


def compare_quantizers(
    float_dir: Path,
    float_epoch: int,
    runs: Dict[str, Path],
    method: str,
    searches: Optional[Dict[str, Path]] = None,
    alpha: float = 0.05,
) -> Dict:
    """Every row, the float baseline and the headline comparisons.

    Args:
        float_dir, float_epoch: the decoded float model every row is tested against.
        runs: row name -> compression run directory (exported and decoded).
        method: decoding method directory name.
        searches: row name -> the search run a two-stage row's bit map came from.
    """
    searches = searches or {}
    (baseline,) = [
        d for d in load_decoded(float_dir, method, float_epoch).values() if abs(d.compression - 1) < 1e-9
    ]
    rows = [quant_row(n, d, method, baseline, alpha, searches.get(n)) for n, d in runs.items()]

    def best(prefix: str) -> Optional[Dict]:
        ok = [r for r in rows if r["method"].startswith(prefix) and r["lossless"]]
        return max(ok, key=lambda r: r["compression"]) if ok else None

    return {
        "method": method,
        "alpha": alpha,
        "float": {
            "dir": str(float_dir),
            "epoch": float_epoch,
            "wer": baseline.wer,
            "mb": baseline.stored_bytes / 1e6,
        },
        "rows": rows,
        "best_lossless_uniform": best("uniform"),
        "best_lossless_one_stage": best("one-stage"),
    }


def format_quant_report(report: Dict) -> str:
    rows = report["rows"]
    test_sets = list(report["float"]["wer"])
    head = ["method", "avg bits", "stored MB (packed file)", "compression"]
    head += [f"WER {t}" for t in test_sets] + ["p vs float", "lossless", "compression wall / CPU (s)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    fw = report["float"]["wer"]
    lines.append(
        "| float (baseline) | 32 | "
        + f"{report['float']['mb']:.3f} | 1.00x | "
        + " | ".join(f"{fw[t]:.2f}" for t in test_sets)
        + " | - | - | - |"
    )
    for r in rows:
        p = ", ".join(
            f"{r['vs_float'][t]['p']:.3f}" + {"A": "+", "B": "-", "same": ""}[r["vs_float"][t]["better"]]
            for t in test_sets
        )
        cells = [r["method"], f"{r['average_bits']:.2f}", f"{r['stored_mb']:.3f}", f"{r['compression']:.2f}x"]
        cells += [f"{r['wer'][t]:.2f}" for t in test_sets]
        cells += [p, "yes" if r["lossless"] else "no"]
        cells.append(f"{r['compression_seconds']:.0f} / {r['compression_cpu_seconds']:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"p: MAPSSWE against the float model per test set ({', '.join(test_sets)}); '-' marks a "
        f"significantly worse row, '+' a better one (p < {report['alpha']}). Sizes and WERs are those "
        "of the packed files.",
        SINGLE_SEED_NOTE,
    ]
    for key, label in (("best_lossless_uniform", "uniform"), ("best_lossless_one_stage", "one-stage")):
        r = report[key]
        lines.append(
            f"- Largest lossless {label}: "
            + ("none" if r is None else f"{r['method']} at {r['compression']:.2f}x")
        )
    maps = [r for r in rows if r["bit_map"]]
    for r in maps:
        lines += ["", f"Per-layer bits of {r['method']} (average {r['average_bits']:.2f}):", "```"]
        lines += format_bit_map(r["bit_map"]).splitlines()
        lines.append("```")
    return "\n".join(lines) + "\n"


def write_quant_report(report: Dict, out_dir: Path) -> None:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "comparison.md").write_text(format_quant_report(report))
    (out_dir / "comparison.json").write_text(json.dumps(report, indent=2) + "\n")
