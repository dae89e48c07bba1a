#!/usr/bin/env python3
"""Archive decoded runs: keep what the comparison reports read, without the checkpoints.

Usage (from a recipe directory, e.g. egs/synth_digits/ASR):

  ../../../local/archive_decoded.py --epoch 12 \
    --out-root conformer_transducer/decoded \
    conformer_transducer/exp_all_in_one_k1w300_heads_seed43 \
    conformer_transducer/exp_individual_heads_seed43/*/

Each run dir R is archived to OUT_ROOT/<R relative to the recipe dir, without its first
component>, e.g. conformer_transducer/exp_individual_heads_seed43/d6-w1.0-b2 to
conformer_transducer/decoded/exp_individual_heads_seed43/d6-w1.0-b2: the decoding summary,
the recogs (gzipped) and run-record-epoch-N.json (times and recipe from epoch-N.pt). The
archived dirs stand in for the exp dirs in local/compare_all_in_one.py, e.g.
--individual-root conformer_transducer/decoded/exp_individual_heads_seed43.
Runs not yet trained or decoded to --epoch are skipped with a message.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root

from allinone.reports.decoded_archive import archive_run  # noqa: E402


def archive_name(run_dir: Path) -> Path:
    """``recipe/exp_x/sub`` -> ``exp_x/sub``: the run's path below its recipe directory."""
    parts = Path(run_dir).parts
    if len(parts) < 2:
        raise ValueError(f"{run_dir}: give run dirs as <recipe>/<exp dir>[/<subnet>]")
    return Path(*parts[1:])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dirs", type=Path, nargs="+")
    p.add_argument("--epoch", type=int, required=True)
    p.add_argument("--decoding-method", default="modified_beam_search")
    p.add_argument("--out-root", type=Path, required=True)
    args = p.parse_args()
    skipped = 0
    for run_dir in args.run_dirs:
        out = args.out_root / archive_name(run_dir)
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
