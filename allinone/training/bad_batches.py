"""Batches whose loss is not finite: dropped, saved for inspection, and a stop once they keep coming."""

import logging
from pathlib import Path
from typing import List

import torch

from allinone.data.batch import AsrBatch


class TooManyBadBatches(RuntimeError):
    """Raised when non-finite losses keep recurring, which means training has diverged."""


class BadBatchGuard:
    """Counts consecutive batches with non-finite losses and dumps each one.

    Args:
        exp_dir: dumps go to ``<exp_dir>/bad-batches/batch-<global batch>-rank<r>.pt``.
        rank: this process's rank.
        max_consecutive: more bad batches in a row than this raise ``TooManyBadBatches``.
    """

    def __init__(self, exp_dir: Path, rank: int, max_consecutive: int):
        self.exp_dir = Path(exp_dir)
        self.rank = rank
        self.max_consecutive = max_consecutive
        self.consecutive = 0

    def check(
        self, finite: torch.Tensor, batch: AsrBatch, labels: List[List[int]], step: int, epoch: int
    ) -> None:
        """Record the outcome of one batch; ``finite`` (N,) marks the utterances with finite losses."""
        if bool(finite.all()):
            self.consecutive = 0
            return
        bad = [cut for cut, ok in zip(batch.cut_ids, finite.tolist()) if not ok]
        dump = self.exp_dir / "bad-batches" / f"batch-{step}-rank{self.rank}.pt"
        dump.parent.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "features": batch.features,
                "feature_lens": batch.feature_lens,
                "labels": labels,
                "cut_ids": batch.cut_ids,
                "epoch": epoch,
            },
            dump,
        )
        logging.warning(
            f"non-finite loss at batch {step} for {len(bad)} utterances {bad}; dropped them, "
            f"batch saved to {dump}"
        )
        self.consecutive += 1
        if self.consecutive > self.max_consecutive:
            raise TooManyBadBatches(
                f"{self.consecutive} consecutive batches had non-finite losses (last dump: {dump}); "
                "training has diverged: lower --base-lr or inspect the dumped batches"
            )
