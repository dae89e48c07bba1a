#!/usr/bin/env python3
r"""Compare an all-in-one run with individually trained twins of each of its subnets.

Usage (from egs/synth_digits/ASR; one --all-in-one-dir / --individual-root pair per
training seed, in the same order):

  ../../../local/compare_all_in_one.py --epoch 20 \
    --all-in-one-dir conformer_transducer/exp_all_in_one_k1w300_h8low \
    --individual-root conformer_transducer/exp_individual_heads \
    --all-in-one-dir conformer_transducer/exp_all_in_one_k1w300_h8low_seed43 \
    --individual-root conformer_transducer/exp_individual_heads_seed43 \
    --out-dir conformer_transducer/exp_comparisons/all_in_one

Reads what decode.py wrote (subnet-summary-*.json, recogs-*) and the training times and
recipe kept in epoch-N.pt, and writes to --out-dir:
  comparison.md    per subnet: size, compression, WER of both kinds per test set with the
                   p-value, a verdict; the noise floor and the claim's verdict line;
                   training wall times; the largest compression not significantly worse
                   than the float full model
  comparison.json  the same numbers
  wer_vs_size.png  WER against stored size, both kinds of training

The criterion (allinone/reports/criterion.py): per (subnet, test set), p < --alpha,
uncorrected, on both kinds pooled over the seeds. The noise floor is how many pairs the
same test flags between two trainings of the twins (by default the first two
--individual-root; --noise-floor-root A --noise-floor-root B to choose). "No subnet worse
than its twin" holds when the pooled worse pairs do not exceed the noise floor and no pair
is worse under every seed. With one pair of dirs the verdicts are per seed and the claim
is not decided.
With --repeat-individual-root R (repeatable; R/<subnet>/ trained with another --seed),
comparison.md also shows how far two individual runs of one subnet differ (MAPSSWE).
"""

import argparse
import logging
from pathlib import Path

from allinone.reports.nested_comparison import compare, plot_wer_vs_size, write_report
from allinone.reports.run_pairs import add_run_pair_args, run_pairs
from allinone.utils.log import setup_script_logging


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
        "--noise-floor-root",
        type=Path,
        action="append",
        default=[],
        help="give twice: two roots of twins of the identical recipe, other seeds (default: the "
        "first two --individual-root)",
    )
    p.add_argument(
        "--subnets",
        default="",
        help="compare only these subnets (comma-separated; the float full model is always kept), "
        "e.g. while the other twins still train; no training-time ratio is given then",
    )
    args = p.parse_args()
    pairs = run_pairs(p, args)
    if args.noise_floor_root and len(args.noise_floor_root) != 2:
        p.error(f"--noise-floor-root is given twice or not at all, got {len(args.noise_floor_root)}")
    setup_script_logging()
    report = compare(
        pairs,
        args.decoding_method,
        args.epoch,
        args.alpha,
        args.repeat_individual_root,
        subnets=[n for n in args.subnets.split(",") if n] or None,
        noise_floor_roots=tuple(args.noise_floor_root) or None,
    )
    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_report(report, args.out_dir)
    plot_wer_vs_size(report, args.out_dir / "wer_vs_size.png")
    logging.info(f"wrote {args.out_dir}/comparison.md, comparison.json, wer_vs_size.png")
    print((args.out_dir / "comparison.md").read_text())


if __name__ == "__main__":
    main()
