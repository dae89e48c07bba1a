"""Channel copies of a training set, and the per-epoch swap that trains on them.

A recogniser trained on clean studio audio meets telephone lines and microphones in use.
A channel copy is the training set heard through one kind of channel
(:mod:`allinone.data.channel`), its fbank features stored at preparation time like
icefall's speed-perturbed copies. Unlike those copies it does not enlarge the epoch: each
epoch every training cut is swapped, with a small chance, for one of its copies
(:class:`ChannelCopySwap`). An epoch costs what it did, every utterance is still heard
as recorded in most epochs, and the loader computes nothing (features are read, not
extracted, which matters on a machine whose cores all train).

Every random choice is a function of (seed, cut id), never of a stream's position, so
copies can be computed by any number of processes and a resumed run swaps exactly the
cuts the uninterrupted one did.
"""

import hashlib
import logging
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from lhotse import CutSet, Fbank, FbankConfig, LilcomChunkyWriter
from lhotse.utils import fastcopy

from allinone.data.channel import apply_channel, draw_channel

CHANNEL_KINDS = ("telephone", "microphone")


def parse_channel_kinds(text: str) -> Tuple[str, ...]:
    """``"telephone, microphone"`` -> ``("telephone", "microphone")``; an unknown kind is a
    ValueError naming it."""
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in CHANNEL_KINDS]
    if unknown:
        raise ValueError(f"unknown kind {unknown[0]!r}; known: {', '.join(CHANNEL_KINDS)}")
    return kinds


def copy_manifest_name(cuts_name: str, kind: str) -> str:
    """The manifest of ``cuts_name``'s ``kind`` copy: ``x_cuts_train.jsonl.gz`` ->
    ``x_cuts_train-telephone.jsonl.gz``."""
    stem, dot, ext = cuts_name.partition(".")
    return f"{stem}-{kind}{dot}{ext}"


def _stable_seed(*parts) -> int:
    """A 64-bit seed from ``parts`` that is the same in every process and Python run
    (``hash()`` of a string is salted per process)."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def channel_of_copy(seed: int, cut_id: str, kind: str) -> Dict:
    """The channel that ``cut_id``'s ``kind`` copy passes through: the parameters
    :func:`allinone.data.channel.draw_channel` draws, from a generator of (seed, id, kind)."""
    if kind not in CHANNEL_KINDS:
        raise ValueError(f"unknown channel kind {kind!r}; known: {', '.join(CHANNEL_KINDS)}")
    rng = np.random.default_rng(_stable_seed(seed, cut_id, kind))
    return draw_channel(rng, float(kind == "telephone"), float(kind == "microphone"))


def _copy_chunk(cuts: List, kind: str, seed: int, storage_path: str, num_mel_bins: int) -> List:
    """Features of ``cuts`` through their ``kind`` channels, into one lilcom archive."""
    import torch

    torch.set_num_threads(1)  # one process per core
    extractor = Fbank(FbankConfig(num_mel_bins=num_mel_bins))
    out = []
    with LilcomChunkyWriter(storage_path) as writer:
        for cut in cuts:
            if cut.num_channels != 1:
                raise ValueError(f"cut {cut.id}: channel copies need mono cuts, it has {cut.num_channels} channels")
            channel = channel_of_copy(seed, cut.id, kind)
            samples = cut.load_audio()[0].astype(np.float64)
            heard = apply_channel(samples, cut.sampling_rate, channel).astype(np.float32)[None]
            features = extractor.extract_from_samples_and_store(
                samples=heard, storage=writer, sampling_rate=cut.sampling_rate, offset=cut.start
            )
            # The copy keeps the cut's id, times and supervisions; it carries no recording,
            # since the recording's audio is the clean one.
            custom = dict(cut.custom or {}, channel=channel)
            out.append(fastcopy(cut, recording=None, features=features, custom=custom))
    return out


def compute_channel_copy(
    cuts: CutSet, kind: str, seed: int, storage_path: Path, num_jobs: int = 1, num_mel_bins: int = 80
) -> CutSet:
    """``cuts`` heard through a random ``kind`` channel each, as stored fbank features.

    Args:
        cuts: mono cuts with audio (the training set's cut manifest).
        kind: ``telephone`` or ``microphone``.
        seed: with each cut id, picks its channel (:func:`channel_of_copy`).
        storage_path: a directory; job ``j`` writes ``feats-<j>.lca`` in it.
    Returns:
        Cuts with the same ids, times and supervisions, features of the channel's audio,
        the channel's parameters in ``custom["channel"]`` and no recording.
    """
    cuts = list(cuts)
    storage_path = Path(storage_path)
    storage_path.mkdir(parents=True, exist_ok=True)
    num_jobs = max(1, min(num_jobs, len(cuts)))
    chunks = [cuts[j::num_jobs] for j in range(num_jobs)]
    paths = [str(storage_path / f"feats-{j}") for j in range(num_jobs)]
    logging.info(f"{storage_path.name}: {len(cuts)} cuts through {kind} channels, {num_jobs} job(s)")
    if num_jobs == 1:
        parts = [_copy_chunk(chunks[0], kind, seed, paths[0], num_mel_bins)]
    else:
        with ProcessPoolExecutor(num_jobs) as pool:
            futures = [
                pool.submit(_copy_chunk, chunk, kind, seed, path, num_mel_bins) for chunk, path in zip(chunks, paths)
            ]
            parts = [f.result() for f in futures]
    by_id = {c.id: c for part in parts for c in part}
    return CutSet.from_cuts(by_id[c.id] for c in cuts)


def _uniform(seed: int, epoch: int, cut_id: str) -> float:
    """A number in [0, 1) fixed by (seed, epoch, cut id)."""
    return _stable_seed(seed, epoch, cut_id) / 2.0**64


class ChannelCopySwap:
    """A lhotse cut transform: each cut of a batch is replaced by one of its channel copies
    with chance ``prob`` (the copies equally likely), else kept as recorded.

    The draw depends on (seed, epoch, cut id) only, so it does not matter which loader
    worker builds the batch or where a resumed epoch starts.

    Args:
        copies: one ``{cut id: copy cut}`` mapping per channel kind.
        prob: chance of hearing a copy instead of the cut, 0 <= prob <= 1.
        seed, epoch: the run's seed and the epoch being trained.
        names: the copies' manifests, named in the error when a cut has no copy.
    """

    def __init__(
        self,
        copies: Sequence[Mapping[str, object]],
        prob: float,
        seed: int,
        epoch: int,
        names: Optional[Sequence[str]] = None,
    ):
        if not copies:
            raise ValueError("ChannelCopySwap needs at least one channel copy")
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"channel copy probability {prob} is not within [0, 1]")
        self.copies = list(copies)
        self.prob = prob
        self.seed = seed
        self.epoch = epoch
        self.names = list(names) if names else [f"copy {k}" for k in range(len(self.copies))]

    def choice(self, cut_id: str) -> Optional[int]:
        """Index of the copy that replaces ``cut_id`` this epoch, or None to keep it."""
        u = _uniform(self.seed, self.epoch, cut_id)
        if u >= self.prob:
            return None
        return min(int(u / self.prob * len(self.copies)), len(self.copies) - 1)

    def __call__(self, cuts: CutSet) -> CutSet:
        out = []
        for cut in cuts:
            k = self.choice(cut.id)
            if k is None:
                out.append(cut)
                continue
            copy = self.copies[k].get(cut.id)
            if copy is None:
                raise KeyError(f"{self.names[k]}: no copy of training cut {cut.id}; recompute the channel copies")
            out.append(copy)
        return CutSet.from_cuts(out)
