"""Recompute a subnet's BatchNorm running statistics for the weights it will be decoded with.

The running statistics training leaves behind fit those weights only loosely:

- they are a moving average over the batches *that subnet ran on*, and in a sandwich-trained
  nested model a middle subnet runs on one step in several, so its statistics trail the
  shared weights that every other subnet keeps moving;
- ``decode.py --use-averaged-model`` scores the mean of the weights over an epoch's steps,
  whose activations are not those of any one step;
- training inputs are SpecAugmented, decoding inputs are not.

Calibration (as for slimmable networks: Yu & Huang, "Universally slimmable networks and
improved training techniques", 2019) runs the encoder of one subnet over clean training
batches with its BatchNorm layers in training mode and keeps the exact mean of the per-batch
statistics (PyTorch's cumulative average), for the statistics slots that subnet uses only.
Weights are not touched.
"""

from typing import Dict, Iterable, Set, Tuple

import torch
import torch.nn as nn

from allinone.nn.conformer import SubnetBatchNorm
from allinone.subnet import SubnetConfig


def _slot_of(args: tuple, kwargs: dict) -> int:
    # SubnetBatchNorm.forward(x, slot=0): the slot may come positionally or by name.
    if len(args) > 1:
        return int(args[1])
    return int(kwargs.get("slot", 0))


@torch.no_grad()
def calibrate_batchnorm(
    model: nn.Module,
    subnet: SubnetConfig,
    batches: Iterable[Tuple[torch.Tensor, torch.Tensor]],
) -> Dict[str, int]:
    """Replace the running statistics ``subnet`` uses by their mean over ``batches``.

    Args:
        model: a ``Transducer`` (anything with ``encode(features, feature_lens, subnet)``).
        subnet: the subnet whose statistics slots are recomputed; other slots keep theirs.
        batches: ``(features (N, T, F), feature_lens (N,))`` pairs, not augmented.
    Returns:
        ``{"batches": B, "slots": S}``: batches used, and (module, slot) pairs recomputed.
    Raises:
        ValueError: ``batches`` is empty (the statistics are then left as they were).
    """
    norms = [m for m in model.modules() if isinstance(m, SubnetBatchNorm)]
    if not norms:
        return {"batches": 0, "slots": 0}
    saved = {m: (m.running_mean.clone(), m.running_var.clone(), m.momentum) for m in norms}
    used: Dict[SubnetBatchNorm, Set[int]] = {m: set() for m in norms}

    def remember_slot(module, args, kwargs):
        slot = _slot_of(args, kwargs)
        if slot not in used[module]:
            # First batch through this slot: start its average afresh.
            used[module].add(slot)
            module.running_mean[slot].zero_()
            module.running_var[slot].fill_(1.0)

    hooks = [m.register_forward_pre_hook(remember_slot, with_kwargs=True) for m in norms]
    was_training = model.training
    model.eval()
    for m in norms:
        m.train()
    num_batches = 0
    try:
        for features, feature_lens in batches:
            # Momentum 1/k after k batches makes the running value the plain mean of all k.
            for m in norms:
                m.momentum = 1.0 / (num_batches + 1)
            device = next(model.parameters()).device
            model.encode(features.to(device), feature_lens.to(device), subnet)
            num_batches += 1
    finally:
        for h in hooks:
            h.remove()
        for m, (mean, var, momentum) in saved.items():
            m.momentum = momentum
            untouched = [s for s in range(mean.size(0)) if s not in used[m] or num_batches == 0]
            m.running_mean[untouched] = mean[untouched]
            m.running_var[untouched] = var[untouched]
        model.train(was_training)
    if num_batches == 0:
        raise ValueError("BatchNorm calibration got no batches")
    return {"batches": num_batches, "slots": sum(len(s) for s in used.values())}
