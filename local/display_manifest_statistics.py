#!/usr/bin/env python3
"""Print duration statistics of lhotse cut sets.

For each split, ``<manifest-dir>/<prefix>_cuts_<split>.jsonl.gz`` is loaded and
summarised: number of cuts, total hours, mean/min/max duration and
percentiles.  With ``--describe`` lhotse's own ``CutSet.describe()`` table is
printed as well.  Any split may also be passed directly as a file path.

Usage:

    python ../../../local/display_manifest_statistics.py --manifest-dir data/fbank \\
        --prefix synth_digits --splits train dev test-seen test-unseen
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Dict, List

import numpy as np


def get_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest-dir", type=Path, default=Path("data/fbank"))
    p.add_argument("--prefix", required=True)
    p.add_argument("--splits", nargs="+", required=True, help="split names or paths of cut manifests")
    p.add_argument("--describe", action="store_true", help="also print lhotse's CutSet.describe()")
    return p.parse_args(argv)


def duration_summary(durations: List[float]) -> Dict[str, float]:
    """Count, total hours and distribution of a list of durations in seconds."""
    d = np.asarray(durations, dtype=np.float64)
    if d.size == 0:
        return {"count": 0, "hours": 0.0}
    pct = np.percentile(d, [5, 50, 95])
    return {
        "count": int(d.size),
        "hours": float(d.sum() / 3600.0),
        "mean": float(d.mean()),
        "std": float(d.std()),
        "min": float(d.min()),
        "p5": float(pct[0]),
        "median": float(pct[1]),
        "p95": float(pct[2]),
        "max": float(d.max()),
    }


def format_row(name: str, s: Dict[str, float]) -> str:
    if s["count"] == 0:
        return f"{name:<14s} {0:>7d}   (empty)"
    return (
        f"{name:<14s} {s['count']:>7d} {s['hours']:>8.3f} {s['mean']:>7.2f} {s['std']:>6.2f} "
        f"{s['min']:>6.2f} {s['p5']:>6.2f} {s['median']:>6.2f} {s['p95']:>6.2f} {s['max']:>6.2f}"
    )


def main(argv=None) -> None:
    from lhotse import CutSet

    args = get_args(argv)
    header = (
        f"{'split':<14s} {'cuts':>7s} {'hours':>8s} {'mean_s':>7s} {'std':>6s} "
        f"{'min':>6s} {'p5':>6s} {'median':>6s} {'p95':>6s} {'max':>6s}"
    )
    rows = []
    for split in args.splits:
        path = Path(split)
        if not path.is_file():
            path = args.manifest_dir / f"{args.prefix}_cuts_{split}.jsonl.gz"
        cuts = CutSet.from_file(path)
        if args.describe:
            print(f"==== {split} ({path})")
            cuts.describe()
        rows.append(format_row(split, duration_summary([c.duration for c in cuts])))
    print(header)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
