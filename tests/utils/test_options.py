"""Flags generated from an option dataclass: types, defaults, choices and help come from the fields."""

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import pytest

from allinone.utils.options import add_dataclass_arguments, dataclass_from_args, option


@dataclass
class Example:
    epoch: Optional[int] = option(None, "which epoch")
    sets: Tuple[str, ...] = option(("a", "b"), "comma-separated sets")
    fast: bool = option(True, "go fast")
    method: str = option("x", "the method", choices=("x", "y"))
    out: Path = option(Path("o"), "where")


def _parse(argv, defaults=None):
    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, Example, defaults)
    return dataclass_from_args(Example, parser.parse_args(argv)), parser


def test_flags_take_the_fields_types_and_defaults():
    got, parser = _parse(["--epoch", "3", "--sets", "c,d", "--fast", "false", "--out", "p"])
    assert got == Example(epoch=3, sets=("c", "d"), fast=False, method="x", out=Path("p"))
    assert _parse([])[0] == Example()
    assert _parse([], {"method": "y"})[0].method == "y"
    assert "the method" in parser.format_help()


def test_a_value_outside_the_choices_is_refused(capsys):
    with pytest.raises(SystemExit):
        _parse(["--method", "z"])
    assert "invalid choice: 'z'" in capsys.readouterr().err
