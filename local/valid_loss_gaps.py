#!/usr/bin/env python3
r"""Dev-set loss of a one pass's subnets against their individually trained twins.

Usage (run from egs/<corpus>/ASR; pairs repeat once per training seed, in order):

  ../../../local/valid_loss_gaps.py --epochs 10,11,12 \
    --all-in-one-dir conformer_transducer/exp_all_in_one_k1w300 \
    --individual-root conformer_transducer/exp_individual \
    --all-in-one-dir conformer_transducer/exp_all_in_one_k1w300_seed43 \
    --individual-root conformer_transducer/exp_individual_seed43

Prints a markdown table: per subnet, the one pass's and the twin's validation loss per
frame (mean over --epochs, read from the training logs), and the gap (one pass minus
twin; positive = the one pass is behind), per pair and averaged over the pairs. Nothing
here reads a test set, so it can guide training choices (e.g. --subnet-draw-weights).
"""

import argparse

from allinone.reports.run_pairs import add_run_pair_args, run_pairs
from allinone.reports.valid_losses import valid_loss_gaps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_pair_args(p)
    p.add_argument("--epochs", required=True, help="comma-separated epochs to average, e.g. 10,11,12")
    args = p.parse_args()
    pairs = run_pairs(p, args)
    try:
        epochs = [int(e) for e in args.epochs.split(",") if e.strip()]
    except ValueError:
        p.error(f"--epochs takes comma-separated integers, got {args.epochs!r}")
    runs = [valid_loss_gaps(a, i, epochs) for a, i in pairs]
    names = [r["subnet"] for r in runs[0]]
    for a, rows in zip(args.all_in_one_dir, runs):
        if [r["subnet"] for r in rows] != names:
            p.error(f"{a} trained another grid than {args.all_in_one_dir[0]}")
    head = "| subnet | " + " | ".join(f"{a.name}: AIO / indiv. / gap" for a in args.all_in_one_dir)
    print(head + " | mean gap |")
    print("|---" * (len(runs) + 2) + "|")
    for k, name in enumerate(names):
        cells = [f"{r[k]['all_in_one']:.4f} / {r[k]['individual']:.4f} / {r[k]['gap']:+.4f}" for r in runs]
        mean_gap = sum(r[k]["gap"] for r in runs) / len(runs)
        print(f"| {name} | " + " | ".join(cells) + f" | {mean_gap:+.4f} |")
    print(f"\nValidation (dev) loss per frame, mean over epochs {','.join(map(str, epochs))}.")


if __name__ == "__main__":
    main()
