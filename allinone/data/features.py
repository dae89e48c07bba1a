"""Fbank features of a cut set, stored in lhotse's chunked lilcom archives.

One function for every corpus: the recipes' ``compute_fbank`` scripts build the cut set a
split needs (speed-perturbed copies, utterances trimmed out of long conversations,
audio resampled to the model's rate) and hand it here.
"""

import logging
from pathlib import Path
from typing import Sequence

from lhotse import CutSet, Fbank, FbankConfig, LilcomChunkyWriter


def write_cuts_atomically(cuts: CutSet, path: Path) -> None:
    """Write ``cuts`` to ``path`` through a temporary name, so an interrupted run never leaves
    a manifest that a later run would take for a finished one."""
    path = Path(path)
    tmp = path.with_name(f"tmp_{path.name}")
    cuts.to_file(tmp)
    tmp.replace(path)


def speed_perturbed(cuts: CutSet, factors: Sequence[float] = (0.9, 1.1)) -> CutSet:
    """``cuts`` plus one copy per factor, resampled in time (Ko et al., 2015, as icefall's
    LibriSpeech recipes do at preparation time: 3x the training audio, features stored)."""
    out = cuts
    for factor in factors:
        out = out + cuts.perturb_speed(factor)
    return out


def compute_fbank(
    cuts: CutSet,
    storage_path: Path,
    num_jobs: int = 1,
    num_mel_bins: int = 80,
) -> CutSet:
    """Extract ``num_mel_bins`` log-mel filterbank features of ``cuts`` into
    ``<storage_path>.lca`` (lilcom-compressed chunks) and return the cuts pointing at them."""
    logging.info(f"{storage_path.name}: extracting {num_mel_bins}-dim fbank with {num_jobs} job(s)")
    return cuts.compute_and_store_features(
        extractor=Fbank(FbankConfig(num_mel_bins=num_mel_bins)),
        storage_path=storage_path,
        num_jobs=num_jobs,
        storage_type=LilcomChunkyWriter,
    )
