#!/usr/bin/env python3
r"""MAPSSWE significance test between two decodings of the same test set (sctk's
``sc_stats -t mapsswe``, on our recogs files).

Usage:

  ./local/mapsswe.py \
    conformer_transducer/exp_individual/d6-w1.0-b32/modified_beam_search/recogs-test-seen-...txt \
    conformer_transducer/exp_individual_seed43/d6-w1.0-b32/modified_beam_search/recogs-test-seen-...txt

Prints one line per file (WER, errors) and the test: segments, mean error difference
A - B per segment, W, two-sided p and which system is better at --alpha.
"""

import argparse
from pathlib import Path

from allinone.utils.scoring import compute_wer, read_recogs
from allinone.utils.significance import mapsswe


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recogs_a", type=Path, help="system A: a recogs-*.txt written by decode.py")
    p.add_argument("recogs_b", type=Path, help="system B, decoded on the same utterances")
    p.add_argument("--alpha", type=float, default=0.05)
    args = p.parse_args()
    results = []
    for label, path in (("A", args.recogs_a), ("B", args.recogs_b)):
        if not path.is_file():
            p.error(f"{path} is not a file")
        try:
            results.append(read_recogs(path))
        except ValueError as e:
            p.error(str(e))  # names the file and line
        stats = compute_wer(results[-1])
        print(f"{label}: WER {stats.wer:.2f}% ({stats.errors} errors / {stats.ref_words} words) {path}")
    try:
        r = mapsswe(*results, alpha=args.alpha)
    except ValueError as e:  # other utterances or references: not decodings of one test set
        p.error(f"{args.recogs_a} and {args.recogs_b}: {e}")
    verdict = {"A": "A better", "B": "B better", "same": "no significant difference"}[r.better]
    print(
        f"MAPSSWE: {r.num_segments} segments, mean(A - B) {r.mean_diff:+.3f} errors/segment, "
        f"W {r.w_statistic:+.3f}, p {r.p_value:.4f}: {verdict} at alpha {args.alpha}"
    )


if __name__ == "__main__":
    main()
