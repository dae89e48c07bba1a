"""AdamW parameter groups: model weights, quantizer parameters and bit-width logits.

Three kinds of parameters train together in a compression run, and they want different
treatment:

- **weights** (linear / convolution / embedding weights, biases, norms): AdamW decay
  ``weight_decay`` at the scheduled learning rate;
- **quantizer parameters** (LSQ step sizes ``*.steps.b<bits>``, GQ centroids
  ``*.centroids.b<bits>``): no decay by default, because decay pulls step sizes towards
  zero (every weight then rounds to fewer levels) and centroids towards each other, which
  neither paper does; the scheduled learning rate, unscaled;
- **bit-width logits** of one-stage mixed precision (``*.mp_logits``): no decay (it would
  pull every layer's choice towards uniform) at ``mp_lr_scale`` times the scheduled rate,
  since a logit sees far smaller gradients than a weight.

Each group carries a ``name`` and an ``lr_scale`` (read by
``allinone.training.schedule.WarmupDecaySchedule``). Groups are only split where their
settings differ: with ``quantizer_weight_decay == weight_decay`` the quantizer parameters
stay in the weights' group, which is the grouping of runs trained before this option
existed, so their optimizer state still loads.
"""

from typing import Dict, List

import torch.nn as nn

from allinone.quant.quantizer import Quantizer

__all__ = ["parameter_groups", "describe_groups", "freeze_float_weights"]


def _quantizer_parameter_ids(model: nn.Module) -> set:
    return {id(p) for m in model.modules() if isinstance(m, Quantizer) for p in m.parameters()}


def parameter_groups(
    model: nn.Module, weight_decay: float, quantizer_weight_decay: float = 0.0, mp_lr_scale: float = 50.0
) -> List[Dict]:
    """AdamW groups of ``model``'s trainable parameters, each with ``name``, ``lr_scale``, ``weight_decay``.

    Args:
        model: the model (a DDP wrapper's ``module`` or the bare model).
        weight_decay: decay of the weights' group.
        quantizer_weight_decay: decay of LSQ steps and GQ centroids (0: none).
        mp_lr_scale: learning-rate multiplier of the bit-width logits (never decayed).
    Returns:
        the non-empty groups, weights first.
    """
    quant_ids = _quantizer_parameter_ids(model)
    weights, quant, logits = [], [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name.endswith(".mp_logits"):
            logits.append(p)
        elif id(p) in quant_ids and quantizer_weight_decay != weight_decay:
            quant.append(p)
        else:
            weights.append(p)
    groups = [
        {"name": "weights", "params": weights, "lr_scale": 1.0, "weight_decay": weight_decay},
        {"name": "quantizer", "params": quant, "lr_scale": 1.0, "weight_decay": quantizer_weight_decay},
        {"name": "bit_logits", "params": logits, "lr_scale": mp_lr_scale, "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


def describe_groups(groups: List[Dict]) -> str:
    """One line per group for the training log: name, tensors, entries, lr scale, decay."""
    return "; ".join(
        f"{g['name']}: {len(g['params'])} tensors, {sum(p.numel() for p in g['params'])} values, "
        f"lr x{g['lr_scale']:g}, weight decay {g['weight_decay']:g}"
        for g in groups
    )


def freeze_float_weights(model: nn.Module) -> int:
    """Stop every parameter but the quantizers' and the bit-width logits from training.

    The search stage of a two-stage mixed-precision run learns the bit map (and the
    quantizer steps it needs to judge each bit-width) over the float weights as loaded,
    which it never changes. BatchNorm running statistics are buffers and still update.

    Returns:
        the number of parameter tensors frozen.
    """
    quant_ids = _quantizer_parameter_ids(model)
    frozen = 0
    for name, p in model.named_parameters():
        if id(p) not in quant_ids and not name.endswith(".mp_logits"):
            p.requires_grad_(False)
            frozen += 1
    return frozen
