"""Command-line arguments naming one-pass runs and their twins, once per training seed."""

import argparse
from pathlib import Path
from typing import List, Tuple


def add_run_pair_args(parser: argparse.ArgumentParser) -> None:
    """``--all-in-one-dir`` and ``--individual-root``, each repeated once per seed, in order."""
    parser.add_argument(
        "--all-in-one-dir", type=Path, action="append", required=True, help="repeat once per seed"
    )
    parser.add_argument(
        "--individual-root",
        type=Path,
        action="append",
        required=True,
        help="holds one exp dir per subnet name; one per --all-in-one-dir, in the same order",
    )


def run_pairs(parser: argparse.ArgumentParser, args: argparse.Namespace) -> List[Tuple[Path, Path]]:
    """The (one pass, twins' root) pairs; a parser error if the two counts differ."""
    if len(args.all_in_one_dir) != len(args.individual_root):
        parser.error(
            f"{len(args.all_in_one_dir)} --all-in-one-dir but {len(args.individual_root)} "
            "--individual-root: give one root of twins per one-pass run"
        )
    return list(zip(args.all_in_one_dir, args.individual_root))
