"""Pruning of the RNN-T lattice: per frame, the window of symbol positions that holds most
occupation (from a simple loss's gradients), and the joiner inputs expanded onto it."""

from typing import Optional, Tuple

import torch
from torch import Tensor

from allinone.losses.rnnt_lattice import boundary_or_default


def _suffix_min(x: Tensor) -> Tensor:
    """out[b, t] = min(x[b, t:]): the largest non-decreasing sequence bounded by x.

    Args:
        x: (B, T).
    Returns:
        (B, T).
    """
    return torch.cummin(x.flip(1), dim=1).values.flip(1)


def _adjust_pruning_lower_bound(s_begin: Tensor, s_range: int) -> Tensor:
    """Make window starts usable, as k2 does.

    Enforces: non-decreasing over t; ``s_begin[t + 1] - s_begin[t] <= s_range - 1`` so no
    symbol position is skipped between consecutive windows; ``s_begin[t] <= (s_range - 1) t``
    so frame 0 starts at position 0.

    Args:
        s_begin: (B, T) long, candidate window starts.
        s_range: window size.
    Returns:
        (B, T) long.
    """
    s_begin = _suffix_min(s_begin)
    # Bounded growth of s_begin is monotonicity of ramp - s_begin, with ramp = (s_range - 1) t.
    ramp = (s_range - 1) * torch.arange(s_begin.shape[1], device=s_begin.device)
    slack = _suffix_min(ramp - s_begin).clamp(min=0)
    return ramp - slack


def get_rnnt_prune_ranges(
    px_grad: Tensor,
    py_grad: Tensor,
    boundary: Optional[Tensor],
    s_range: int,
) -> Tensor:
    """Choose, per frame, ``s_range`` consecutive symbol positions holding most occupation.

    Follows k2: the score of a window starting at s on frame t is the blank occupation of
    positions s .. s + s_range - 1 minus the occupation of the symbol arc entering s on
    that frame (paths that entered from below are not fully inside the window). The last
    real frame is forced to end at ``s_end``, and the starts are then made monotonic
    without skipping positions. When ``s_range > S`` it becomes ``S + 1``.

    Args:
        px_grad: (B, S, T + 1) occupation of symbol arcs (from ``return_grad``).
        py_grad: (B, S + 1, T) occupation of blank arcs.
        boundary: (B, 4) long ``[s_begin, t_begin, s_end, t_end]``; None means [0, 0, S, T].
        s_range: symbols kept per frame; must be >= 2 (regular RNN-T needs room for the
            blank after a symbol on the same frame).
    Returns:
        ranges: (B, T, min(s_range, S + 1)) long, ``ranges[b, t] = start + arange(s_range)``,
        starts non-decreasing in t and ``ranges <= S``.
    """
    if px_grad.ndim != 3 or py_grad.ndim != 3:
        raise ValueError("px_grad and py_grad must be 3-D")
    B, S, T1 = px_grad.shape
    T = py_grad.shape[2]
    if T1 != T + 1 or py_grad.shape != (B, S + 1, T):
        raise ValueError(
            f"expected px_grad (B, S, T + 1) and py_grad (B, S + 1, T), got "
            f"{tuple(px_grad.shape)} and {tuple(py_grad.shape)}"
        )
    # Same preconditions as k2: with T >= S and s_range >= 2 the last real frame's window
    # can always reach s_end.
    if S < 1:
        raise ValueError(f"get_rnnt_prune_ranges needs S >= 1, got S={S}")
    if T < S:
        raise ValueError(f"get_rnnt_prune_ranges needs T >= S, got T={T}, S={S}")
    if s_range > S:
        s_range = S + 1
    if s_range < 2:
        raise ValueError(f"s_range must be >= 2 for regular RNN-T, got {s_range}")
    boundary = boundary_or_default(boundary, B, S, T, px_grad.device)

    num_windows = S + 2 - s_range
    # Summed term by term (not cumsum differences) so that tied windows compare exactly.
    window_mass = py_grad[:, :num_windows].clone()
    for k in range(1, s_range):
        window_mass += py_grad[:, k : k + num_windows]
    entering = torch.cat((px_grad.new_zeros(B, 1, T), px_grad[:, : num_windows - 1, :T]), dim=1)
    s_begin = torch.argmax(window_mass - entering, dim=1)  # (B, T)

    # From the last real frame on, the window must contain s_end so the final blank survives.
    frames = torch.arange(T, device=px_grad.device).unsqueeze(0)
    before_last = frames < (boundary[:, 3] - 1).unsqueeze(1)
    last_start = (boundary[:, 2] - s_range + 1).clamp(min=0).unsqueeze(1)
    s_begin = torch.where(before_last, s_begin, last_start)

    s_begin = _adjust_pruning_lower_bound(s_begin, s_range)
    return s_begin.unsqueeze(2) + torch.arange(s_range, device=px_grad.device)


def do_rnnt_pruning(am: Tensor, lm: Tensor, ranges: Tensor) -> Tuple[Tensor, Tensor]:
    """Expand encoder and decoder outputs onto the pruned (frame, symbol position) grid.

    Args:
        am: (B, T, C_am) encoder-side joiner input.
        lm: (B, S + 1, C_lm) decoder-side joiner input.
        ranges: (B, T, s_range) long, from :func:`get_rnnt_prune_ranges`.
    Returns:
        (am_pruned (B, T, s_range, C_am), a broadcast view of ``am``;
        lm_pruned (B, T, s_range, C_lm) with ``lm_pruned[b, t, k] = lm[b, ranges[b, t, k]]``).
    """
    if ranges.ndim != 3 or ranges.shape[0] != am.shape[0] or ranges.shape[0] != lm.shape[0]:
        raise ValueError("ranges must be (B, T, s_range) with the batch size of am and lm")
    if am.ndim != 3 or am.shape[1] != ranges.shape[1]:
        raise ValueError(f"am must be (B, T={ranges.shape[1]}, C), got {tuple(am.shape)}")
    B, T, s_range = ranges.shape
    am_pruned = am.unsqueeze(2).expand(B, T, s_range, am.shape[2])
    batch = torch.arange(B, device=lm.device).reshape(B, 1, 1)
    lm_pruned = lm[batch, ranges]
    return am_pruned, lm_pruned
