#!/usr/bin/env python3
r"""Tabulate the quantization runs of run_quantizers.sh against the float model.

Usage:

  ./local/compare_quantizers.py \
    --float-dir conformer_transducer/exp --float-epoch 10 \
    --run "uniform 4-bit=conformer_transducer/exp_quant/lsq-b4" \
    --run "two-stage 3.0=conformer_transducer/exp_quant/mp2-t3" \
    --search "two-stage 3.0=conformer_transducer/exp_quant/mp2-search-t3" \
    --decoding-method modified_beam_search --out-dir conformer_transducer/exp_comparisons/quantizers

  # two seeds pooled: --float-dir once per seed, each row's runs comma-separated in that order
  ./local/compare_quantizers.py --float-epoch 10 \
    --float-dir conformer_transducer/exp --float-dir conformer_transducer/exp_seed43 \
    --run "uniform 4-bit=conformer_transducer/exp_quant/lsq-b4,conformer_transducer/exp_quant_seed43/lsq-b4" \
    --out-dir conformer_transducer/exp_comparisons/quantizers

Each --run directory must hold an exported packed file's <subnet>.json and its decoding
(decode.py --packed-model). Writes comparison.md and comparison.json to --out-dir.
"""

import argparse
from pathlib import Path

from allinone.reports.quant_comparison import compare_quantizers, write_quant_report


def _pairs(items):
    """NAME=DIR[,DIR...] arguments as name -> the directories, one per seed."""
    out = {}
    for item in items:
        name, sep, paths = item.partition("=")
        if not sep or not paths:
            raise SystemExit(f"expected NAME=DIR[,DIR...], got {item!r}")
        out[name] = [Path(p) for p in paths.split(",")]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--float-dir", type=Path, action="append", required=True, help="the float model; once per seed"
    )
    p.add_argument("--float-epoch", type=int, required=True)
    p.add_argument(
        "--run",
        action="append",
        default=[],
        help="NAME=DIR[,DIR...], one per row in table order; one DIR per seed",
    )
    p.add_argument(
        "--search", action="append", default=[], help="NAME=DIR[,DIR...]: the search runs of a two-stage row"
    )
    p.add_argument("--decoding-method", default="modified_beam_search")
    p.add_argument("--out-dir", type=Path, required=True)
    p.add_argument("--alpha", type=float, default=0.05)
    args = p.parse_args()
    try:
        report = compare_quantizers(
            args.float_dir,
            args.float_epoch,
            _pairs(args.run),
            args.decoding_method,
            _pairs(args.search),
            args.alpha,
        )
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"compare_quantizers.py: {e}") from None
    write_quant_report(report, args.out_dir)
    print((args.out_dir / "comparison.md").read_text())


if __name__ == "__main__":
    main()
