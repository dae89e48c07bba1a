"""Lhotse cut loading, filtering, label checks and resumable data loaders."""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional

import torch
from lhotse import CutSet
from lhotse.dataset import DynamicBucketingSampler, K2SpeechRecognitionDataset, SimpleCutSampler
from torch.utils.data import DataLoader, Sampler

from allinone.data.batch import unpack_batch
from allinone.data.tokenizer import BpeTokenizer
from allinone.nn.subsampling import subsampled_lengths


def load_cuts(path) -> CutSet:
    """Read a cut manifest eagerly, with an error naming the file if it is absent or empty."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"cut manifest {path} does not exist; run prepare.sh first")
    cuts = CutSet.from_file(path).to_eager()
    if len(cuts) == 0:
        raise ValueError(f"cut manifest {path} holds no cuts")
    return cuts


def check_features_exist(cuts: CutSet, manifest: str) -> None:
    """Raise naming the cut whose feature storage is missing."""
    seen = set()
    for cut in cuts:
        if not cut.has_features:
            raise ValueError(f"{manifest}: cut {cut.id} has no features; run the fbank stage")
        storage = cut.features.storage_path
        if storage in seen:
            continue
        if not Path(storage).exists():
            raise FileNotFoundError(f"{manifest}: features of cut {cut.id} point to missing {storage}")
        seen.add(storage)


def load_split(manifest_dir, cuts_prefix: str, split: str) -> CutSet:
    """``<manifest_dir>/<cuts_prefix>_<split>.jsonl.gz``, checked to have its features on disk."""
    manifest = Path(manifest_dir) / f"{cuts_prefix}_{split}.jsonl.gz"
    cuts = load_cuts(manifest)
    check_features_exist(cuts, str(manifest))
    return cuts


@dataclass
class FilterStats:
    kept: int = 0
    too_short_for_labels: int = 0
    out_of_duration_range: int = 0


def filter_cuts(
    cuts: CutSet,
    tokenizer: BpeTokenizer,
    min_duration: float = 0.3,
    max_duration: float = 20.0,
) -> "tuple[CutSet, FilterStats]":
    """Drop cuts that cannot train the transducer, and validate every transcript.

    A cut is dropped (and counted) when its duration is out of range or when it has
    fewer encoder frames after 4x subsampling than BPE tokens. Empty or untokenisable
    transcripts are errors, not silent drops: they mean the data preparation is wrong.

    Returns:
        (kept cuts, counts of what was dropped).
    """
    stats = FilterStats()
    keep_ids: List[str] = []
    for cut in cuts:
        if len(cut.supervisions) != 1:
            raise ValueError(f"cut {cut.id} has {len(cut.supervisions)} supervisions; expected exactly one")
        tokens = tokenizer.encode(cut.supervisions[0].text or "", cut.id)
        if not min_duration <= cut.duration <= max_duration:
            stats.out_of_duration_range += 1
            continue
        frames = int(subsampled_lengths(torch.tensor(cut.num_frames)))
        if frames < max(1, len(tokens)):
            stats.too_short_for_labels += 1
            continue
        keep_ids.append(cut.id)
    stats.kept = len(keep_ids)
    return cuts.subset(cut_ids=keep_ids), stats


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
        max_duration: seconds of audio per batch.
        num_buckets: duration buckets of the training sampler.
        num_workers: data loader worker processes.
        seed: base seed of the sampler shuffle (the epoch number is added).
        world_size, rank: data parallel split.
    """

    def __init__(
        self,
        max_duration: float = 120.0,
        num_buckets: int = 10,
        num_workers: int = 1,
        seed: int = 42,
        world_size: int = 1,
        rank: int = 0,
    ):
        self.max_duration = max_duration
        self.num_buckets = num_buckets
        self.num_workers = num_workers
        self.seed = seed
        self.world_size = world_size
        self.rank = rank

    def train_sampler(self, cuts: CutSet) -> DynamicBucketingSampler:
        """Shuffled, duration-bucketed batches (a new order every epoch)."""
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

    def _loader(self, sampler, epoch_seed: int) -> DataLoader:
        # A private generator keeps the loader from consuming the global torch RNG when
        # an epoch's iterator is created, which would break bit-exact resumption.
        return DataLoader(
            K2SpeechRecognitionDataset(return_cuts=True),
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
        """
        return SimpleCutSampler(
            cuts.sort_by_duration(ascending=True),
            max_duration=self.max_duration,
            shuffle=False,
            drop_last=True,
            world_size=self.world_size,
            rank=self.rank,
        )

    def train_dataloader(self, sampler, epoch: int, start_batch: int = 0) -> DataLoader:
        """Loader for one training epoch, starting after ``start_batch`` batches of it."""
        sampler.set_epoch(epoch)
        return self._loader(SkipFirstBatches(sampler, start_batch), self.seed + epoch)

    def eval_dataloader(self, cuts: CutSet, max_duration: Optional[float] = None) -> DataLoader:
        """Unshuffled loader for validation or decoding."""
        sampler = SimpleCutSampler(
            cuts,
            max_duration=max_duration or self.max_duration,
            shuffle=False,
            world_size=self.world_size,
            rank=self.rank,
        )
        return self._loader(sampler, self.seed)


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


def log_filter_stats(name: str, total: int, stats: FilterStats) -> None:
    logging.info(
        f"{name}: kept {stats.kept} of {total} cuts; dropped {stats.too_short_for_labels} too short for "
        f"their labels after subsampling and {stats.out_of_duration_range} outside the duration range"
    )


def load_training_cuts(manifest_dir, name: str, tokenizer: BpeTokenizer, allow_empty: bool = False) -> CutSet:
    """``<manifest_dir>/<name>``, checked to have its features, filtered for training and logged.

    Raises:
        ValueError: naming the manifest when no cut survives the filter (unless ``allow_empty``).
    """
    path = Path(manifest_dir) / name
    cuts = load_cuts(path)
    check_features_exist(cuts, str(path))
    kept, stats = filter_cuts(cuts, tokenizer)
    log_filter_stats(name, len(cuts), stats)
    if len(kept) == 0 and not allow_empty:
        raise ValueError(f"{path}: no usable training cuts after filtering")
    return kept
