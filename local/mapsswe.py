#!/usr/bin/env python3
r"""MAPSSWE significance test between two decodings of the same test set (sctk's
``sc_stats -t mapsswe``, on our recogs files).

Usage:

  ./local/mapsswe.py \
    conformer_transducer/exp_individual/d6-w1.0-b32/modified_beam_search/recogs-test-seen-...txt \
    conformer_transducer/exp_individual_seed43/d6-w1.0-b32/modified_beam_search/recogs-test-seen-...txt

Prints one line per file (WER, errors) and the test: segments, mean error difference
A - B per segment, W, two-sided p and which system is better at --alpha.

Several training runs of each system (seeds), pooled: give each side as a comma list of
recogs files, one per run, the same number on both sides. The test is then the
sentence-level matched-pairs test over the runs (``matched_pairs_over_runs``: each
utterance one unit, its errors summed over the runs):

  ./local/mapsswe.py exp_a/.../recogs-test-seen-X.txt,exp_a_seed43/.../recogs-test-seen-X.txt \
    exp_b/.../recogs-test-seen-Y.txt,exp_b_seed43/.../recogs-test-seen-Y.txt
"""

import argparse
from pathlib import Path

from allinone.utils.scoring import compute_wer, read_recogs
from allinone.utils.significance import mapsswe, matched_pairs_over_runs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "recogs_a", help="system A: a recogs-*.txt written by decode.py (or a comma list, one per run)"
    )
    p.add_argument("recogs_b", help="system B, decoded on the same utterances (as many runs as A)")
    p.add_argument("--alpha", type=float, default=0.05)
    args = p.parse_args()
    runs = {}
    for label, paths in (("A", args.recogs_a), ("B", args.recogs_b)):
        runs[label] = []
        for path in (Path(x) for x in paths.split(",") if x):
            if not path.is_file():
                p.error(f"{path} is not a file")
            try:
                runs[label].append(read_recogs(path))
            except ValueError as e:
                p.error(str(e))  # names the file and line
            stats = compute_wer(runs[label][-1])
            print(f"{label}: WER {stats.wer:.2f}% ({stats.errors} errors / {stats.ref_words} words) {path}")
    if len(runs["A"]) != len(runs["B"]):
        p.error(f"{len(runs['A'])} runs of A against {len(runs['B'])} of B: give as many of each")
    try:
        if len(runs["A"]) == 1:
            r = mapsswe(runs["A"][0], runs["B"][0], alpha=args.alpha)
        else:
            r = matched_pairs_over_runs(runs["A"], runs["B"], alpha=args.alpha)
    except ValueError as e:  # other utterances or references: not decodings of one test set
        p.error(f"{args.recogs_a} and {args.recogs_b}: {e}")
    if len(runs["A"]) > 1:
        pooled = [compute_wer([u for run in runs[k] for u in run]) for k in "AB"]
        print(f"pooled over {len(runs['A'])} runs: A {pooled[0].wer:.2f}%, B {pooled[1].wer:.2f}%")
    verdict = {"A": "A better", "B": "B better", "same": "no significant difference"}[r.better]
    print(
        f"MAPSSWE: {r.num_segments} segments, mean(A - B) {r.mean_diff:+.3f} errors/segment, "
        f"W {r.w_statistic:+.3f}, p {r.p_value:.4f}: {verdict} at alpha {args.alpha}"
    )


if __name__ == "__main__":
    main()
