"""Command-line flags of the recipe ``train.py`` scripts, with icefall's names."""

import argparse
from dataclasses import fields
from pathlib import Path
from typing import Dict

from allinone.training.compression import CompressionConfig
from allinone.training.trainer import TrainConfig, parse_model_overrides


def str2bool(v: str) -> bool:
    if v.lower() in ("true", "1", "yes", "y"):
        return True
    if v.lower() in ("false", "0", "no", "n"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean, got {v!r}")


def add_train_arguments(parser: argparse.ArgumentParser, defaults: Dict) -> None:
    """Add every ``TrainConfig`` field as a ``--dashed-name`` flag.

    Args:
        parser: the recipe's parser.
        defaults: recipe-specific defaults (e.g. manifest names) overriding the dataclass ones.
    """
    base = TrainConfig(
        exp_dir=Path("."), bpe_model=Path("."), manifest_dir=Path("."), train_cuts="", valid_cuts=""
    )
    helps = {
        "world_size": "number of data-parallel processes (gloo on CPU, nccl on GPU)",
        "start_epoch": "resume from epoch-(N-1).pt and train epoch N onwards (without this or "
        "--start-batch, an --exp-dir holding checkpoints is refused, not overwritten)",
        "start_batch": "resume from checkpoint-N.pt (N = global batch index) at the next unseen batch",
        "max_duration": "seconds of audio per batch",
        "save_every_n": "write checkpoint-<global batch>.pt every N batches (0: never)",
        "keep_last_k": "keep only the newest K checkpoint-*.pt files",
        "average_period": "update the running-average model every N batches",
        "warm_step": "batches over which the loss moves from the simple to the pruned transducer loss",
        "max_batches_per_epoch": "stop each epoch after N batches (0: whole epoch); for smoke tests",
        "sortagrad_epochs": "epochs (from the first) whose batches go from short to long utterances",
        "use_ctc": "add a CTC head on the encoder (auxiliary loss, or the only one)",
        "use_transducer": "train the pruned transducer head",
        "ctc_loss_scale": "weight of the CTC loss",
        "loss_backend": "'torch' (pure PyTorch pruned RNN-T) or 'k2' (needs import k2)",
        "subnets": "nested training grid: a preset name (default, depth, width, bits, full) or "
        "comma-separated subnet names such as d6-w1.0-b32,d4-w0.5-b4; empty: the full float model",
        "subnet_policy": "subnets run per step: all, sandwich (largest + smallest + k random), "
        "largest_random (largest + k random among all others), or auto (all up to 6 subnets, "
        "else sandwich)",
        "sandwich_k": "subnets drawn at random per step (sandwich: from the middle subnets; "
        "largest_random: from all but the largest)",
        "subnet_loss_weights": "per-subnet loss weights as NAME=W,NAME=W (others 1.0)",
        "subnet_draw_weights": "sandwich / largest_random: relative chance of a subnet to be drawn, "
        "as NAME=W,NAME=W (others 1.0; none given: uniform)",
        "distill": "add KL from the detached largest subnet to every other subnet",
        "distill_scale": "weight of a student's KL term",
        "student_label_scale": "weight of a student's label losses when distilling",
        "distill_start_batch": "global batch from which distillation runs (labels only before it)",
        "warmup_subnet": "one subnet (e.g. the 6-layer seed of a deeper model) trained alone "
        "for the first --warmup-subnet-batches batches",
        "warmup_subnet_batches": "length of the --warmup-subnet phase in global batches (0: none)",
        "unfold_relax": "give each repeat of an unfolded block its own output gain and bias",
        "init_from": "start from this trained (float) checkpoint's averaged weights; quantizers are "
        "initialised from them",
        "reorder_ffn_units": "with --init-from: order each FFN's hidden units once, most important "
        "first, so width prefixes keep the strongest (none, weight-norm: |row of W1| x |column of W2|)",
        "teacher_checkpoint": "frozen float model whose outputs every subnet distils (with --distill true)",
        "bit_map": "fix each layer's bit-width from this bit-map.json (subnet bits 'mix'; two-stage)",
        "gq_alpha_start": "general quantizer: softmax sharpness at the first batch",
        "gq_alpha_end": "general quantizer: sharpness after --gq-anneal-batches (geometric ramp)",
        "gq_anneal_batches": "general quantizer: batches of the ramp; hard assignment afterwards",
        "mp_target_bits": "one-stage mixed precision: average bit-width the penalty drives to (0: off)",
        "mp_penalty_scale": "weight of (expected average bits - target)^2",
        "mp_tau_start": "Gumbel-softmax temperature at the first batch",
        "mp_tau_end": "Gumbel-softmax temperature after --mp-anneal-batches (geometric)",
        "mp_anneal_batches": "batches of the temperature ramp",
        "mp_finalise_batch": "global batch after which the bit map is fixed (budgeted argmax) and the "
        "rest of the run trains at it (0: when the temperature ramp ends)",
        "mp_lr_scale": "learning rate of the bit-width logits relative to the weights'",
    }
    settings = base.to_dict()
    compression = [f.name for f in fields(CompressionConfig)]
    # the inherited compression flags go last in --help
    for name in [n for n in settings if n not in compression] + compression:
        value = settings[name]
        if name == "model":
            continue
        default = defaults.get(name, value)
        flag = "--" + name.replace("_", "-")
        kind = type(getattr(base, name))
        if kind is bool:
            parser.add_argument(flag, type=str2bool, default=default, help=helps.get(name, "(bool)"))
        elif issubclass(kind, Path):
            parser.add_argument(flag, type=Path, default=default, help=helps.get(name))
        else:
            parser.add_argument(flag, type=kind, default=default, help=helps.get(name))
    # "extend" appends to the recipe's defaults, so --model num_layers=12 changes one
    # value and keeps the rest (later keys win in parse_model_overrides).
    parser.add_argument(
        "--model",
        nargs="*",
        action="extend",
        default=[f"{k}={v}" for k, v in defaults.get("model", {}).items()],
        help="model hyper-parameters as key=value, overriding the recipe's (e.g. num_layers=12)",
    )


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Turn parsed flags back into a ``TrainConfig``."""
    kwargs = {k: v for k, v in vars(args).items() if k != "model"}
    return TrainConfig(**kwargs, model=parse_model_overrides(args.model))
