"""What a recipe's ``export.py`` does: one subnet of a checkpoint to a packed low-bit file, checked."""

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


def export_main(description: str) -> None:
    """Parse ``export.py``'s flags, write ``<subnet>.aio`` and its ``.json`` report, print the check."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
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
