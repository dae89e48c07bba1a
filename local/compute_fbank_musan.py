#!/usr/bin/env python3
"""Fbank features of MUSAN's music and noise, the cut set ``train.py --enable-musan`` mixes in.

Reads lhotse's MUSAN manifests (``lhotse prepare musan``: ``musan_recordings_{music,noise}``
in ``--manifest-dir``), cuts every recording into windows of ``--window`` seconds, keeps
those of at least ``--min-duration`` seconds, extracts 80-dim fbank into
``<output-dir>/musan_feats.lca`` and writes ``<output-dir>/musan_cuts.jsonl.gz``. MUSAN's
speech part is left out: babble from other speakers would teach the model to transcribe
them. Nothing is done when the cut set exists.

Usage (from a recipe directory, after ``lhotse prepare musan download/musan data/manifests``):

    python ../../../local/compute_fbank_musan.py --manifest-dir data/manifests --output-dir data/fbank
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from allinone.data.features import compute_fbank, write_cuts_atomically
from allinone.data.validate import ManifestError, validate_manifests
from allinone.utils.log import setup_script_logging

# lhotse extracts in --num-jobs spawned processes, which re-import this module.
torch.set_num_threads(1)

PARTS = ("music", "noise")


def get_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest-dir", type=Path, required=True, help="directory with musan_recordings_*")
    p.add_argument("--output-dir", type=Path, required=True, help="where musan_cuts.jsonl.gz is written")
    p.add_argument("--window", type=float, default=10.0, help="seconds per noise cut")
    p.add_argument("--min-duration", type=float, default=5.0, help="shorter windows are dropped")
    p.add_argument("--num-jobs", type=int, default=2, help="parallel feature-extraction processes")
    return p.parse_args(argv)


def musan_cuts(manifest_dir: Path, window: float, min_duration: float):
    """Windowed cuts of MUSAN's music and noise recordings (no supervisions).

    Raises:
        FileNotFoundError: naming a missing manifest.
        ManifestError: naming recordings whose audio is missing or unreadable.
    """
    from lhotse import CutSet, RecordingSet, combine

    sets = []
    for part in PARTS:
        path = manifest_dir / f"musan_recordings_{part}.jsonl.gz"
        if not path.is_file():
            raise FileNotFoundError(f"MUSAN manifest not found: {path} (run: lhotse prepare musan)")
        sets.append(RecordingSet.from_file(path))
    recordings = combine(*sets)
    validate_manifests(recordings, [], expected_sampling_rate=16000)
    cuts = CutSet.from_manifests(recordings=recordings).cut_into_windows(window)
    return cuts.filter(lambda c: c.duration >= min_duration).to_eager()


def main(argv=None) -> None:
    setup_script_logging()
    args = get_args(argv)
    out = args.output_dir / "musan_cuts.jsonl.gz"
    if out.is_file():
        logging.info(f"{out} exists, skipping")
        return
    args.output_dir.mkdir(parents=True, exist_ok=True)
    try:
        cuts = musan_cuts(args.manifest_dir, args.window, args.min_duration)
    except (FileNotFoundError, ManifestError) as e:
        raise SystemExit(f"compute_fbank_musan.py: {e}") from None
    if len(cuts) == 0:
        raise SystemExit(f"compute_fbank_musan.py: no MUSAN window of {args.min_duration} s or more")
    cuts = compute_fbank(cuts, args.output_dir / "musan_feats", args.num_jobs)
    write_cuts_atomically(cuts, out)
    logging.info(f"wrote {out} ({len(cuts)} cuts)")


if __name__ == "__main__":
    main()
