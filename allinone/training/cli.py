"""Command-line flags of the recipe ``train.py`` scripts, generated from ``TrainConfig``.

Every option of the config tree becomes one flat flag with icefall's name
(``--exp-dir``, ``--max-duration``, ``--start-batch``) and the help text its field
carries; ``--model key=value`` sets architecture and quantizer fields of ``ModelConfig``.
"""

import argparse
import importlib.util
from dataclasses import fields
from pathlib import Path
from typing import Any, Dict

from allinone.training.config import SECTIONS, TrainConfig, parse_model_overrides


def str2bool(v: str) -> bool:
    if v.lower() in ("true", "1", "yes", "y"):
        return True
    if v.lower() in ("false", "0", "no", "n"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean, got {v!r}")


def add_train_arguments(parser: argparse.ArgumentParser, defaults: Dict[str, Any]) -> None:
    """Add every ``TrainConfig`` option as a ``--dashed-name`` flag, one argument group per section.

    Args:
        parser: the recipe's parser.
        defaults: recipe defaults by flag name (e.g. manifest names), overriding the
            dataclass ones; ``"model"``: a dict of ``ModelConfig`` values.
    """
    for section, kind in SECTIONS.items():
        group = parser.add_argument_group(section, kind.__doc__)
        for f in fields(kind):
            default = defaults.get(f.name, f.default)
            flag = "--" + f.name.replace("_", "-")
            parse = str2bool if f.type is bool else f.type
            group.add_argument(flag, type=parse, default=default, help=f.metadata["help"])
    # "extend" appends to the recipe's defaults, so --model num_layers=12 changes one
    # value and keeps the rest (later keys win in parse_model_overrides).
    parser.add_argument(
        "--model",
        nargs="*",
        action="extend",
        default=[f"{k}={v}" for k, v in defaults.get("model", {}).items()],
        help="model hyper-parameters and quantizer as key=value, overriding the recipe's "
        "(e.g. num_layers=12 quantizer=gq quant_granularity=channel mp_candidates=2,3,4,6,8)",
    )


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The ``TrainConfig`` of parsed flags."""
    flat = {k: v for k, v in vars(args).items() if k != "model"}
    return TrainConfig.from_flat(model=parse_model_overrides(args.model), **flat)


def recipe_defaults(train_script: Path) -> Dict[str, Any]:
    """``RECIPE_DEFAULTS`` of a recipe's ``train.py``, so its benchmark scripts share one source of truth."""
    spec = importlib.util.spec_from_file_location("recipe_train", Path(train_script))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.RECIPE_DEFAULTS
