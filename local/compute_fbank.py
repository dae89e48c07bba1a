#!/usr/bin/env python3
"""Compute 80-dim log-mel filterbank features for lhotse manifests.

Reads ``<manifest-dir>/<prefix>_{recordings,supervisions}_<split>.jsonl.gz``,
checks them (missing audio files, sample rates other than 16 kHz and empty
transcripts are reported by recording id and file before any work is done),
extracts features into lilcom-compressed chunked archives
``<output-dir>/<prefix>_feats_<split>.lca`` and writes the cut set
``<output-dir>/<prefix>_cuts_<split>.jsonl.gz``.  Splits whose cut set exists
already are skipped.

Options for corpora other than the synthetic one: ``--perturb-speed-splits`` adds 0.9x
and 1.1x copies of those splits (LibriSpeech training sets), ``--trim-to-supervisions``
cuts utterances out of long recordings (Switchboard conversations, one channel each),
``--resample`` converts the audio to the model's rate first (8 kHz telephone speech to
16 kHz); the sample-rate check then accepts any rate.

Usage (from a recipe directory):

    python ../../../local/compute_fbank.py --manifest-dir data/manifests \\
        --output-dir data/fbank --prefix synth_digits --splits train dev --num-jobs 2
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from allinone.data.features import compute_fbank, speed_perturbed, write_cuts_atomically
from allinone.data.validate import ManifestError, validate_manifests
from allinone.utils.log import setup_script_logging
from allinone.utils.options import str2bool

# lhotse extracts in --num-jobs *spawned* processes, which re-import this
# module: one torch thread per process avoids oversubscribing the cores.
torch.set_num_threads(1)


def get_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--manifest-dir", type=Path, required=True, help="directory with recording/supervision manifests"
    )
    p.add_argument("--output-dir", type=Path, required=True, help="where features and cut sets are written")
    p.add_argument("--prefix", required=True, help="corpus prefix of the manifest names, e.g. synth_digits")
    p.add_argument("--splits", nargs="+", required=True, help="split names, e.g. train dev test")
    p.add_argument("--num-jobs", type=int, default=2, help="parallel feature-extraction processes")
    p.add_argument("--num-mel-bins", type=int, default=80)
    p.add_argument("--sampling-rate", type=int, default=16000, help="required audio sample rate")
    p.add_argument(
        "--resample", type=str2bool, default=False, help="resample the audio to --sampling-rate first"
    )
    p.add_argument(
        "--trim-to-supervisions",
        type=str2bool,
        default=False,
        help="one cut per supervision (its channel only), for long multi-utterance recordings",
    )
    p.add_argument(
        "--perturb-speed-splits",
        nargs="*",
        default=[],
        help="splits that also get 0.9x and 1.1x speed-perturbed copies (training sets)",
    )
    return p.parse_args(argv)


def load_split(manifest_dir: Path, prefix: str, split: str):
    from lhotse import RecordingSet, SupervisionSet

    rec_path = manifest_dir / f"{prefix}_recordings_{split}.jsonl.gz"
    sup_path = manifest_dir / f"{prefix}_supervisions_{split}.jsonl.gz"
    for path in (rec_path, sup_path):
        if not path.is_file():
            raise FileNotFoundError(f"manifest not found: {path}")
    return RecordingSet.from_file(rec_path), SupervisionSet.from_file(sup_path)


def compute_split(args: argparse.Namespace, split: str, recordings, supervisions) -> None:
    from lhotse import CutSet

    cuts_path = args.output_dir / f"{args.prefix}_cuts_{split}.jsonl.gz"
    cuts = CutSet.from_manifests(recordings=recordings, supervisions=supervisions)
    if args.trim_to_supervisions:
        # lhotse trims lazily; feature extraction splits the set over jobs, which needs it eager
        cuts = cuts.trim_to_supervisions(keep_overlapping=False, keep_all_channels=False).to_eager()
    if args.resample:
        cuts = cuts.resample(args.sampling_rate)
    if split in args.perturb_speed_splits:
        cuts = speed_perturbed(cuts)
    cuts = compute_fbank(
        cuts, args.output_dir / f"{args.prefix}_feats_{split}", args.num_jobs, args.num_mel_bins
    )
    write_cuts_atomically(cuts, cuts_path)
    logging.info(f"{split}: wrote {cuts_path}")


def main(argv=None) -> None:
    setup_script_logging()
    args = get_args(argv)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    # Validate every pending split before extracting anything, so a broken
    # manifest fails the stage at once instead of after the first splits.
    pending = []
    for split in args.splits:
        cuts_path = args.output_dir / f"{args.prefix}_cuts_{split}.jsonl.gz"
        if cuts_path.is_file():
            logging.info(f"{split}: {cuts_path} exists, skipping")
            continue
        recordings, supervisions = load_split(args.manifest_dir, args.prefix, split)
        logging.info(f"{split}: validating {len(recordings)} recordings, {len(supervisions)} supervisions")
        try:
            expected_rate = None if args.resample else args.sampling_rate
            validate_manifests(recordings, supervisions, expected_sampling_rate=expected_rate)
        except ManifestError as e:
            raise SystemExit(f"{split}: manifests in {args.manifest_dir} are not usable.\n{e}") from None
        pending.append((split, recordings, supervisions))
    for split, recordings, supervisions in pending:
        compute_split(args, split, recordings, supervisions)


if __name__ == "__main__":
    main()
