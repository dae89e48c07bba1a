#!/usr/bin/env python3
r"""Tabulate the quantization runs of run_quantizers.sh against the float model.

Usage:

  ./local/compare_quantizers.py \
    --float-dir conformer_transducer/exp --float-epoch 10 \
    --run "uniform 4-bit=conformer_transducer/exp_quant/lsq-b4" \
    --run "two-stage 3.0=conformer_transducer/exp_quant/mp2-t3" \
    --search "two-stage 3.0=conformer_transducer/exp_quant/mp1-t3" \
    --decoding-method modified_beam_search --out-dir conformer_transducer/exp_comparisons/quantizers

Each --run directory must hold an exported packed file's <subnet>.json and its decoding
(decode.py --packed-model). Writes comparison.md and comparison.json to --out-dir.
"""

import argparse
from pathlib import Path

from allinone.reports.quant_comparison import compare_quantizers, write_quant_report


def _pairs(items):
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep:
            raise SystemExit(f"expected NAME=DIR, got {item!r}")
        out[name] = Path(path)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--float-dir", type=Path, required=True)
    p.add_argument("--float-epoch", type=int, required=True)
    p.add_argument("--run", action="append", default=[], help="NAME=DIR, one per row, in table order")
    p.add_argument(
        "--search", action="append", default=[], help="NAME=DIR: the search run of a two-stage row"
    )
    p.add_argument("--decoding-method", default="modified_beam_search")
    p.add_argument("--out-dir", type=Path, required=True)
    p.add_argument("--alpha", type=float, default=0.05)
    args = p.parse_args()
    report = compare_quantizers(
        args.float_dir,
        args.float_epoch,
        _pairs(args.run),
        args.decoding_method,
        _pairs(args.search),
        args.alpha,
    )
    write_quant_report(report, args.out_dir)
    print((args.out_dir / "comparison.md").read_text())


if __name__ == "__main__":
    main()
