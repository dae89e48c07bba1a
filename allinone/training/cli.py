"""Command-line flags of the recipe ``train.py`` scripts, generated from ``TrainConfig``.

Every option of the config tree becomes one flat flag with icefall's name
(``--exp-dir``, ``--max-duration``, ``--start-batch``) and the help text its field
carries; ``--model key=value`` sets architecture and quantizer fields of ``ModelConfig``.
"""

import argparse
import importlib.util
from pathlib import Path
from typing import Any, Dict

from allinone.training.config import SECTIONS, TrainConfig, parse_model_overrides
from allinone.utils.options import add_dataclass_arguments


def add_train_arguments(parser: argparse.ArgumentParser, defaults: Dict[str, Any]) -> None:
    """Add every ``TrainConfig`` option as a ``--dashed-name`` flag, one argument group per section.

    Args:
        parser: the recipe's parser.
        defaults: recipe defaults by flag name (e.g. manifest names), overriding the
            dataclass ones; ``"model"``: a dict of ``ModelConfig`` values.
    """
    for section, kind in SECTIONS.items():
        add_dataclass_arguments(parser.add_argument_group(section, kind.__doc__), kind, defaults)
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


def train_main(defaults: Dict[str, Any], description: str) -> None:
    """The whole ``train.py`` of a recipe: its flags (with the recipe's ``defaults``), then training."""
    from allinone.training.launch import train

    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_train_arguments(parser, defaults)
    train(config_from_args(parser.parse_args()))


def recipe_defaults(train_script: Path) -> Dict[str, Any]:
    """``RECIPE_DEFAULTS`` of a recipe's ``train.py``, so its benchmark scripts share one source of truth."""
    spec = importlib.util.spec_from_file_location("recipe_train", Path(train_script))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.RECIPE_DEFAULTS
