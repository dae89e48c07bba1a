#!/usr/bin/env python3
"""Store channel copies of a training cut set: the same cuts heard through a random
telephone line or microphone each (``allinone/data/channel.py``), as fbank features.

For each kind, writes ``<cuts stem>-<kind>.jsonl.gz`` beside ``--cuts`` and the features in
``<feats-prefix>-<kind>/``. ``train.py --channel-copies telephone,microphone
--channel-copy-prob P`` then hears each training cut as one of its copies with chance P
per epoch. Copies whose manifest exists are skipped.

Usage (from a recipe directory, after compute_fbank.py):

    python ../../../local/compute_channel_copies.py \\
        --cuts data/fbank/synth_digits_cuts_train.jsonl.gz \\
        --feats-prefix data/fbank/synth_digits_feats_train --num-jobs 2
"""

import argparse
import logging
from pathlib import Path

from allinone.data.channel_copies import (
    CHANNEL_KINDS,
    compute_channel_copy,
    copy_manifest_name,
    parse_channel_kinds,
)
from allinone.data.datamodule import check_audio_exists, load_cuts
from allinone.data.features import write_cuts_atomically
from allinone.utils.log import setup_script_logging


def get_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cuts", type=Path, required=True, help="training cut manifest, with audio")
    p.add_argument("--feats-prefix", type=Path, required=True, help="features go in <feats-prefix>-<kind>/")
    p.add_argument(
        "--kinds",
        default=",".join(CHANNEL_KINDS),
        help=f"comma list of channel kinds ({', '.join(CHANNEL_KINDS)})",
    )
    p.add_argument("--seed", type=int, default=42, help="with each cut id, picks that cut's channel")
    p.add_argument("--num-jobs", type=int, default=2, help="parallel processes")
    return p.parse_args(argv)


def main(argv=None) -> None:
    setup_script_logging()
    args = get_args(argv)
    try:
        kinds = parse_channel_kinds(args.kinds)
    except ValueError as e:
        raise SystemExit(f"--kinds: {e}") from None
    cuts = None
    for kind in kinds:
        out = args.cuts.with_name(copy_manifest_name(args.cuts.name, kind))
        if out.is_file():
            logging.info(f"{out} exists, skipping")
            continue
        if cuts is None:
            cuts = load_cuts(args.cuts, lazy=False)
            check_audio_exists(cuts, str(args.cuts), limit=None)
        feats_dir = args.feats_prefix.with_name(f"{args.feats_prefix.name}-{kind}")
        copy = compute_channel_copy(cuts, kind, args.seed, feats_dir, args.num_jobs)
        write_cuts_atomically(copy, out)
        logging.info(f"{kind}: wrote {out}")


if __name__ == "__main__":
    main()
