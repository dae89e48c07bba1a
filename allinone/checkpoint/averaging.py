"""The running average of the weights that training keeps, and its inverse.

Training folds the live weights into ``model_avg`` every ``average_period`` batches, at the
global batch indices that are multiples of it (``update_running_average``), so after batch
``n`` the average is the plain mean of ``n // period`` snapshots (``snapshot_count``). The
mean over the snapshots taken between two checkpoints follows from the two averages,

    mean(start, end] = (k_end * avg_end - k_start * avg_start) / (k_end - k_start),

with ``k`` the snapshot counts (``mean_between``). Both directions live here because they
must agree on how snapshots are counted: counting batches instead of snapshots is wrong
whenever a checkpoint falls between two snapshots, and the error grows with how far the
weights moved since step 0 (BatchNorm variances that shrank 30-fold came out negative).
"""

from typing import Dict, Sequence

import torch
import torch.nn as nn

from allinone.checkpoint.io import CheckpointError
from allinone.checkpoint.record import CheckpointRecord

# Copied from the live model, not averaged: bit-width logits (the averaged model must
# choose the bits the search chose, not those of logits averaged since step 0) and GQ
# centroids (an average of levels that swapped order mixes unrelated levels).
NOT_AVERAGED = (".mp_logits",) + tuple(f".centroids.b{b}" for b in range(1, 9))

StateDict = Dict[str, torch.Tensor]


@torch.no_grad()
def update_running_average(avg_model: nn.Module, model: nn.Module, batch_idx_train: int, period: int) -> None:
    """Fold ``model`` into the average of all snapshots since step 0.

    Called every ``period`` batches at global batch ``batch_idx_train`` (a multiple of
    ``period``): the new snapshot weighs ``period / batch_idx_train = 1 / snapshot_count``.

    Args:
        avg_model: the running-average copy (updated in place).
        model: the model being trained.
        batch_idx_train: global batch index (> 0).
        period: batches between calls.
    """
    weight = min(1.0, period / batch_idx_train)
    cur = dict(model.named_parameters())
    cur.update(dict(model.named_buffers()))
    for name, p in list(avg_model.named_parameters()) + list(avg_model.named_buffers()):
        src = cur[name]
        if p.is_floating_point() and not name.endswith(NOT_AVERAGED):
            # The average may live on another device than the model (the CPU, beside a GPU model).
            p.mul_(1.0 - weight).add_(src.detach().to(p.device, p.dtype), alpha=weight)
        else:
            p.copy_(src.detach().to(p.device))


def snapshot_count(record: CheckpointRecord) -> int:
    """How many snapshots ``record.model_avg`` is the mean of."""
    if record.average_period < 1:
        raise CheckpointError(f"{record.path}: bad average_period {record.average_period}")
    return record.batch_idx_train // record.average_period


def mean_between(start: CheckpointRecord, end: CheckpointRecord) -> StateDict:
    """Mean of the weight snapshots taken after ``start`` and up to ``end``.

    Integer buffers (e.g. finalised bit-widths) and the entries ``update_running_average``
    copies instead of averaging come from ``end``.

    Raises:
        CheckpointError: naming the files when one holds no average or no snapshot lies between them.
    """
    if start.model_avg is None or end.model_avg is None:
        raise CheckpointError(f"{start.path} or {end.path} holds no averaged model")
    k0, k1 = snapshot_count(start), snapshot_count(end)
    if k1 <= k0:
        raise CheckpointError(
            f"{end.path} (batch {end.batch_idx_train}) holds no averaged snapshot after "
            f"{start.path} (batch {start.batch_idx_train})"
        )
    out = {}
    for k, v_end in end.model_avg.items():
        if v_end.is_floating_point() and not k.endswith(NOT_AVERAGED):
            v_start = start.model_avg[k]
            out[k] = ((v_end.double() * k1 - v_start.double() * k0) / (k1 - k0)).to(v_end.dtype)
        else:
            out[k] = v_end
    return out


def mean_of_final_weights(records: Sequence[CheckpointRecord]) -> StateDict:
    """Element-wise mean of the final ``model`` weights of several checkpoints.

    Integer buffers are taken from the last checkpoint unchanged.
    """
    if not records:
        raise CheckpointError("no checkpoints to average")
    total: StateDict = {}
    for rec in records:
        for k, v in rec.model.items():
            if not v.is_floating_point():
                total[k] = v.clone()
            else:
                total[k] = total[k] + v.double() if k in total else v.double()
    return {k: (v / len(records)).float() if v.is_floating_point() else v for k, v in total.items()}
