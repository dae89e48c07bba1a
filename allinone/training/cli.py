"""Command-line flags of the recipe ``train.py`` scripts, generated from ``TrainConfig``.

Every option of the config tree becomes one flat flag with icefall's name
(``--exp-dir``, ``--max-duration``, ``--start-batch``) and the help text its field
carries; ``--model key=value`` sets architecture and quantizer fields of ``ModelConfig``.
"""

import argparse
import importlib.util
from pathlib import Path
from typing import Any, Dict

from allinone.nn.presets import MODEL_PRESETS, model_preset
from allinone.training.config import SECTIONS, TrainConfig, parse_model_overrides
from allinone.training.presets import METHOD_PRESETS, apply_preset
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
    flat = {k: v for k, v in vars(args).items() if k not in ("model", "preset", "model_preset")}
    return TrainConfig.from_flat(model=parse_model_overrides(args.model), **flat)


def train_parser(defaults: Dict[str, Any], description: str = "", argv=None) -> argparse.ArgumentParser:
    """``train.py``'s parser: ``--model-preset`` and ``--preset`` (read first) turn the recipe's
    ``defaults`` into the named model's and the method's, then every option is a flag whose
    default is the result."""
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)  # "--model" is not "--model-preset"
    pre.add_argument("--preset", default="", choices=("", *METHOD_PRESETS))
    pre.add_argument("--model-preset", default="", choices=("", *MODEL_PRESETS))
    known = pre.parse_known_args(argv)[0]
    preset = known.preset
    if known.model_preset:
        defaults = {**defaults, "model": model_preset(known.model_preset)}
    parser = argparse.ArgumentParser(
        description=description + _presets_help(), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--preset",
        default="",
        choices=("", *METHOD_PRESETS),
        help="a method's settings at once (allinone/training/presets.py); flags given as well win",
    )
    parser.add_argument(
        "--model-preset",
        default="",
        choices=("", *MODEL_PRESETS),
        help="a named model in place of the recipe's (allinone/nn/presets.py, e.g. lstm-digits); "
        "--model key=value still overrides its values",
    )
    add_train_arguments(parser, apply_preset(defaults, preset))
    return parser


def _presets_help() -> str:
    lines = [f"  {name:14s} {p.summary}" for name, p in METHOD_PRESETS.items()]
    return "\n\nMethod presets (--preset NAME):\n" + "\n".join(lines) + "\n"


def train_main(defaults: Dict[str, Any], description: str) -> None:
    """The whole ``train.py`` of a recipe: its flags (with the recipe's ``defaults``), then training."""
    from allinone.training.launch import train

    parser = train_parser(defaults, description)
    args = parser.parse_args()
    try:
        config = config_from_args(args)
    except ValueError as e:  # settings that do not go together, a bad --pretrained-dir: one line
        parser.error(str(e))
    train(config)


def recipe_defaults(train_script: Path) -> Dict[str, Any]:
    """``RECIPE_DEFAULTS`` of a recipe's ``train.py``, so its benchmark scripts share one source of truth."""
    spec = importlib.util.spec_from_file_location("recipe_train", Path(train_script))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.RECIPE_DEFAULTS
