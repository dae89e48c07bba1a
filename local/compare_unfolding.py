#!/usr/bin/env python3
r"""Compare the logical depths of an unfolding run with plain models of the same depth.

Usage:

  ./local/compare_unfolding.py \
    --unfold-dir conformer_transducer/exp_unfold \
    --plain-root conformer_transducer/exp_plain \
    --decoding-method modified_beam_search --epoch 8 \
    --memory-file conformer_transducer/exp_comparisons/unfolding/memory.jsonl \
    --out-dir conformer_transducer/exp_comparisons/unfolding

Reads what decode.py wrote (subnet-summary-*.json, recogs-*), the model configs and
training times in epoch-N.pt, and the step-memory records of benchmark_memory.py;
writes comparison.md and comparison.json to --out-dir.
"""

import argparse
import logging
from pathlib import Path

from allinone.reports.unfold_comparison import compare_unfolding, write_unfold_report
from allinone.utils.log import setup_script_logging


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--unfold-dir", type=Path, required=True)
    p.add_argument("--plain-root", type=Path, required=True, help="holds one exp dir per plain subnet name")
    p.add_argument("--decoding-method", default="modified_beam_search")
    p.add_argument("--epoch", type=int, required=True)
    p.add_argument("--memory-file", type=Path, help="JSON lines from benchmark_memory.py --json-out")
    p.add_argument("--grid", default="unfold", help="the --subnets value the unfolding run trained")
    p.add_argument("--out-dir", type=Path, required=True)
    p.add_argument("--alpha", type=float, default=0.05, help="significance level of MAPSSWE")
    args = p.parse_args()
    setup_script_logging()
    report = compare_unfolding(
        args.unfold_dir,
        args.plain_root,
        args.decoding_method,
        args.epoch,
        args.memory_file,
        args.grid,
        args.alpha,
    )
    write_unfold_report(report, args.out_dir)
    logging.info(f"wrote {args.out_dir}/comparison.md and comparison.json")
    print((args.out_dir / "comparison.md").read_text())


if __name__ == "__main__":
    main()
