#!/usr/bin/env python3
"""Compare an all-in-one run with individually trained twins of each of its subnets.

Usage:

  ./local/compare_all_in_one.py \
    --all-in-one-dir conformer_transducer/exp_all_in_one \
    --individual-root conformer_transducer/exp_individual \
    --decoding-method modified_beam_search --epoch 10 \
    --out-dir conformer_transducer/all_in_one_comparison

Reads what decode.py wrote (subnet-summary-*.json, recogs-*)
and the training time kept in epoch-N.pt, and writes to --out-dir:
  comparison.md    per subnet: size, compression, WER of both kinds per test set with the
                   MAPSSWE p-value, a verdict; training wall times; the largest compression
                   not significantly worse than the float full model
  comparison.json  the same numbers
  wer_vs_size.png  WER against stored size, both kinds of training
With --repeat-individual-root R (repeatable; R/<subnet>/ trained with another --seed),
comparison.md also shows how far two individual runs of one subnet differ (MAPSSWE).

Give --all-in-one-dir and --individual-root once per training seed (in the same order)
to pool the verdicts over seeds: one pass i is paired with the twins under root i, e.g.

  ./local/compare_all_in_one.py \
    --all-in-one-dir conformer_transducer/exp_all_in_one_k1w300 \
    --individual-root conformer_transducer/exp_individual \
    --all-in-one-dir conformer_transducer/exp_all_in_one_k1w300_seed43 \
    --individual-root conformer_transducer/exp_individual_seed43 \
    --epoch 8 --out-dir conformer_transducer/all_in_one_comparison_k1w300_2seeds
"""

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root

from allinone.reports.nested_comparison import compare, plot_wer_vs_size, write_report  # noqa: E402
from allinone.reports.run_pairs import add_run_pair_args, run_pairs  # noqa: E402
from allinone.utils.log import setup_script_logging  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_pair_args(p)
    p.add_argument("--decoding-method", default="modified_beam_search")
    p.add_argument("--epoch", type=int, required=True)
    p.add_argument("--out-dir", type=Path, required=True)
    p.add_argument("--alpha", type=float, default=0.05, help="significance level of MAPSSWE")
    p.add_argument(
        "--repeat-individual-root",
        type=Path,
        action="append",
        default=[],
        help="a root of twins trained again with another seed (any subset of the subnets)",
    )
    p.add_argument(
        "--subnets",
        default="",
        help="compare only these subnets (comma-separated; the float full model is always kept), "
        "e.g. while the other twins still train; no training-time ratio is given then",
    )
    args = p.parse_args()
    pairs = run_pairs(p, args)
    setup_script_logging()
    report = compare(
        pairs,
        args.decoding_method,
        args.epoch,
        args.alpha,
        args.repeat_individual_root,
        subnets=[n for n in args.subnets.split(",") if n] or None,
    )
    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_report(report, args.out_dir)
    plot_wer_vs_size(report, args.out_dir / "wer_vs_size.png")
    logging.info(f"wrote {args.out_dir}/comparison.md, comparison.json, wer_vs_size.png")
    print((args.out_dir / "comparison.md").read_text())


if __name__ == "__main__":
    main()
