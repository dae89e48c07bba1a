"""What ``decode.py`` wrote for one exp dir, read back as systems to compare.

A system is one subnet of one exp dir as decoded: its size columns and WER from the
``subnet-summary-*.json`` and its per-utterance recognitions from the ``recogs-*`` files
(file names from :mod:`allinone.decoding.result_files`). Several trainings of the same
subnets (other seeds) pool into one system whose test keeps each run's recognitions.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from allinone.decoding.result_files import recogs_files, recogs_pattern, result_dir, summary_files
from allinone.decoding.subnet_report import read_subnet_summary
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
    # the decoding's resident weights and peak RSS (MB, MiB), where the summary records them
    weights_mb: Optional[float] = None
    peak_rss_mb: Optional[float] = None


def _one(paths: List[Path], what: str, where: Path) -> Path:
    if len(paths) != 1:
        found = ", ".join(p.name for p in paths) or "none"
        raise FileNotFoundError(f"expected exactly one {what} in {where}, found: {found}")
    return paths[0]


def load_decoded(exp_dir: Path, method: str, epoch: Optional[int]) -> Dict[str, DecodedSubnet]:
    """Every subnet ``decode.py`` decoded with ``method`` in ``exp_dir`` (grid order).

    Args:
        exp_dir: the exp dir decoded.
        method: the result directory's name, e.g. ``modified_beam_search`` (or
            ``modified_beam_search-bn-calibrated``).
        epoch: the checkpoint decoded; None for the packed file (``decode.py --packed-model``).
    Raises:
        FileNotFoundError: not exactly one summary of that epoch, or not exactly one recogs
            file of a subnet and test set (the message names the directory).
    """
    res_dir = result_dir(exp_dir, method)
    summary = _one(summary_files(res_dir, epoch), "subnet summary", res_dir)
    out = {}
    for row in read_subnet_summary(summary):
        d = DecodedSubnet(row.subnet, row.stored_bytes, row.compression, row.params, row.rtf, row.wer,
                          weights_mb=row.weights_mb, peak_rss_mb=row.peak_rss_mb)  # fmt: skip
        for test_set in row.wer:
            found = recogs_files(res_dir, test_set, row.subnet, epoch)
            d.results[test_set] = read_recogs(
                _one(found, recogs_pattern(test_set, row.subnet, epoch), res_dir)
            )
        out[row.subnet] = d
    return out


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


def pool_or_single(runs: Sequence[Dict[str, DecodedSubnet]]) -> Dict[str, DecodedSubnet]:
    """The one run as it is, or several pooled (:func:`pool_runs`)."""
    return pool_runs(runs) if len(runs) > 1 else runs[0]
