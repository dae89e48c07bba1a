#!/usr/bin/env python3
"""Archive decoded runs: keep what the comparison reports read, without the checkpoints.

Usage (from a recipe directory, e.g. egs/synth_digits/ASR):

  ../../../local/archive_decoded.py --epoch 12 \
    --out-root conformer_transducer/decoded \
    conformer_transducer/exp_all_in_one_k1w300_heads_seed43 \
    conformer_transducer/exp_individual_heads_seed43/*/

Each run dir R is archived to OUT_ROOT/<R relative to --base>; --base defaults to the
parent of OUT_ROOT, so conformer_transducer/exp_individual_heads_seed43/d6-w1.0-b2 goes to
conformer_transducer/decoded/exp_individual_heads_seed43/d6-w1.0-b2: the decoding summary,
the recogs (gzipped) and run-record-epoch-N.json (times and recipe from epoch-N.pt). The
archived dirs stand in for the exp dirs in local/compare_all_in_one.py, e.g.
--individual-root conformer_transducer/decoded/exp_individual_heads_seed43.
Runs not yet trained or decoded to --epoch are skipped with a message; a run dir outside
--base, or two run dirs that would share an archive, are refused before anything is written.
"""

import argparse
import os
import sys
from pathlib import Path
from typing import List

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root

from allinone.reports.decoded_archive import archive_run  # noqa: E402


def archive_dirs(run_dirs: List[Path], out_root: Path, base: Path) -> List[Path]:
    """The archive of each run dir: ``out_root / <run dir relative to base>``.

    Raises:
        ValueError: a run dir is not below ``base``, or two run dirs map to one archive.
    """
    # abspath, not resolve: a symlinked run dir is archived under its own name
    base = Path(os.path.abspath(base))
    source_of = {}  # archive dir -> the run dir that goes there
    for run_dir in run_dirs:
        try:
            rel = Path(os.path.abspath(run_dir)).relative_to(base)
        except ValueError:
            raise ValueError(f"{run_dir} is not below --base {base}") from None
        if rel == Path("."):
            raise ValueError(f"{run_dir} is --base itself: give the exp dirs below it")
        dst = out_root / rel
        if dst in source_of:
            raise ValueError(f"{source_of[dst]} and {run_dir} would both be archived to {dst}")
        source_of[dst] = run_dir
    return list(source_of)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dirs", type=Path, nargs="+")
    p.add_argument("--epoch", type=int, required=True)
    p.add_argument("--decoding-method", default="modified_beam_search")
    p.add_argument("--out-root", type=Path, required=True)
    p.add_argument(
        "--base", type=Path, help="run dirs are named by their path below it (default: OUT_ROOT/..)"
    )
    args = p.parse_args()
    try:
        outs = archive_dirs(args.run_dirs, args.out_root, args.base or args.out_root.parent)
    except ValueError as e:
        sys.exit(str(e))
    skipped = 0
    for run_dir, out in zip(args.run_dirs, outs):
        try:
            written = archive_run(run_dir, out, args.decoding_method, args.epoch)
        except FileNotFoundError as e:
            print(f"skipped: {e}", file=sys.stderr)
            skipped += 1
            continue
        print(f"{run_dir} -> {out} ({len(written)} files)")
    if skipped == len(args.run_dirs):
        sys.exit(f"nothing archived: none of the {skipped} run dirs is decoded at epoch {args.epoch}")


if __name__ == "__main__":
    main()
