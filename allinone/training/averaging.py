"""Running average of model weights over all training steps."""

import torch
import torch.nn as nn

# Copied from the live model, not averaged: bit-width logits (the averaged model must
# choose the bits the search chose, not those of logits averaged since step 0) and GQ
# centroids (an average of levels that swapped order mixes unrelated levels).
NOT_AVERAGED = (".mp_logits",) + tuple(f".centroids.b{b}" for b in range(1, 9))


@torch.no_grad()
def update_running_average(avg_model: nn.Module, model: nn.Module, batch_idx_train: int, period: int) -> None:
    """Fold ``model`` into the average of all weights seen since step 0.

    Called every ``period`` batches at global batch ``batch_idx_train``; the current
    weights stand in for the last ``period`` steps, so they weigh ``period / batch_idx_train``.

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
            p.mul_(1.0 - weight).add_(src.detach().to(p.dtype), alpha=weight)
        else:
            p.copy_(src)
