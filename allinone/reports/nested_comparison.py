"""All-in-one training versus individually trained twins: WER, significance, wall time, size.

Inputs are the files the recipe scripts already write: ``decode.py``'s
``subnet-summary-*.json`` and ``recogs-*`` files (:mod:`allinone.reports.decodings`), and
the training time and recipe ``train.py`` keeps in each ``epoch-N.pt``
(:mod:`allinone.reports.run_records`). Verdicts follow :mod:`allinone.reports.criterion`.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from allinone.reports.criterion import claim_verdict, format_floor, noise_floor, worse_pairs
from allinone.reports.decodings import DecodedSubnet, load_decoded, mapsswe_per_set, pool_or_single
from allinone.reports.run_records import check_distinct_seeds, check_same_recipe, train_seconds


@dataclass
class _Pair:
    """One one-pass run and its twins, as decoded."""

    aio: Dict[str, DecodedSubnet]
    twins: Dict[str, DecodedSubnet]
    left_out: Dict[str, DecodedSubnet]  # the one pass's decodings of the subnets not compared


def check_runs(runs: Sequence[Tuple[Path, Path]], names: Sequence[str], epoch: int) -> None:
    """Runs to pool must be distinct training draws of one recipe: no directory twice,
    every one-pass run with the first one's recipe, and no two one-pass runs (nor two
    twins of one of the subnets ``names``) with the same seed."""
    for i, kind in ((0, "--all-in-one-dir"), (1, "--individual-root")):
        dirs = [Path(run[i]).resolve() for run in runs]
        if len(set(dirs)) != len(dirs):
            raise ValueError(f"the same {kind} is given twice: {[str(run[i]) for run in runs]}")
    if len(runs) < 2:
        return
    check_same_recipe(runs[0][0], [aio_dir for aio_dir, _ in runs[1:]], epoch)
    check_distinct_seeds("one-pass runs to pool", [aio_dir for aio_dir, _ in runs], epoch)
    for name in names:
        check_distinct_seeds(f"twins of {name} to pool", [Path(root) / name for _, root in runs], epoch)


def _lossless(d: DecodedSubnet, baseline: DecodedSubnet, alpha: float) -> bool:
    """Not significantly worse than ``baseline`` on any test set."""
    return not any(t["better"] == "B" for t in mapsswe_per_set(d, baseline, alpha).values())


def _rows(aio: Dict[str, DecodedSubnet], individual: Dict[str, DecodedSubnet], alpha: float) -> List[Dict]:
    """Per subnet: sizes, both WERs, MAPSSWE against the twin and the lossless verdicts
    (against the twin of the float full model)."""
    baseline = individual[_full_model(aio)]
    rows = []
    for name, a in aio.items():
        b = individual[name]
        vs_twin = mapsswe_per_set(a, b, alpha)
        rows.append(
            {
                "subnet": name,
                "params": a.params,
                "stored_mb": a.stored_bytes / 1e6,
                "compression": a.compression,
                "aio_wer": a.wer,
                "individual_wer": b.wer,
                "aio_rtf": a.rtf,
                "individual_rtf": b.rtf,
                "aio_vs_individual": vs_twin,
                "aio_significantly_worse": any(t["better"] == "B" for t in vs_twin.values()),
                "aio_lossless": _lossless(a, baseline, alpha),
                "individual_lossless": _lossless(b, baseline, alpha),
            }
        )
    return rows


def _full_model(aio: Dict[str, DecodedSubnet]) -> str:
    """Name of the float full model (compression 1) of a decoded grid: the lossless reference."""
    return next(n for n, d in aio.items() if abs(d.compression - 1.0) < 1e-9)


def _only(
    aio: Dict[str, DecodedSubnet], names: Sequence[str], aio_dir: Path
) -> Tuple[Dict[str, DecodedSubnet], List[str]]:
    """``aio`` restricted to ``names`` plus the float full model, in grid order; and the
    subnets left out."""
    unknown = [n for n in names if n not in aio]
    if unknown:
        raise ValueError(f"{aio_dir} has no decoded subnet {unknown}; it has {list(aio)}")
    keep = set(names) | {_full_model(aio)}
    return {n: d for n, d in aio.items() if n in keep}, [n for n in aio if n not in keep]


def _worse(rows: List[Dict]) -> List[str]:
    return [r["subnet"] for r in rows if r["aio_significantly_worse"]]


def _load_pair(aio_dir: Path, root: Path, method: str, epoch: int, subnets: Optional[Sequence[str]]) -> _Pair:
    """A one-pass run's decodings (only ``subnets`` and the float full model, when given)
    and those of its twins ``root/<subnet>``."""
    aio = load_decoded(aio_dir, method, epoch)
    left_out: Dict[str, DecodedSubnet] = {}
    if subnets is not None:
        full = aio
        aio, omitted = _only(full, subnets, aio_dir)
        left_out = {n: full[n] for n in omitted}
    twins = {name: load_decoded(Path(root) / name, method, epoch)[name] for name in aio}
    return _Pair(aio, twins, left_out)


def _check_pairs(runs: Sequence[Tuple[Path, Path]], pairs: Sequence[_Pair], epoch: int) -> None:
    """Refuse pairs that cannot be pooled (:func:`check_runs`), that left out different
    subnets, or whose twins were trained with another recipe than their one pass."""
    check_runs(runs, list(pairs[0].aio), epoch)
    for (aio_dir, root), pair in zip(runs, pairs):
        if list(pair.left_out) != list(pairs[0].left_out):
            raise ValueError(
                f"{aio_dir} leaves out {list(pair.left_out)} of its grid, {runs[0][0]} leaves out "
                f"{list(pairs[0].left_out)}: one-pass runs pooled must have decoded the same subnets"
            )
        check_same_recipe(aio_dir, [Path(root) / name for name in pair.aio], epoch)


def _times(runs: Sequence[Tuple[Path, Path]], rows: List[Dict], epoch: int, whole_grid: bool) -> Dict:
    """Training times summed over the runs, and the ratio twins / one pass (whole grid only).
    Sets each row's ``individual_seconds``."""
    for r in rows:
        r["individual_seconds"] = sum(train_seconds(Path(root) / r["subnet"], epoch) for _, root in runs)
    aio_seconds = sum(train_seconds(aio_dir, epoch) for aio_dir, _ in runs)
    twins = sum(r["individual_seconds"] for r in rows)
    try:  # CPU time: the fair measure when the one pass shared the cores with other jobs
        aio_cpu: Optional[float] = sum(train_seconds(d, epoch, "train_cpu_seconds") for d, _ in runs)
    except ValueError:
        aio_cpu = None
    return {
        "aio_train_seconds": aio_seconds,
        "individual_train_seconds_sum": twins,
        "speedup": twins / aio_seconds if whole_grid else None,
        "aio_train_cpu_seconds": aio_cpu,
        "cpu_speedup": None if aio_cpu is None or not whole_grid else twins / aio_cpu,
    }


def _largest(candidates: List[Tuple[str, float]]) -> Optional[Dict]:
    if not candidates:
        return None
    name, compression = max(candidates, key=lambda c: c[1])
    return {"subnet": name, "compression": compression}


def _lossless_summary(
    rows: List[Dict], left_out: Dict[str, DecodedSubnet], baseline_twin: DecodedSubnet, alpha: float
) -> Dict:
    """The largest lossless compression of each kind. A one-pass subnet's lossless verdict
    needs only the float full twin, so it is given for the left-out subnets too."""
    omitted = {n: _lossless(d, baseline_twin, alpha) for n, d in left_out.items()}
    aio = [(r["subnet"], r["compression"]) for r in rows if r["aio_lossless"]]
    aio += [(n, left_out[n].compression) for n, ok in omitted.items() if ok]
    twins = [(r["subnet"], r["compression"]) for r in rows if r["individual_lossless"]]
    return {
        "omitted_aio_lossless": omitted,
        "largest_lossless_aio": _largest(aio),
        "largest_lossless_individual": _largest(twins),
    }


def twin_noise_floor(
    roots: Tuple[Path, Path], names: Sequence[str], method: str, epoch: int, alpha: float
) -> Dict:
    """:func:`allinone.reports.criterion.noise_floor` of the twins ``roots[0]/<name>``
    against ``roots[1]/<name>`` (the same recipe, other seeds), over the subnets ``names``."""
    for name in names:
        a_dir, b_dir = (Path(root) / name for root in roots)
        check_same_recipe(a_dir, [b_dir], epoch)
        check_distinct_seeds(f"twins of {name} in the noise floor", [a_dir, b_dir], epoch)
    a, b = ({n: load_decoded(Path(root) / n, method, epoch)[n] for n in names} for root in roots)
    return noise_floor(a, b, alpha)


def _criterion(
    runs: Sequence[Tuple[Path, Path]],
    pairs: Sequence[_Pair],
    rows: List[Dict],
    method: str,
    epoch: int,
    alpha: float,
    floor_roots: Optional[Tuple[Path, Path]],
) -> Dict:
    """Worse pairs (pooled and per seed), the noise floor and the claim's verdict."""
    table = worse_pairs({r["subnet"]: r["aio_vs_individual"] for r in rows})
    if len(pairs) > 1:
        per_seed = [
            worse_pairs({n: mapsswe_per_set(a, p.twins[n], alpha) for n, a in p.aio.items()}) for p in pairs
        ]
    else:
        per_seed = [table]
    floor = None
    if floor_roots is not None:
        floor = twin_noise_floor(floor_roots, list(pairs[0].aio), method, epoch, alpha)
    elif len(pairs) > 1:
        floor_roots = (runs[0][1], runs[1][1])
        floor = noise_floor(pairs[0].twins, pairs[1].twins, alpha)
    if floor is not None:
        floor["roots"] = [str(r) for r in floor_roots]
    return {
        "worse_pairs": [list(p) for p in table],
        "per_run_worse_pairs": [[list(p) for p in w] for w in per_seed] if len(pairs) > 1 else None,
        "per_run_significantly_worse": (
            [list(dict.fromkeys(s for s, _ in w)) for w in per_seed] if len(pairs) > 1 else None
        ),
        "noise_floor": floor,
        "claim": claim_verdict(table if len(pairs) > 1 else None, per_seed, floor),
    }


def compare(
    runs: Sequence[Tuple[Path, Path]],
    method: str,
    epoch: int,
    alpha: float = 0.05,
    repeat_roots: Sequence[Path] = (),
    subnets: Optional[Sequence[str]] = None,
    noise_floor_roots: Optional[Tuple[Path, Path]] = None,
) -> Dict:
    """Everything the comparison report shows, as plain data (see ``write_report``).

    Args:
        runs: ``(all-in-one exp dir, root of its individual twins)`` per training seed.
            With one run the verdicts are those of that run. With several (each pair
            trained with its own seed, e.g. ``exp_all_in_one_seed43`` with
            ``exp_individual_seed43``) both kinds are pooled over the runs
            (:func:`allinone.reports.decodings.pool_runs`) and tested utterance by
            utterance over all runs; each run's own verdicts are listed too. Training
            times are summed over the runs. All runs must share one recipe and differ in
            seed (:func:`check_runs`).
        repeat_roots: further roots of individual twins trained with other seeds (see
            :func:`repeat_rows`), read against the first run; they add a table, not a
            change to the verdicts.
        subnets: compare only these subnets of the grid (and the float full model, the
            lossless reference), e.g. while the other twins are still training. The time
            ratio then needs the twins left out, so it is not given (``speedup`` None).
        noise_floor_roots: two roots of twins of the identical recipe and other seeds whose
            disagreements are the noise floor (:mod:`allinone.reports.criterion`); by
            default the first two runs' twins.
    """
    pairs = [_load_pair(aio_dir, root, method, epoch, subnets) for aio_dir, root in runs]
    _check_pairs(runs, pairs, epoch)
    aio = pool_or_single([p.aio for p in pairs])
    individual = pool_or_single([p.twins for p in pairs])
    left_out = pool_or_single([p.left_out for p in pairs]) if pairs[0].left_out else {}
    rows = _rows(aio, individual, alpha)
    baseline_name = _full_model(aio)
    return {
        "method": method,
        "epoch": epoch,
        "alpha": alpha,
        "baseline": f"individually trained {baseline_name}",
        "runs": [[str(a), str(b)] for a, b in runs],
        "rows": rows,
        **_times(runs, rows, epoch, whole_grid=not left_out),
        "omitted_subnets": list(left_out),
        **_lossless_summary(rows, left_out, individual[baseline_name], alpha),
        "subnets_significantly_worse": _worse(rows),
        **_criterion(runs, pairs, rows, method, epoch, alpha, noise_floor_roots),
        "repeats": repeat_rows(runs[0][0], pairs[0].aio, pairs[0].twins, repeat_roots, method, epoch, alpha),
    }


def repeat_rows(
    aio_dir: Path,
    aio: Dict[str, DecodedSubnet],
    individual: Dict[str, DecodedSubnet],
    repeat_roots: Sequence[Path],
    method: str,
    epoch: int,
    alpha: float,
) -> List[Dict]:
    """Twins trained again with another seed: how far two individual runs differ.

    Each root holds exp dirs named like the subnets (any subset of them). Per repeat:
    its WER, MAPSSWE of the repeat against the first twin (the run-to-run spread the
    per-twin verdicts carry), and of the all-in-one subnet against the repeat.
    """
    out = []
    for root in repeat_roots:
        for name in aio:
            if not (Path(root) / name / method).is_dir():
                continue
            check_same_recipe(aio_dir, [Path(root) / name], epoch)
            rep = load_decoded(Path(root) / name, method, epoch)[name]
            out.append(
                {
                    "subnet": name,
                    "root": str(root),
                    "repeat_wer": rep.wer,
                    "repeat_vs_individual": mapsswe_per_set(rep, individual[name], alpha),
                    "aio_vs_repeat": mapsswe_per_set(aio[name], rep, alpha),
                }
            )
    return out


def _fmt_p(t: Dict, system: str = "AIO") -> str:
    """p-value of ``mapsswe(system, other)``, marked with the verdict on ``system`` when significant."""
    mark = {"A": f" ({system} better)", "B": f" ({system} worse)", "same": ""}[t["better"]]
    return f"{t['p']:.3f}{mark}"


def _format_table(report: Dict, test_sets: List[str]) -> List[str]:
    head = ["subnet", "params (M)", "stored (MB)", "compression"]
    for t in test_sets:
        head += [f"{t} AIO", f"{t} indiv.", f"{t} p"]
    head += ["lossless AIO / indiv.", "indiv. train (s)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    yn = {True: "yes", False: "no"}
    for r in report["rows"]:
        cells = [r["subnet"], f"{r['params'] / 1e6:.3f}", f"{r['stored_mb']:.3f}", f"{r['compression']:.2f}x"]
        for t in test_sets:
            cells += [
                f"{r['aio_wer'][t]:.2f}",
                f"{r['individual_wer'][t]:.2f}",
                _fmt_p(r["aio_vs_individual"][t]),
            ]
        cells += [
            f"{yn[r['aio_lossless']]} / {yn[r['individual_lossless']]}",
            f"{r['individual_seconds']:.0f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _format_method(report: Dict) -> List[str]:
    lines = [
        "",
        f"MAPSSWE at p < {report['alpha']} per (subnet, test set), uncorrected; 'lossless' = not "
        f"significantly worse than the {report['baseline']} on any test set. WER in %, "
        f"{report['method']}, epoch {report['epoch']}.",
    ]
    if report.get("per_run_significantly_worse"):
        lines.append(
            f"Pooled over {len(report['runs'])} training runs (seeds) of each kind: WER over all runs' "
            "words; p is then the sentence-level matched-pairs test (each utterance's error difference "
            "summed over the runs; matched_pairs_over_runs), not MAPSSWE, and the spread between training "
            "runs is not in its error term; times are summed over the runs."
        )
    return lines


def _format_verdicts(report: Dict, n_pairs: int) -> List[str]:
    """The worse verdicts: subnets, pairs, per run, the noise floor and the claim's line."""
    worse = report["subnets_significantly_worse"]
    lines = [
        f"- All-in-one subnets significantly worse than their twin: {', '.join(worse) if worse else 'none'}"
    ]
    if "worse_pairs" in report:
        pairs = ", ".join(f"{s} {t}" for s, t in report["worse_pairs"]) or "none"
        lines.append(f"- Worse (subnet, test set) pairs: {len(report['worse_pairs'])} of {n_pairs}: {pairs}")
    floor = report.get("noise_floor")
    lines += format_floor(floor, floor["roots"] if floor else [])
    per_run = report.get("per_run_significantly_worse") or []
    for (aio_dir, root), names in zip(report.get("runs") or [], per_run):
        worse_here = ", ".join(names) if names else "none"
        lines.append(f"- Run {aio_dir} against {root} alone: significantly worse: {worse_here}")
    if report.get("claim"):
        lines.append(f"- {report['claim']['line']}")
    return lines


def _format_times(report: Dict) -> List[str]:
    omitted = report.get("omitted_subnets") or []
    if omitted:
        yn = {True: "yes", False: "no"}
        lossless = report.get("omitted_aio_lossless") or {}
        lines = [
            f"- Part of the grid only: {', '.join(omitted)} left out (their twins were not compared), "
            "so there is no training-time ratio and no verdict against their twins",
            "- Lossless (against the float full twin) among the left-out one-pass subnets: "
            + ", ".join(f"{n} {yn[v]}" for n, v in lossless.items()),
        ]
    else:
        lines = [
            f"- Training wall time: all-in-one {report['aio_train_seconds']:.0f} s; individual runs summed "
            f"{report['individual_train_seconds_sum']:.0f} s; ratio {report['speedup']:.2f}x"
        ]
    if report.get("cpu_speedup") is not None:
        lines.append(
            f"- Training CPU time of the one pass: {report['aio_train_cpu_seconds']:.0f} s; against the "
            f"individual runs' summed wall time (one thread each, one run per core) "
            f"{report['cpu_speedup']:.2f}x"
        )
    return lines


def _format_lossless(report: Dict) -> List[str]:
    def best(key):
        r = report[key]
        return "none" if r is None else f"{r['subnet']} at {r['compression']:.2f}x"

    compared = " (among the compared twins)" if report.get("omitted_subnets") else ""
    return [
        f"- Largest lossless compression: all-in-one {best('largest_lossless_aio')}; "
        f"individual{compared} {best('largest_lossless_individual')}"
    ]


def format_report(report: Dict) -> str:
    """``comparison.md``: the table, how it was tested, the verdicts, times, compression."""
    test_sets = list(report["rows"][0]["aio_wer"])
    lines = _format_table(report, test_sets) + _format_method(report) + [""]
    lines += _format_verdicts(report, len(report["rows"]) * len(test_sets))
    lines += _format_times(report) + _format_lossless(report)
    lines += _format_repeats(report, test_sets)
    return "\n".join(lines) + "\n"


def _format_repeats(report: Dict, test_sets: List[str]) -> List[str]:
    repeats = report.get("repeats") or []
    if not repeats:
        return []
    twin = {r["subnet"]: r["individual_wer"] for r in report["rows"]}
    aio = {r["subnet"]: r["aio_wer"] for r in report["rows"]}
    head = ["subnet", "repeat root"]
    for t in test_sets:
        head += [f"{t} AIO", f"{t} twin", f"{t} repeat", f"{t} repeat vs twin p", f"{t} AIO vs repeat p"]
    lines = [
        "",
        "Individual twins trained again with another seed (same recipe): the spread between two runs",
        "of one configuration, against which the per-twin verdicts above should be read.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] * len(head)) + "|",
    ]
    for r in repeats:
        cells = [r["subnet"], Path(r["root"]).name]
        for t in test_sets:
            cells += [
                f"{aio[r['subnet']][t]:.2f}",
                f"{twin[r['subnet']][t]:.2f}",
                f"{r['repeat_wer'][t]:.2f}",
                _fmt_p(r["repeat_vs_individual"][t], "repeat"),
                _fmt_p(r["aio_vs_repeat"][t]),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def write_report(report: Dict, out_dir: Path) -> None:
    out_dir = Path(out_dir)
    (out_dir / "comparison.md").write_text(format_report(report))
    (out_dir / "comparison.json").write_text(json.dumps(report, indent=2) + "\n")


def plot_wer_vs_size(report: Dict, path: Path) -> None:
    """WER against stored size (log scale), one panel per test set, both kinds of training."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["rows"]
    test_sets = list(rows[0]["aio_wer"])
    fig, axes = plt.subplots(1, len(test_sets), figsize=(6 * len(test_sets), 4.5), squeeze=False)
    for ax, t in zip(axes[0], test_sets):
        size = [r["stored_mb"] for r in rows]
        ax.scatter(size, [r["aio_wer"][t] for r in rows], marker="o", label="all-in-one (one pass)")
        ax.scatter(size, [r["individual_wer"][t] for r in rows], marker="x", label="trained individually")
        for r in rows:
            ax.annotate(r["subnet"], (r["stored_mb"], r["aio_wer"][t]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")  # fmt: skip
        ax.set_xscale("log")
        ax.set_xlabel("stored size (MB, accounting rule)")
        ax.set_ylabel("WER (%)")
        ax.set_title(t)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
