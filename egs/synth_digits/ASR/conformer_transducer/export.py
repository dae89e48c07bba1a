#!/usr/bin/env python3
"""Export one subnet of a trained checkpoint as a packed low-bit model file.

Usage (from egs/synth_digits/ASR):

  ./conformer_transducer/export.py --epoch 2 --avg 1 --use-averaged-model true \
    --exp-dir conformer_transducer/exp_quant/lsq-b4 --subnet d6-w1.0-b4

Writes <exp-dir>/<subnet>.aio (or --out): packed b-bit integer codes and their steps
(uniform quantizers) or b-bit indices and a codebook (GQ), float32 for everything else
the subnet runs, and the standalone model config. Prints its size against the accounted
stored size, then reloads it and checks that its encoder outputs equal the fake-quantized
subnet's on random input; the numbers (and the average weight bit-width, and the per-layer
bit map of a mixed-precision subnet) also go to <out>.json. Decode it with
decode.py --packed-model.
"""

import argparse
import json
import logging
from pathlib import Path

from allinone.checkpoint.weights import load_for_decoding
from allinone.deploy.accounting import average_weight_bits
from allinone.deploy.export import export_subnet, file_vs_accounting, round_trip_error
from allinone.quant.mixed import bit_map
from allinone.subnet import MIXED_BITS, select_subnets
from allinone.utils.log import setup_script_logging
from allinone.utils.options import str2bool


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp-dir", type=Path, required=True)
    p.add_argument("--epoch", type=int, required=True)
    p.add_argument("--avg", type=int, default=1)
    p.add_argument("--use-averaged-model", type=str2bool, default=True)
    p.add_argument("--subnet", required=True, help="a subnet the checkpoint was trained with")
    p.add_argument("--out", type=Path, help="default: <exp-dir>/<subnet>.aio")
    args = p.parse_args()
    setup_script_logging()
    model, trained = load_for_decoding(args.exp_dir, args.epoch, args.avg, args.use_averaged_model)
    (subnet,) = select_subnets([args.subnet], trained)
    out = args.out or args.exp_dir / f"{subnet.name}.aio"
    info = export_subnet(model, subnet, out)
    info["max_abs_diff"] = round_trip_error(model, subnet, out)
    info["file_vs_accounting"] = file_vs_accounting(info)
    info["average_bits"] = average_weight_bits(model, subnet)
    if subnet.bits_for("ffn") == MIXED_BITS:
        info["bit_map"] = bit_map(model)
    del info["config"]
    out.with_suffix(".json").write_text(json.dumps(info, indent=1) + "\n")
    logging.info(json.dumps(info))
    print(
        f"{out}: {info['file_bytes']} bytes, accounted {info['accounted_bytes']:.0f} "
        f"({100 * info['file_vs_accounting']:+.2f}%); "
        f"reloaded encoder and heads max |diff| {info['max_abs_diff']:.2e}"
    )


if __name__ == "__main__":
    main()
