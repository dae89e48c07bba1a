"""Putting the most important FFN hidden units first, so nested width prefixes keep them.

A width-r subnet uses hidden units ``0..k-1`` of every FFN (``FeedForward``). When nested
training starts from an already trained model (``--init-from``), its units are in no
particular order, and a half-width subnet would keep an arbitrary half of them. Permuting
each FFN's units once, most important first, makes every prefix the best ``k`` units
under the criterion. The permutation leaves the full-width function unchanged: it reorders
the rows of the first linear (and its bias) and the columns of the second together.

Criterion ``weight-norm`` (data-free): unit j of an FFN with weights W1 (H, D), W2 (D, H)
scores ``||W1[j, :]||_2 * ||W2[:, j]||_2``, the gain of the path through that unit for an
input aligned with its row. It needs no data and is exact about which units carry
(near-)zero weight; it ignores how often the activation fires on real speech.
"""

from typing import Tuple

import torch
import torch.nn as nn

from allinone.nn.conformer import FeedForward

UNIT_ORDERS = ("none", "weight-norm")


def unit_importance(ffn: FeedForward) -> torch.Tensor:
    """(H,) weight-norm importance of each hidden unit of ``ffn`` (float weights)."""
    w1 = ffn.linear1.weight.detach()  # (H, D)
    w2 = ffn.linear2.weight.detach()  # (D, H)
    return w1.norm(dim=1) * w2.norm(dim=0)


@torch.no_grad()
def permute_units(ffn: FeedForward, order: torch.Tensor) -> None:
    """Make hidden unit ``order[i]`` unit ``i`` of ``ffn`` (in place).

    Args:
        order: (H,) a permutation of ``0..H-1``.
    """
    h = ffn.ffn_dim
    if order.shape != (h,) or not torch.equal(order.sort().values, torch.arange(h)):
        raise ValueError(f"not a permutation of {h} hidden units: {order.tolist()}")
    ffn.linear1.weight.copy_(ffn.linear1.weight[order])
    if ffn.linear1.bias is not None:
        ffn.linear1.bias.copy_(ffn.linear1.bias[order])
    ffn.linear2.weight.copy_(ffn.linear2.weight[:, order])


def reorder_ffn_units(model: nn.Module, criterion: str) -> Tuple[int, float]:
    """Sort every FFN's hidden units of ``model`` by ``criterion``, most important first.

    Quantizer state derived from the weights (LSQ steps, GQ centroids) is not touched:
    re-initialise it afterwards (``allinone.quant.layers.reset_quant_steps``).

    Returns:
        (number of FFNs reordered, mean over them of the share of total importance the
        first half of the units holds afterwards: 0.5 means nothing to gain, 1.0 all).
    """
    if criterion not in UNIT_ORDERS:
        raise ValueError(f"unknown FFN unit order {criterion!r}; choose from {UNIT_ORDERS}")
    if criterion == "none":
        return 0, 0.5
    ffns = [m for m in model.modules() if isinstance(m, FeedForward)]
    shares = []
    for ffn in ffns:
        score = unit_importance(ffn)
        order = torch.sort(score, descending=True, stable=True).indices
        permute_units(ffn, order)
        sorted_score = score[order]
        shares.append(float(sorted_score[: ffn.ffn_dim // 2].sum() / sorted_score.sum().clamp_min(1e-12)))
    return len(ffns), sum(shares) / max(1, len(shares))
