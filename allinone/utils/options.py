"""Typed option dataclasses and the flat ``--dashed-name`` flags generated from them.

A script's settings are one dataclass whose fields carry their help text (``option``);
``add_dataclass_arguments`` turns every field into a flag with the field's type, default
and help, so the flags, their defaults and their documentation cannot drift apart.
"""

import argparse
import dataclasses
import typing
from pathlib import Path
from typing import Any, Dict, Optional, Sequence


def option(default: Any, help: str, choices: Optional[Sequence[str]] = None) -> Any:
    """A dataclass field with its help text (and the values it may take)."""
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple for a sequence default")
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices})


def str2bool(v: str) -> bool:
    if v.lower() in ("true", "1", "yes", "y"):
        return True
    if v.lower() in ("false", "0", "no", "n"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean, got {v!r}")


def comma_list(v: str) -> tuple:
    """``"a,b"`` -> ``("a", "b")``."""
    return tuple(v.split(","))


def _parser_of(annotation: Any):
    """The argparse ``type`` of a field annotation: bool, int, float, str, Path, an
    ``Optional`` of one, or a ``Tuple[str, ...]`` written comma-separated."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Union:  # Optional[X]
        (annotation,) = [a for a in args if a is not type(None)]
        origin = typing.get_origin(annotation)
    if origin is tuple:
        return comma_list
    if annotation is bool:
        return str2bool
    if annotation in (int, float, str, Path):
        return annotation
    raise TypeError(f"no flag type for a field annotated {annotation!r}")


def add_dataclass_arguments(
    parser: argparse._ActionsContainer, cls: type, defaults: Optional[Dict[str, Any]] = None
) -> None:
    """One ``--dashed-name`` flag per field of dataclass ``cls``.

    Args:
        parser: a parser or an argument group.
        cls: a dataclass whose fields were made with ``option``.
        defaults: values (by field name) that replace the dataclass defaults, e.g. a
            recipe's manifest names.
    """
    defaults = defaults or {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        meta = f.metadata
        parser.add_argument(
            "--" + f.name.replace("_", "-"),
            type=_parser_of(hints[f.name]),
            default=defaults.get(f.name, f.default),
            choices=meta.get("choices"),
            help=meta.get("help"),
        )


def dataclass_from_args(cls: type, args: argparse.Namespace, **extra: Any) -> Any:
    """An instance of ``cls`` from the parsed flags of ``add_dataclass_arguments``."""
    names = [f.name for f in dataclasses.fields(cls) if f.init and f.name not in extra]
    return cls(**{n: getattr(args, n) for n in names}, **extra)
