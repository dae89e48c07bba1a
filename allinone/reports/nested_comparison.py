"""All-in-one training versus individually trained twins: WER, significance, wall time, size.

Inputs are the files the recipe scripts already write: ``decode.py``'s
``subnet-summary-*.json`` and ``recogs-*`` files, and the training time ``train.py``
keeps in each ``epoch-N.pt``.
"""

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from allinone.decoding.subnet_report import read_subnet_summary
from allinone.reports.decoded_archive import read_run_record
from allinone.subnet import SubnetConfig, SubnetError
from allinone.training.recipe import QUANTIZER_ONLY_MODEL_OPTIONS, RECIPE_KEYS, config_differences
from allinone.utils.scoring import Result, compute_wer, read_recogs
from allinone.utils.significance import mapsswe, matched_pairs_over_runs


@dataclass
class DecodedSubnet:
    """One subnet of one experiment as decoded."""

    name: str
    stored_bytes: float
    compression: float
    params: int
    rtf: float
    wer: Dict[str, float]
    results: Dict[str, List[Result]] = field(repr=False, default_factory=dict)
    # several training runs pooled (pool_runs): per run, test set -> results
    runs: List[Dict[str, List[Result]]] = field(repr=False, default_factory=list)


def _one(paths: List[Path], what: str, where: Path) -> Path:
    if len(paths) != 1:
        found = ", ".join(p.name for p in paths) or "none"
        raise FileNotFoundError(f"expected exactly one {what} in {where}, found: {found}")
    return paths[0]


def load_decoded(exp_dir: Path, method: str, epoch: Optional[int]) -> Dict[str, DecodedSubnet]:
    """Every subnet ``decode.py`` decoded with ``method`` in ``exp_dir`` (grid order).

    ``epoch``: the checkpoint decoded; None for the packed file (``decode.py --packed-model``).
    """
    res_dir = Path(exp_dir) / method
    tail = "packed" if epoch is None else f"epoch-{epoch}-*"
    summary = _one(sorted(res_dir.glob(f"subnet-summary-*-{tail}.json")), "subnet summary", res_dir)
    out = {}
    for row in read_subnet_summary(summary):
        d = DecodedSubnet(row.subnet, row.stored_bytes, row.compression, row.params, row.rtf, row.wer)
        for test_set in row.wer:
            # .txt in an exp dir, .txt.gz in an archive (allinone.reports.decoded_archive)
            pattern = f"recogs-{test_set}-*-{row.subnet}-{tail}.txt"
            found = sorted(res_dir.glob(pattern)) + sorted(res_dir.glob(pattern + ".gz"))
            d.results[test_set] = read_recogs(_one(found, pattern, res_dir))
        out[row.subnet] = d
    return out


@lru_cache(maxsize=None)
def _run_record(run_dir: Path, epoch: int) -> Dict:
    """What the report reads from one ``epoch-N.pt`` (or its archived record): its times and
    training config. Loaded once per run, however many comparisons ask (a checkpoint holds
    the whole model)."""
    return read_run_record(run_dir, epoch)


def _record_field(exp_dir: Path, epoch: int, key: str):
    run_dir = Path(exp_dir).resolve()
    value = _run_record(run_dir, epoch)[key]
    if value is None:
        raise ValueError(
            f"{run_dir}: epoch {epoch} records no {key} (its epoch-{epoch}.pt or archived run record "
            "was written by an older train.py)"
        )
    return value


def train_seconds(exp_dir: Path, epoch: int, key: str = "train_seconds") -> float:
    """Training-loop wall time (or with ``key="train_cpu_seconds"`` its CPU time) up to the
    end of ``epoch``, kept in ``epoch-<epoch>.pt`` across resumes."""
    return float(_record_field(exp_dir, epoch, key))


def recipe_differences(a_dir: Path, b_dir: Path, epoch: int) -> Dict[str, tuple]:
    """The recipe settings (``allinone.training.recipe.RECIPE_KEYS``) that differ between
    two runs' ``epoch-<epoch>.pt``: ``{key: (value in a, value in b)}``; empty when both
    used the same recipe."""
    a, b = (_record_field(d, epoch, "train_config") for d in (a_dir, b_dir))
    return config_differences(a, b, RECIPE_KEYS)


def _float_subnet_dir(d: Path) -> bool:
    """Whether ``d`` is named like a subnet that runs no quantizer (float weights and heads)."""
    try:
        subnet = SubnetConfig.from_name(Path(d).name)
    except SubnetError:
        return False
    return subnet.is_float


def _only_quantizer_options_differ(models: tuple) -> bool:
    """Whether two runs' model settings differ in ``QUANTIZER_ONLY_MODEL_OPTIONS`` alone."""
    a, b = ({**QUANTIZER_ONLY_MODEL_OPTIONS, **(m or {})} for m in models)
    differing = {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
    return bool(differing) and differing <= set(QUANTIZER_ONLY_MODEL_OPTIONS)


def check_same_recipe(aio_dir: Path, twin_dirs: Sequence[Path], epoch: int) -> None:
    """Refuse a comparison whose twins were trained with another recipe than the one pass
    (a different learning rate, say): their WER would not be a like-for-like reference.

    One exception: a float twin (``d6-w1.0-b32``) may differ in model options that act on
    quantizers only (``QUANTIZER_ONLY_MODEL_OPTIONS``, e.g. ``quantize_heads``), since a
    float subnet runs no quantizer and trains identically either way
    (``tests/e2e/test_all_in_one.py`` checks this bit for bit)."""
    for d in twin_dirs:
        diff = recipe_differences(aio_dir, d, epoch)
        if set(diff) == {"model"} and _float_subnet_dir(d) and _only_quantizer_options_differ(diff["model"]):
            continue
        if diff:
            what = "; ".join(f"{k} {a!r} vs {b!r}" for k, (a, b) in diff.items())
            raise ValueError(f"{d} was trained with another recipe than {aio_dir}: {what}")


def _seed(exp_dir: Path, epoch: int) -> int:
    return _record_field(exp_dir, epoch, "train_config")["seed"]


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
    for label, dirs in [("one-pass runs", [aio_dir for aio_dir, _ in runs])] + [
        (f"twins of {name}", [Path(root) / name for _, root in runs]) for name in names
    ]:
        seeds = {str(d): _seed(d, epoch) for d in dirs}
        if len(set(seeds.values())) != len(seeds):
            raise ValueError(f"{label} to pool share a seed: {seeds}")


def mapsswe_per_set(a: DecodedSubnet, b: DecodedSubnet, alpha: float) -> Dict[str, Dict]:
    """A against B per test set of A: p-value and which is better ("A", "B" or "same").

    MAPSSWE for single runs; for pooled runs (:func:`pool_runs`) the sentence-level
    matched-pairs test over the runs, ``allinone.utils.significance.matched_pairs_over_runs``.
    """
    if bool(a.runs) != bool(b.runs):
        raise ValueError(f"{a.name}: cannot test a pooled system against a single run")
    out = {}
    for test_set in a.wer:
        if test_set not in b.wer:
            raise ValueError(f"{b.name} was not decoded on {test_set} (only on {', '.join(b.wer)})")
        if a.runs:
            runs_a, runs_b = ([run[test_set] for run in x.runs] for x in (a, b))
            r = matched_pairs_over_runs(runs_a, runs_b, alpha=alpha)
        else:
            r = mapsswe(a.results[test_set], b.results[test_set], alpha=alpha)
        out[test_set] = {"p": r.p_value, "better": r.better, "segments": r.num_segments}
    return out


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


def pool_runs(runs: Sequence[Dict[str, DecodedSubnet]]) -> Dict[str, DecodedSubnet]:
    """Several training runs of the same subnets (other seeds) as one system per subnet.

    The WER is that of all runs' words together and the RTF is the runs' mean; the runs'
    own recognitions are kept for the significance test (:func:`mapsswe_per_set`).
    Subnets come in run 0's order.
    """
    names = list(runs[0])
    for i, run in enumerate(runs[1:], 1):
        if set(run) != set(names):
            raise ValueError(f"run {i} decoded subnets {sorted(run)}, run 0 decoded {sorted(names)}")
    pooled = {}
    for name in names:
        first = runs[0][name]
        for i, run in enumerate(runs[1:], 1):
            if set(run[name].wer) != set(first.wer):
                raise ValueError(
                    f"{name}: run {i} was decoded on {sorted(run[name].wer)}, run 0 on {sorted(first.wer)}"
                )
        per_run = [run[name].results for run in runs]
        words = {t: [res for results in per_run for res in results[t]] for t in first.wer}
        pooled[name] = DecodedSubnet(
            name,
            first.stored_bytes,
            first.compression,
            first.params,
            sum(run[name].rtf for run in runs) / len(runs),
            {t: compute_wer(r).wer for t, r in words.items()},
            runs=per_run,
        )
    return pooled


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
                "aio_lossless": not any(
                    t["better"] == "B" for t in mapsswe_per_set(a, baseline, alpha).values()
                ),
                "individual_lossless": not any(
                    t["better"] == "B" for t in mapsswe_per_set(b, baseline, alpha).values()
                ),
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


def compare(
    runs: Sequence[Tuple[Path, Path]],
    method: str,
    epoch: int,
    alpha: float = 0.05,
    repeat_roots: Sequence[Path] = (),
    subnets: Optional[Sequence[str]] = None,
) -> Dict:
    """Everything the comparison report shows, as plain data (see ``write_report``).

    Args:
        runs: ``(all-in-one exp dir, root of its individual twins)`` per training seed.
            With one run the verdicts are those of that run. With several (each pair
            trained with its own seed, e.g. ``exp_all_in_one_seed43`` with
            ``exp_individual_seed43``) both kinds are pooled over the runs
            (:func:`pool_runs`) and tested utterance by utterance over all runs: the
            verdict is about these trained models (the spread between training runs is
            not in the test's error term), so each run's own verdicts are listed too.
            Training times are summed over the runs. All runs must share one recipe and
            differ in seed (:func:`check_runs`).
        repeat_roots: further roots of individual twins trained with other seeds (see
            :func:`repeat_rows`), read against the first run; they add a table, not a
            change to the verdicts.
        subnets: compare only these subnets of the grid (and the float full model, the
            lossless reference), e.g. while the other twins are still training. The time
            ratio then needs the twins left out, so it is not given (``speedup`` None).
    """
    aio_runs, individual_runs = [], []
    omitted: List[str] = []
    left_out_runs = []  # the one pass's decodings of the omitted subnets, per run
    for aio_dir, individual_root in runs:
        aio = load_decoded(aio_dir, method, epoch)
        if subnets is not None:
            full = aio
            aio, run_omitted = _only(aio, subnets, aio_dir)
            if left_out_runs and run_omitted != omitted:
                raise ValueError(
                    f"{aio_dir} leaves out {run_omitted} of its grid, {runs[0][0]} leaves out {omitted}: "
                    "one-pass runs pooled must have decoded the same subnets"
                )
            omitted = run_omitted
            left_out_runs.append({n: full[n] for n in omitted})
        if not aio_runs:
            check_runs(runs, list(aio), epoch)
        check_same_recipe(aio_dir, [Path(individual_root) / name for name in aio], epoch)
        aio_runs.append(aio)
        individual_runs.append(
            {name: load_decoded(Path(individual_root) / name, method, epoch)[name] for name in aio}
        )
    pooled = len(runs) > 1
    aio = pool_runs(aio_runs) if pooled else aio_runs[0]
    individual = pool_runs(individual_runs) if pooled else individual_runs[0]
    rows = _rows(aio, individual, alpha)
    for r in rows:
        r["individual_seconds"] = sum(train_seconds(Path(root) / r["subnet"], epoch) for _, root in runs)
    aio_seconds = sum(train_seconds(aio_dir, epoch) for aio_dir, _ in runs)
    sum_individual = sum(r["individual_seconds"] for r in rows)
    try:  # CPU time: the fair measure when the one pass shared the cores with other jobs
        aio_cpu: Optional[float] = sum(train_seconds(d, epoch, "train_cpu_seconds") for d, _ in runs)
    except ValueError:
        aio_cpu = None
    whole_grid = not omitted
    # A one-pass subnet's lossless verdict needs only the float full twin, so it is given
    # for the omitted subnets too.
    baseline_name = _full_model(aio)
    baseline_twin = individual[baseline_name]
    left_out = pool_runs(left_out_runs) if pooled and omitted else (left_out_runs or [{}])[0]
    omitted_lossless = {
        n: not any(t["better"] == "B" for t in mapsswe_per_set(d, baseline_twin, alpha).values())
        for n, d in left_out.items()
    }

    def best(kind: str) -> Optional[Dict]:
        ok = [r for r in rows if r[f"{kind}_lossless"]]
        if kind == "aio":
            ok += [
                {"subnet": n, "compression": left_out[n].compression}
                for n, y in omitted_lossless.items()
                if y
            ]
        return max(ok, key=lambda r: r["compression"]) if ok else None

    first_aio_dir, _ = runs[0]
    return {
        "method": method,
        "epoch": epoch,
        "alpha": alpha,
        "baseline": f"individually trained {baseline_name}",
        "runs": [[str(a), str(b)] for a, b in runs],
        "rows": rows,
        "aio_train_seconds": aio_seconds,
        "individual_train_seconds_sum": sum_individual,
        "speedup": sum_individual / aio_seconds if whole_grid else None,
        "aio_train_cpu_seconds": aio_cpu,
        "cpu_speedup": None if aio_cpu is None or not whole_grid else sum_individual / aio_cpu,
        "omitted_subnets": omitted,
        "omitted_aio_lossless": omitted_lossless,
        "subnets_significantly_worse": _worse(rows),
        "per_run_significantly_worse": (
            [_worse(_rows(a, b, alpha)) for a, b in zip(aio_runs, individual_runs)] if pooled else None
        ),
        "largest_lossless_aio": best("aio"),
        "largest_lossless_individual": best("individual"),
        "repeats": repeat_rows(
            first_aio_dir, aio_runs[0], individual_runs[0], repeat_roots, method, epoch, alpha
        ),
    }


def _fmt_p(t: Dict, system: str = "AIO") -> str:
    """p-value of ``mapsswe(system, other)``, marked with the verdict on ``system`` when significant."""
    mark = {"A": f" ({system} better)", "B": f" ({system} worse)", "same": ""}[t["better"]]
    return f"{t['p']:.3f}{mark}"


def format_report(report: Dict) -> str:
    rows = report["rows"]
    test_sets = list(rows[0]["aio_wer"])
    head = ["subnet", "params (M)", "stored (MB)", "compression"]
    for t in test_sets:
        head += [f"{t} AIO", f"{t} indiv.", f"{t} p"]
    head += ["lossless AIO / indiv.", "indiv. train (s)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for r in rows:
        cells = [r["subnet"], f"{r['params'] / 1e6:.3f}", f"{r['stored_mb']:.3f}", f"{r['compression']:.2f}x"]
        for t in test_sets:
            cells += [
                f"{r['aio_wer'][t]:.2f}",
                f"{r['individual_wer'][t]:.2f}",
                _fmt_p(r["aio_vs_individual"][t]),
            ]
        yn = {True: "yes", False: "no"}
        cells += [
            f"{yn[r['aio_lossless']]} / {yn[r['individual_lossless']]}",
            f"{r['individual_seconds']:.0f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    worse = report["subnets_significantly_worse"]

    def best(key):
        r = report[key]
        return "none" if r is None else f"{r['subnet']} at {r['compression']:.2f}x"

    runs = report.get("runs") or []
    per_run = report.get("per_run_significantly_worse")
    lines += [
        "",
        f"MAPSSWE at p < {report['alpha']} per test set; 'lossless' = not significantly worse than the "
        f"{report['baseline']} on any test set. WER in %, {report['method']}, epoch {report['epoch']}.",
    ]
    if per_run:
        lines += [
            f"Pooled over {len(runs)} training runs (seeds) of each kind: WER over all runs' words; "
            "p is then the sentence-level matched-pairs test (each utterance's error difference summed "
            "over the runs; matched_pairs_over_runs), not MAPSSWE, and the spread between training runs "
            "is not in its error term; times are summed over the runs.",
        ]
    omitted = report.get("omitted_subnets") or []
    lines += [
        "",
        f"- All-in-one subnets significantly worse than their twin: {', '.join(worse) if worse else 'none'}",
    ]
    if omitted:
        lines.append(
            f"- Part of the grid only: {', '.join(omitted)} left out (their twins were not compared), "
            "so there is no training-time ratio and no verdict against their twins"
        )
        yn = {True: "yes", False: "no"}
        lossless = report.get("omitted_aio_lossless") or {}
        lines.append(
            "- Lossless (against the float full twin) among the left-out one-pass subnets: "
            + ", ".join(f"{n} {yn[v]}" for n, v in lossless.items())
        )
    else:
        lines.append(
            f"- Training wall time: all-in-one {report['aio_train_seconds']:.0f} s; individual runs summed "
            f"{report['individual_train_seconds_sum']:.0f} s; ratio {report['speedup']:.2f}x"
        )
    if report.get("cpu_speedup") is not None:
        lines.append(
            f"- Training CPU time of the one pass: {report['aio_train_cpu_seconds']:.0f} s; against the "
            f"individual runs' summed wall time (one thread each, one run per core) "
            f"{report['cpu_speedup']:.2f}x"
        )
    for (aio_dir, root), names in zip(runs, per_run or []):
        lines.append(
            f"- Run {aio_dir} against {root} alone: significantly worse: "
            f"{', '.join(names) if names else 'none'}"
        )
    compared = " (among the compared twins)" if omitted else ""
    lines += [
        f"- Largest lossless compression: all-in-one {best('largest_lossless_aio')}; "
        f"individual{compared} {best('largest_lossless_individual')}",
    ]
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
