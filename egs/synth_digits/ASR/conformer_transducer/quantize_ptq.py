#!/usr/bin/env python3
r"""Post-training int8 (per-channel, max-abs) weight quantization of a trained float model.

Usage (from egs/synth_digits/ASR):

  ./conformer_transducer/quantize_ptq.py \
    --float-checkpoint conformer_transducer/exp_float/epoch-10.pt \
    --exp-dir conformer_transducer/exp_quant/ptq-int8

Writes <exp-dir>/epoch-1.pt holding subnet d<L>-w1.0-b8 (decode.py --epoch 1, export.py).
"""

import argparse
from pathlib import Path

from allinone.deploy.ptq import quantize_checkpoint_int8


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--float-checkpoint", type=Path, required=True)
    p.add_argument("--exp-dir", type=Path, required=True)
    args = p.parse_args()
    info = quantize_checkpoint_int8(args.float_checkpoint, args.exp_dir)
    print(f"{args.exp_dir}/epoch-1.pt: subnet {info['subnet']}, {info['seconds']:.1f} s")


if __name__ == "__main__":
    main()
