#!/usr/bin/env python3
"""Compute 80-dim log-mel filterbank features for lhotse manifests.

Reads ``<manifest-dir>/<prefix>_{recordings,supervisions}_<split>.jsonl.gz``,
checks them (missing audio files, sample rates other than 16 kHz and empty
transcripts are reported by recording id and file before any work is done),
extracts features into lilcom-compressed chunked archives
``<output-dir>/<prefix>_feats_<split>.lca`` and writes the cut set
``<output-dir>/<prefix>_cuts_<split>.jsonl.gz``.  Splits whose cut set exists
already are skipped.

Usage (from a recipe directory):

    python ../../../local/compute_fbank.py --manifest-dir data/manifests \\
        --output-dir data/fbank --prefix synth_digits --splits train dev --num-jobs 2
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from allinone.data.validate import ManifestError, validate_manifests
from allinone.utils.log import setup_script_logging

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
    from lhotse import CutSet, Fbank, FbankConfig, LilcomChunkyWriter

    cuts_path = args.output_dir / f"{args.prefix}_cuts_{split}.jsonl.gz"
    cuts = CutSet.from_manifests(recordings=recordings, supervisions=supervisions)
    extractor = Fbank(FbankConfig(num_mel_bins=args.num_mel_bins))
    logging.info(f"{split}: extracting {args.num_mel_bins}-dim fbank with {args.num_jobs} job(s)")
    cuts = cuts.compute_and_store_features(
        extractor=extractor,
        storage_path=args.output_dir / f"{args.prefix}_feats_{split}",
        num_jobs=args.num_jobs,
        storage_type=LilcomChunkyWriter,
    )
    # Write under a temporary name first so an interrupted run never leaves a
    # cut set that later runs would mistake for a finished one.
    tmp = cuts_path.with_name(f"tmp_{cuts_path.name}")
    cuts.to_file(tmp)
    tmp.replace(cuts_path)
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
            validate_manifests(recordings, supervisions, expected_sampling_rate=args.sampling_rate)
        except ManifestError as e:
            raise SystemExit(f"{split}: manifests in {args.manifest_dir} are not usable.\n{e}") from None
        pending.append((split, recordings, supervisions))
    for split, recordings, supervisions in pending:
        compute_split(args, split, recordings, supervisions)


if __name__ == "__main__":
    main()
