#!/usr/bin/env python3
r"""Tabulate exported subnets: torch against sherpa-onnx fp32 / int8 / int8-codes.

Usage (from egs/synth_digits/ASR):

  ../../../local/compare_onnx.py --exp-dir conformer_transducer/exp_all_in_one --epoch 20 \
    --onnx-dir conformer_transducer/exp_all_in_one/onnx --subnets d6-w1.0-b32,d4-w0.5-b8 \
    --decoding-method modified_beam_search --out-dir conformer_transducer/exp_comparisons/onnx

Needs decode.py's results of those subnets in <exp-dir>/<decoding-method>/ and
onnx_decode.py's (engine sherpa-onnx) in <onnx-dir>/sherpa-onnx-<decoding-method>/.
Writes comparison.md and comparison.json to --out-dir and prints the table.
"""

import argparse
from pathlib import Path

from allinone.decoding.result_files import decoding_key
from allinone.reports.onnx_comparison import compare_onnx, onnx_table, write_onnx_report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp-dir", type=Path, required=True)
    p.add_argument("--epoch", type=int, required=True)
    p.add_argument("--onnx-dir", type=Path, required=True)
    p.add_argument("--subnets", required=True, help="comma-separated, in table order")
    p.add_argument("--test-sets", default="test-seen,test-unseen")
    p.add_argument("--decoding-method", default="modified_beam_search")
    p.add_argument("--beam-size", type=int, default=4)
    p.add_argument("--out-dir", type=Path, required=True)
    args = p.parse_args()
    test_sets = args.test_sets.split(",")
    rows = compare_onnx(
        args.exp_dir,
        args.epoch,
        args.onnx_dir,
        args.subnets.split(","),
        test_sets,
        args.decoding_method,
        args.onnx_dir / f"sherpa-onnx-{args.decoding_method}",
        decoding_key(args.decoding_method, args.beam_size),
    )
    write_onnx_report(rows, test_sets, args.out_dir)
    print(onnx_table(rows, test_sets), end="")


if __name__ == "__main__":
    main()
