"""Lhotse cut loading, filtering, label checks and resumable data loaders."""

import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence

import torch
from lhotse import CutSet, Fbank, FbankConfig
from lhotse.dataset import (
    CutMix,
    DynamicBucketingSampler,
    AudioSamples,
    K2SpeechRecognitionDataset,
    OnTheFlyFeatures,
    PerturbSpeed,
    SimpleCutSampler,
)
from lhotse.utils import compute_num_frames
from torch.utils.data import DataLoader, Sampler

from allinone.data.batch import unpack_batch
from allinone.data.channel_copies import ChannelCopySwap, copy_manifest_name
from allinone.data.tokenizer import BpeTokenizer
from allinone.nn.subsampling import subsampled_lengths


def load_cuts(path, lazy: bool = True) -> CutSet:
    """Open a cut manifest, with an error naming the file if it is absent or empty.

    ``lazy`` (the default) reads cuts from the file as they are iterated, so a corpus of
    any size costs no memory (a 960 h set with speed perturbation is ~850k cuts); small
    sets that are indexed or sorted are read with ``lazy=False``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"cut manifest {path} does not exist; run prepare.sh first")
    cuts = CutSet.from_jsonl_lazy(path) if lazy else CutSet.from_file(path).to_eager()
    if next(iter(cuts), None) is None:
        raise ValueError(f"cut manifest {path} holds no cuts")
    return cuts


def check_features_exist(cuts: CutSet, manifest: str, limit: Optional[int] = 20000) -> None:
    """Raise naming the cut whose feature storage is missing (the first ``limit`` cuts; all: None).

    A lazy corpus is checked on its first cuts only, which covers the archives of a
    feature-extraction run in practice and keeps the start of a 960 h run fast.
    """
    seen = set()
    for i, cut in enumerate(cuts):
        if limit is not None and i >= limit:
            return
        if not cut.has_features:
            raise ValueError(f"{manifest}: cut {cut.id} has no features; run the fbank stage")
        storage = cut.features.storage_path
        if storage in seen:
            continue
        if not Path(storage).exists():
            raise FileNotFoundError(f"{manifest}: features of cut {cut.id} point to missing {storage}")
        seen.add(storage)


def check_audio_exists(cuts: CutSet, manifest: str, limit: Optional[int] = 20000) -> None:
    """Raise naming the cut whose audio file is missing (for ``--on-the-fly-feats``)."""
    for i, cut in enumerate(cuts):
        if limit is not None and i >= limit:
            return
        if not cut.has_recording:
            raise ValueError(f"{manifest}: cut {cut.id} has no recording to compute features from")
        for source in cut.recording.sources:
            if source.type == "file" and not Path(source.source).exists():
                raise FileNotFoundError(f"{manifest}: audio of cut {cut.id} is missing: {source.source}")


def load_split(manifest_dir, cuts_prefix: str, split: str) -> CutSet:
    """``<manifest_dir>/<cuts_prefix>_<split>.jsonl.gz`` read into memory, checked to have its
    features on disk (test and dev sets: small, and decoded in order)."""
    manifest = Path(manifest_dir) / f"{cuts_prefix}_{split}.jsonl.gz"
    cuts = load_cuts(manifest, lazy=False)
    check_features_exist(cuts, str(manifest), limit=None)
    return cuts


FRAME_SHIFT = 0.01  # seconds, of the 80-dim fbank every recipe uses


def num_feature_frames(cut) -> int:
    """Feature frames of ``cut``: stored ones, or those on-the-fly extraction will produce."""
    if cut.has_features:
        return cut.num_frames
    return compute_num_frames(cut.duration, FRAME_SHIFT, cut.sampling_rate)


@dataclass
class FilterStats:
    """Cuts a ``TrainingCutFilter`` kept and dropped (by reason)."""

    kept: int = 0
    too_short_for_labels: int = 0
    out_of_duration_range: int = 0

    @property
    def total(self) -> int:
        return self.kept + self.too_short_for_labels + self.out_of_duration_range

    def since(self, earlier: "FilterStats") -> "FilterStats":
        """The counts added after ``earlier`` (a copy taken before a pass over the data)."""
        return FilterStats(
            self.kept - earlier.kept,
            self.too_short_for_labels - earlier.too_short_for_labels,
            self.out_of_duration_range - earlier.out_of_duration_range,
        )


class TrainingCutFilter:
    """Keeps the cuts that can train the transducer; counts what it drops.

    A cut is dropped (and counted) when its duration is out of range or when it has
    fewer encoder frames after 4x subsampling than BPE tokens. Empty or untokenisable
    transcripts are errors, not silent drops: they mean the data preparation is wrong.
    Used as a lazy ``CutSet.filter`` predicate, it counts as the cuts stream past.
    """

    def __init__(self, tokenizer: BpeTokenizer, min_duration: float = 0.3, max_duration: float = 20.0):
        self.tokenizer = tokenizer
        self.min_duration = min_duration
        self.max_duration = max_duration
        self.stats = FilterStats()

    def __call__(self, cut) -> bool:
        if len(cut.supervisions) != 1:
            raise ValueError(f"cut {cut.id} has {len(cut.supervisions)} supervisions; expected exactly one")
        tokens = self.tokenizer.encode(cut.supervisions[0].text or "", cut.id)
        if not self.min_duration <= cut.duration <= self.max_duration:
            self.stats.out_of_duration_range += 1
            return False
        frames = int(subsampled_lengths(torch.tensor(num_feature_frames(cut))))
        if frames < max(1, len(tokens)):
            self.stats.too_short_for_labels += 1
            return False
        self.stats.kept += 1
        return True


def filter_cuts(
    cuts: CutSet,
    tokenizer: BpeTokenizer,
    min_duration: float = 0.3,
    max_duration: float = 20.0,
) -> "tuple[CutSet, FilterStats]":
    """The cuts ``TrainingCutFilter`` keeps, and its counts.

    An eager ``cuts`` is filtered at once (the counts are complete); a lazy one is filtered
    as it is iterated (the counts grow with the first pass over the data).
    """
    keep = TrainingCutFilter(tokenizer, min_duration, max_duration)
    if cuts.is_lazy:
        return cuts.filter(keep), keep.stats
    ids = [cut.id for cut in cuts if keep(cut)]
    return cuts.subset(cut_ids=ids), keep.stats


class SkipFirstBatches(Sampler):
    """Iterates a lhotse sampler for one epoch, skipping batches already trained on.

    Skipping walks the sampler itself (cut ids only, no features are read), so the
    resumed epoch sees exactly the batches an uninterrupted run would have seen next,
    whatever the data loader had prefetched when the run was killed.
    """

    def __init__(self, sampler, num_to_skip: int = 0):
        self.sampler = sampler
        self.num_to_skip = num_to_skip

    def __iter__(self) -> Iterator[CutSet]:
        # lhotse samplers are their own iterators and restart on every iter() call, so
        # the same iterator must be advanced with next() throughout.
        it = iter(self.sampler)
        for _ in range(self.num_to_skip):
            if next(it, None) is None:
                return
        while (batch := next(it, None)) is not None:
            yield batch

    def __len__(self):
        raise TypeError("the number of batches is not known in advance")


class AsrDataModule:
    """Builds train/valid/test loaders from cut manifests.

    Args:
        max_duration: seconds of audio per batch (per process).
        num_buckets: duration buckets of the training sampler.
        num_workers: data loader worker processes.
        seed: base seed of the sampler shuffle (the epoch number is added).
        world_size, rank: data-parallel split: each rank gets its own batches.
        on_the_fly_feats: compute fbank from the audio in the loader instead of reading it.
        raw_audio: batches of waveforms (N, S) instead of features, for encoders that read
            audio (wav2vec 2.0 / HuBERT).
        perturb_speed: speed perturbation of training cuts in the loader (needs the audio:
            ``on_the_fly_feats`` or ``raw_audio``).
        musan: noise cuts mixed into training cuts (lhotse ``CutMix``), or None.
        channel_copies: ``{cut id: copy}`` per channel kind (:func:`load_channel_copies`);
            each epoch a training cut is heard as one of them with ``channel_copy_prob``.
        channel_copy_names: the copies' manifests, for error messages.
    """

    def __init__(
        self,
        max_duration: float = 120.0,
        num_buckets: int = 10,
        num_workers: int = 1,
        seed: int = 42,
        world_size: int = 1,
        rank: int = 0,
        on_the_fly_feats: bool = False,
        perturb_speed: bool = False,
        musan: Optional[CutSet] = None,
        raw_audio: bool = False,
        channel_copies: Sequence[Mapping[str, Any]] = (),
        channel_copy_prob: float = 0.0,
        channel_copy_names: Sequence[str] = (),
    ):
        if channel_copies and (on_the_fly_feats or raw_audio):
            raise ValueError("channel copies are stored features: they exclude on-the-fly features and raw audio")
        if perturb_speed and not (on_the_fly_feats or raw_audio):
            raise ValueError("speed perturbation in the loader needs on-the-fly features or raw audio")
        if on_the_fly_feats and raw_audio:
            raise ValueError("on-the-fly features and raw audio inputs exclude each other")
        self.max_duration = max_duration
        self.num_buckets = num_buckets
        self.num_workers = num_workers
        self.seed = seed
        self.world_size = world_size
        self.rank = rank
        self.on_the_fly_feats = on_the_fly_feats
        self.raw_audio = raw_audio
        self.perturb_speed = perturb_speed
        self.musan = musan
        self.channel_copies = list(channel_copies)
        self.channel_copy_prob = channel_copy_prob
        self.channel_copy_names = list(channel_copy_names)

    def train_sampler(self, cuts: CutSet) -> DynamicBucketingSampler:
        """Shuffled, duration-bucketed batches (a new order every epoch), over a lazy or eager set."""
        return DynamicBucketingSampler(
            cuts,
            max_duration=self.max_duration,
            num_buckets=self.num_buckets,
            shuffle=True,
            drop_last=True,
            seed=self.seed,
            world_size=self.world_size,
            rank=self.rank,
        )

    def _dataset(self, train: bool, epoch_seed: int) -> K2SpeechRecognitionDataset:
        transforms = []
        if train and self.channel_copies and self.channel_copy_prob > 0:
            transforms.append(
                ChannelCopySwap(
                    self.channel_copies, self.channel_copy_prob, self.seed, epoch_seed, self.channel_copy_names
                )
            )
        if train and self.perturb_speed:
            # 0.9x and 1.1x with chance 1/3 each: on average the same mix as the stored 3x copies.
            transforms.append(PerturbSpeed(factors=[0.9, 1.1], p=2 / 3, randgen=random.Random(epoch_seed)))
        if train and self.musan is not None:
            transforms.append(CutMix(self.musan, snr=(10, 20), p=0.5, preserve_id=True, seed=epoch_seed))
        kwargs = {}
        if self.on_the_fly_feats:
            kwargs["input_strategy"] = OnTheFlyFeatures(Fbank(FbankConfig(num_mel_bins=80)))
        elif self.raw_audio:
            kwargs["input_strategy"] = AudioSamples()
        return K2SpeechRecognitionDataset(return_cuts=True, cut_transforms=transforms, **kwargs)

    def _loader(self, sampler, epoch_seed: int, train: bool) -> DataLoader:
        # A private generator keeps the loader from consuming the global torch RNG when
        # an epoch's iterator is created, which would break bit-exact resumption.
        return DataLoader(
            self._dataset(train, epoch_seed),
            sampler=sampler,
            batch_size=None,
            num_workers=self.num_workers,
            persistent_workers=False,
            generator=torch.Generator().manual_seed(epoch_seed),
        )

    def sorted_sampler(self, cuts: CutSet) -> SimpleCutSampler:
        """Batches in order of increasing duration (SortaGrad, Amodei et al., 2016).

        Short utterances have few alignments, so an epoch that starts with them gets
        the encoder past the initial emit-only-blanks plateau in far fewer steps.
        Sorting reads the whole set into memory: large-corpus recipes turn it off.
        """
        return SimpleCutSampler(
            cuts.to_eager().sort_by_duration(ascending=True),
            max_duration=self.max_duration,
            shuffle=False,
            drop_last=True,
            world_size=self.world_size,
            rank=self.rank,
        )

    def train_dataloader(self, sampler, epoch: int, start_batch: int = 0) -> DataLoader:
        """Loader for one training epoch, starting after ``start_batch`` batches of it."""
        sampler.set_epoch(epoch)
        return self._loader(SkipFirstBatches(sampler, start_batch), self.seed + epoch, train=True)

    def eval_dataloader(self, cuts: CutSet, max_duration: Optional[float] = None) -> DataLoader:
        """Unshuffled loader for validation or decoding."""
        sampler = SimpleCutSampler(
            cuts,
            max_duration=max_duration or self.max_duration,
            shuffle=False,
            world_size=self.world_size,
            rank=self.rank,
        )
        return self._loader(sampler, self.seed, train=False)


def sampler_settings(sampler) -> Dict[str, Any]:
    """What a lhotse sampler's order depends on besides the epoch: its ``state_dict()`` without
    the progress counters (which run ahead of training by the batches a loader prefetched)
    and the rank (the same for the whole job; rank 0 writes the checkpoints)."""
    state = sampler.state_dict()
    return {k: v for k, v in state.items() if k not in ("diagnostics", "epoch", "rank")}


def shuffled_batches(cuts: CutSet, max_duration: float, num_batches: int, seed: int = 0):
    """``(features (N, T, F), feature_lens (N,))`` of the first ``num_batches`` training batches.

    Shuffled and duration-bucketed like training batches, without augmentation, the same
    for every model given the same ``seed`` (e.g. to recompute BatchNorm statistics).
    """
    dm = AsrDataModule(max_duration=max_duration, num_workers=0, seed=seed)
    for i, batch in enumerate(dm.train_dataloader(dm.train_sampler(cuts), epoch=0)):
        if i >= num_batches:
            return
        b = unpack_batch(batch)
        yield b.features, b.feature_lens


def log_filter_stats(name: str, stats: FilterStats) -> None:
    logging.info(
        f"{name}: kept {stats.kept} of {stats.total} cuts; dropped {stats.too_short_for_labels} too short for "
        f"their labels after subsampling and {stats.out_of_duration_range} outside the duration range"
    )


def load_musan(path) -> CutSet:
    """The MUSAN cut set for noise mixing, read into memory (a few thousand cuts)."""
    cuts = load_cuts(path, lazy=False)
    check_features_exist(cuts, str(path), limit=None)
    return cuts


def load_training_cuts(
    manifest_dir, name: str, tokenizer: BpeTokenizer, allow_empty: bool = False, on_the_fly_feats: bool = False
) -> "tuple[CutSet, FilterStats]":
    """``<manifest_dir>/<name>`` read lazily, checked to have its features (or, with
    ``on_the_fly_feats``, which raw-audio inputs need too, its audio) on disk,
    filtered for training; the filter's counts fill in during the first pass.

    Raises:
        ValueError: naming the manifest when no cut survives the filter (unless ``allow_empty``).
    """
    path = Path(manifest_dir) / name
    cuts = load_cuts(path)
    if on_the_fly_feats:
        check_audio_exists(cuts, str(path))
    else:
        check_features_exist(cuts, str(path))
    kept, stats = filter_cuts(cuts, tokenizer)
    if not allow_empty and next(iter(kept), None) is None:
        raise ValueError(f"{path}: no usable training cuts after filtering")
    return kept, stats


def load_channel_copies(manifest_dir, train_cuts: str, kinds: Sequence[str]) -> "tuple[List[Dict[str, Any]], List[str]]":
    """The channel copies of ``<manifest_dir>/<train_cuts>`` (one per kind), read into memory
    as ``{cut id: cut}`` and checked to have their features on disk.

    Returns:
        (the copies, their manifest paths).
    Raises:
        FileNotFoundError: naming a missing copy manifest and the command that makes it.
    """
    copies, names = [], []
    for kind in kinds:
        path = Path(manifest_dir) / copy_manifest_name(train_cuts, kind)
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: no {kind} copy of the training cuts; make it with "
                f"local/compute_channel_copies.py (prepare.sh stage 2)"
            )
        cuts = load_cuts(path, lazy=False)
        check_features_exist(cuts, str(path), limit=None)
        copies.append({c.id: c for c in cuts})
        names.append(str(path))
    return copies, names
