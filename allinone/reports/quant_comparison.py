"""Quantization methods side by side: bits, packed size, WER, losslessness, compression time.

One row per compression method, trained once per seed. Inputs are what the recipe
scripts write: ``export.py``'s ``<subnet>.json`` next to the packed file,
``decode.py --packed-model``'s summary and recogs (so every WER is that of the packed
file), ``train_seconds`` in the run's last ``epoch-N.pt`` (plus its search run's for
two-stage rows), and the decoded float model the rows are tested against.

With one seed every verdict is MAPSSWE of the row against the float model. With two or
more seeds (seed ``i`` of a row compresses seed ``i`` of the float model) the seeds pool
per (row, test set) as :mod:`allinone.reports.criterion` decides, and the noise floor
is what the same test flags between seed 0 and seed 1 of the float model and of every
row: trainings of the identical recipe that differ only in their seed.
"""

import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from allinone.decoding.result_files import result_dir, summary_file
from allinone.decoding.subnet_report import read_subnet_summary
from allinone.quant.mixed import format_bit_map
from allinone.reports.criterion import SINGLE_SEED_NOTE, noise_floor
from allinone.reports.decodings import DecodedSubnet, load_decoded, mapsswe_per_set, pool_or_single
from allinone.reports.run_records import check_distinct_seeds, last_epoch, train_seconds


def _export_info(exp_dir: Path) -> Dict:
    """``export.py``'s summary: the JSON file beside the packed file that records its size."""
    infos = (json.loads(p.read_text()) for p in sorted(exp_dir.glob("*.json")))
    info = next((i for i in infos if isinstance(i, dict) and "file_bytes" in i), None)
    if info is None:
        raise FileNotFoundError(f"no export.py summary (<subnet>.json) in {exp_dir}")
    return info


def _seconds(exp_dir: Path, search_dir: Optional[Path], key: str) -> float:
    """Compression time of one run: its training, plus its bit-map search's for two-stage rows."""
    total = train_seconds(exp_dir, last_epoch(exp_dir), key)
    if search_dir is not None:
        total += train_seconds(search_dir, last_epoch(search_dir), key)
    return total


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _kept_codes_decoding(exp_dir: Path, method: str) -> Optional[Dict]:
    """Speed and memory of ``decode.py --packed-model --keep-codes`` in ``exp_dir``; None
    when that decoding was not run."""
    found = sorted(result_dir(exp_dir, method).glob(summary_file(".", "*-packed-codes").name))
    if not found:
        return None
    (row,) = read_subnet_summary(found[-1])
    return {"rtf": row.rtf, "weights_mb": row.weights_mb, "peak_rss_mb": row.peak_rss_mb}


def _memory(decoded: Sequence[DecodedSubnet], exp_dirs: Sequence[Path], method: str) -> Optional[Dict]:
    """Means over the seeds decoded with their codes kept (``seeds``: how many): the RTF of
    the float-weight decoding of the packed file, and the RTF, resident weights and peak RSS
    with the codes kept. None when no seed has that decoding."""
    kept = [(d, k) for d, k in zip(decoded, (_kept_codes_decoding(e, method) for e in exp_dirs)) if k]
    kept = [(d, k) for d, k in kept if k["weights_mb"] is not None]
    if not kept:
        return None
    out = {"seeds": len(kept), "rtf_float_weights": _mean([d.rtf for d, _ in kept])}
    for key in ("rtf", "weights_mb", "peak_rss_mb"):
        values = [k[key] for _, k in kept if k[key] is not None]
        out[key] = _mean(values) if values else None
    return out


def quant_row(
    name: str,
    exp_dirs: Sequence[Path],
    method: str,
    floats: Sequence[DecodedSubnet],
    alpha: float,
    search_dirs: Optional[Sequence[Path]] = None,
) -> Dict:
    """One table row: the compression runs ``exp_dirs`` (one per seed) of method ``name``.

    Args:
        floats: the decoded float model, one per seed, in the order of ``exp_dirs``.
        search_dirs: per seed, the bit-map search a two-stage row's map came from.
    Sizes, bits and times are means over the seeds (a learned bit map may differ between
    seeds); WER and the verdict are the seeds pooled.
    """
    exp_dirs = [Path(d) for d in exp_dirs]
    search_dirs = list(search_dirs) if search_dirs else [None] * len(exp_dirs)
    if len(search_dirs) != len(exp_dirs):
        raise ValueError(f"{name}: {len(exp_dirs)} runs but {len(search_dirs)} search runs")
    per_seed = []
    for d in exp_dirs:
        (decoded,) = load_decoded(d, method, None).values()
        per_seed.append({"float": decoded})  # one key, so that the seeds pool by it
    infos = [_export_info(d) for d in exp_dirs]
    pooled = pool_or_single(per_seed)["float"]
    baseline = pool_or_single([{"float": f} for f in floats])["float"]
    vs_float = mapsswe_per_set(pooled, baseline, alpha)
    seeds = [mapsswe_per_set(run["float"], f, alpha) for run, f in zip(per_seed, floats)]
    return {
        "method": name,
        "subnet": pooled.name,
        "runs": [str(d) for d in exp_dirs],
        "average_bits": _mean([i["average_bits"] for i in infos]),
        "bit_map": infos[0].get("bit_map"),
        "bit_maps": [i.get("bit_map") for i in infos],
        "average_bits_per_seed": [i["average_bits"] for i in infos],
        "stored_mb": _mean([i["file_bytes"] / 1e6 for i in infos]),
        "accounted_mb": _mean([i["accounted_bytes"] / 1e6 for i in infos]),
        "compression": _mean([run["float"].compression for run in per_seed]),
        "wer": pooled.wer,
        "wer_per_seed": [run["float"].wer for run in per_seed],
        "vs_float": vs_float,
        "vs_float_per_seed": seeds,
        "lossless": not any(t["better"] == "B" for t in vs_float.values()),
        "worse_under_every_seed": [
            t for t in vs_float if len(seeds) > 1 and all(s[t]["better"] == "B" for s in seeds)
        ],
        "compression_seconds": _mean(
            [_seconds(d, s, "train_seconds") for d, s in zip(exp_dirs, search_dirs)]
        ),
        "compression_cpu_seconds": _mean(
            [_seconds(d, s, "train_cpu_seconds") for d, s in zip(exp_dirs, search_dirs)]
        ),
        "kept_codes": _memory([run["float"] for run in per_seed], exp_dirs, method),
        "_per_seed": [run["float"] for run in per_seed],
    }


def _float_memory(floats: Sequence[DecodedSubnet]) -> Optional[Dict]:
    """The float checkpoints' decoding: RTF, resident weights and peak RSS (seed means);
    None where a summary did not record the memory."""
    if any(f.weights_mb is None for f in floats):
        return None
    peaks = [f.peak_rss_mb for f in floats]
    return {
        "rtf": _mean([f.rtf for f in floats]),
        "weights_mb": _mean([f.weights_mb for f in floats]),
        "peak_rss_mb": _mean(peaks) if all(peaks) else None,
    }


def _float_model(float_dir: Path, method: str, epoch: int) -> DecodedSubnet:
    """The float full model among the subnets ``decode.py`` decoded in ``float_dir``."""
    (baseline,) = [
        d for d in load_decoded(float_dir, method, epoch).values() if abs(d.compression - 1) < 1e-9
    ]
    return baseline


def compare_quantizers(
    float_dirs: Sequence[Path],
    float_epoch: int,
    runs: Dict[str, Sequence[Path]],
    method: str,
    searches: Optional[Dict[str, Sequence[Path]]] = None,
    alpha: float = 0.05,
) -> Dict:
    """Every row, the float baseline, the noise floor and the headline comparisons.

    Args:
        float_dirs, float_epoch: the decoded float model every row is tested against, one
            training per seed.
        runs: row name -> its compression run directories (exported and decoded), one per
            seed, seed ``i`` initialised from ``float_dirs[i]``.
        method: decoding method directory name.
        searches: row name -> the search runs (one per seed) a two-stage row's bit map
            came from.
    Raises:
        ValueError: a row with another number of runs than there are float models, or
            runs to pool that share a training seed.
    """
    float_dirs = [Path(d) for d in float_dirs]
    searches = searches or {}
    n = len(float_dirs)
    for name, dirs in runs.items():
        if len(dirs) != n:
            raise ValueError(f"{name}: {len(dirs)} runs for {n} float models (one run per seed)")
        if n > 1:
            check_distinct_seeds(
                f"runs of {name} to pool", [Path(d) for d in dirs], last_epoch(Path(dirs[0]))
            )
    if n > 1:
        check_distinct_seeds("float models to pool", float_dirs, float_epoch)
    floats = [_float_model(d, method, float_epoch) for d in float_dirs]
    rows = [quant_row(name, dirs, method, floats, alpha, searches.get(name)) for name, dirs in runs.items()]
    floor = None
    if n > 1:
        seed0 = {"float": floats[0], **{r["method"]: r["_per_seed"][0] for r in rows}}
        seed1 = {"float": floats[1], **{r["method"]: r["_per_seed"][1] for r in rows}}
        floor = noise_floor(seed0, seed1, alpha)
    for r in rows:
        del r["_per_seed"]
    baseline = pool_or_single([{"float": f} for f in floats])["float"]

    def best(prefix: str) -> Optional[Dict]:
        ok = [r for r in rows if r["method"].startswith(prefix) and r["lossless"]]
        return max(ok, key=lambda r: r["compression"]) if ok else None

    return {
        "method": method,
        "alpha": alpha,
        "seeds": n,
        "float": {
            "dirs": [str(d) for d in float_dirs],
            "epoch": float_epoch,
            "wer": baseline.wer,
            "wer_per_seed": [f.wer for f in floats],
            "mb": floats[0].stored_bytes / 1e6,
            "memory": _float_memory(floats),
        },
        "rows": rows,
        "noise_floor": floor,
        "best_lossless_uniform": best("uniform"),
        "best_lossless_one_stage": best("one-stage"),
    }


def _p_cells(verdicts: Dict[str, Dict], test_sets: List[str]) -> str:
    return ", ".join(
        f"{verdicts[t]['p']:.3f}" + {"A": "+", "B": "-", "same": ""}[verdicts[t]["better"]] for t in test_sets
    )


def _floor_line(floor: Dict) -> str:
    flagged = ", ".join(f"{name} {t} ({who.replace('a ', 'seed 0 ').replace('b ', 'seed 1 ')}, p {p:.3f})"
                        for name, t, who, p in floor["flagged"]) or "none"  # fmt: skip
    return (
        f"- Noise floor (seed 0 against seed 1 of the float model and of every row, the same test "
        f"per seed): {floor['count']} of {floor['pairs']} pairs flagged: {flagged}"
    )


def _memory_lines(report: Dict) -> List[str]:
    """The speed and memory table of the rows decoded with their codes kept (none: no lines)."""
    rows = [r for r in report["rows"] if r.get("kept_codes")]
    if not rows:
        return []
    mb = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    lines = [
        "",
        "Decoding speed and memory, one thread (means over the seeds decoded so). Float weights: "
        "the packed file dequantized on loading (the table's decoding); codes kept: "
        "`decode.py --keep-codes true`, the quantized weights held as their packed codes and "
        "dequantized at each use.",
        "",
        "| method | RTF float weights | RTF codes kept | resident weights MB codes kept "
        "| peak RSS MiB codes kept |",
        "|---|---|---|---|---|",
    ]
    fm = report["float"].get("memory")
    if fm:
        lines.append(
            f"| float (checkpoint) | {fm['rtf']:.4f} | - | {mb(fm['weights_mb'])} | {mb(fm['peak_rss_mb'])} |"
        )
    for r in rows:
        k = r["kept_codes"]
        lines.append(
            f"| {r['method']} | {k['rtf_float_weights']:.4f} | {k['rtf']:.4f} | {mb(k['weights_mb'])} "
            f"| {mb(k['peak_rss_mb'])} |"
        )
    lines.append("")
    return lines


def format_quant_report(report: Dict) -> str:
    rows = report["rows"]
    test_sets = list(report["float"]["wer"])
    seeds = report.get("seeds", 1)
    head = ["method", "avg bits", "stored MB (packed file)", "compression"]
    head += [f"WER {t}" for t in test_sets]
    head += ["p vs float" + (" (pooled)" if seeds > 1 else ""), "lossless", "compression wall / CPU (s)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    fw = report["float"]["wer"]
    lines.append(
        "| float (baseline) | 32 | "
        + f"{report['float']['mb']:.3f} | 1.00x | "
        + " | ".join(f"{fw[t]:.2f}" for t in test_sets)
        + " | - | - | - |"
    )
    for r in rows:
        cells = [r["method"], f"{r['average_bits']:.2f}", f"{r['stored_mb']:.3f}", f"{r['compression']:.2f}x"]
        cells += [f"{r['wer'][t]:.2f}" for t in test_sets]
        cells += [_p_cells(r["vs_float"], test_sets), "yes" if r["lossless"] else "no"]
        cells.append(f"{r['compression_seconds']:.0f} / {r['compression_cpu_seconds']:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if seeds > 1:
        lines += [
            f"Every row and the float model were trained with {seeds} seeds (seed i of a row compresses "
            "seed i of the float model); WERs are the seeds' words pooled, sizes and times the seeds' "
            f"means. p: the matched-pairs test over the pooled runs against the float model per test "
            f"set ({', '.join(test_sets)}); '-' marks a significantly worse row, '+' a better one "
            f"(p < {report['alpha']}). Sizes and WERs are those of the packed files.",
            "",
            _floor_line(report["noise_floor"]),
        ]
        every = [f"{r['method']} {t}" for r in rows for t in r["worse_under_every_seed"]]
        lines.append(
            "- Worse than the float model under every seed on its own: " + (", ".join(every) or "none")
        )
        lines += ["", "Per seed (WER; p against that seed's float model):", ""]
        lines += ["| method | " + " | ".join(f"seed {i}" for i in range(seeds)) + " |"]
        lines += ["|---|" + "|".join(["---"] * seeds) + "|"]
        fs = report["float"]["wer_per_seed"]
        lines.append(
            "| float | " + " | ".join(" / ".join(f"{w[t]:.2f}" for t in test_sets) for w in fs) + " |"
        )
        for r in rows:
            cells = [
                " / ".join(f"{w[t]:.2f}" for t in test_sets) + f" (p {_p_cells(v, test_sets)})"
                for w, v in zip(r["wer_per_seed"], r["vs_float_per_seed"])
            ]
            lines.append(f"| {r['method']} | " + " | ".join(cells) + " |")
        lines.append("")
    else:
        lines += [
            f"p: MAPSSWE against the float model per test set ({', '.join(test_sets)}); '-' marks a "
            f"significantly worse row, '+' a better one (p < {report['alpha']}). Sizes and WERs are those "
            "of the packed files.",
            SINGLE_SEED_NOTE,
        ]
    lines += _memory_lines(report)
    for key, label in (("best_lossless_uniform", "uniform"), ("best_lossless_one_stage", "one-stage")):
        r = report[key]
        lines.append(
            f"- Largest lossless {label}: "
            + ("none" if r is None else f"{r['method']} at {r['compression']:.2f}x")
        )
    for r in rows:
        averages = r.get("average_bits_per_seed") or [r["average_bits"]]
        for i, (bit_map, average) in enumerate(zip(r.get("bit_maps") or [r["bit_map"]], averages)):
            if not bit_map:
                continue
            seed = f", seed {i}" if seeds > 1 else ""
            lines += ["", f"Per-layer bits of {r['method']}{seed} (average {average:.2f}):", "```"]
            lines += format_bit_map(bit_map).splitlines()
            lines.append("```")
    return "\n".join(lines) + "\n"


def write_quant_report(report: Dict, out_dir: Path) -> None:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "comparison.md").write_text(format_quant_report(report))
    (out_dir / "comparison.json").write_text(json.dumps(report, indent=2) + "\n")
