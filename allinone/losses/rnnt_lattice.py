"""Shared pieces of the pure-PyTorch RNN-T lattice (conventions in :mod:`allinone.losses.rnnt`):
the boundary rows, the compute dtype and the "one past the last frame" column of px."""

from typing import Optional

import torch
from torch import Tensor

NEG_INF = float("-inf")


def compute_dtype(*tensors: Tensor) -> torch.dtype:
    """Dtype used for log-probs and the recursion: float64 if any input is, else float32."""
    return torch.float64 if any(x.dtype == torch.float64 for x in tensors) else torch.float32


def boundary_or_default(boundary: Optional[Tensor], B: int, S: int, T: int, device) -> Tensor:
    """Validate ``boundary`` or build the default ``[0, 0, S, T]`` rows.

    Args:
        boundary: None or (B, 4) long.
        B, S, T: batch size, max symbols, max frames.
        device: device of the lattice tensors.
    Returns:
        (B, 4) long tensor on ``device``.
    """
    if boundary is None:
        return torch.tensor([0, 0, S, T], dtype=torch.int64, device=device).expand(B, 4)
    if boundary.shape != (B, 4) or boundary.dtype != torch.int64:
        raise ValueError(
            f"boundary must be a (B={B}, 4) int64 tensor, got {tuple(boundary.shape)} {boundary.dtype}"
        )
    boundary = boundary.to(device)
    s_begin, t_begin, s_end, t_end = boundary.unbind(1)
    ok = (0 <= s_begin) & (s_begin <= s_end) & (s_end <= S) & (0 <= t_begin) & (t_begin <= t_end)
    ok = ok & (t_end <= T)
    if not bool(ok.all()):
        raise ValueError(
            f"boundary rows must satisfy 0 <= s_begin <= s_end <= {S} and "
            f"0 <= t_begin <= t_end <= {T}, got {boundary.tolist()}"
        )
    return boundary


def append_neg_inf_column(x: Tensor) -> Tensor:
    """Extend (B, S, T) symbol log-probs to (B, S, T + 1) with a -inf "one past last" frame.

    Args:
        x: (B, S, T).
    Returns:
        (B, S, T + 1).
    """
    B, S, _ = x.shape
    return torch.cat((x, x.new_full((B, S, 1), NEG_INF)), dim=2)


def fix_for_boundary(px: Tensor, boundary: Optional[Tensor]) -> Tensor:
    """Forbid symbols on each utterance's one-past-the-last frame ``t_end``.

    Args:
        px: (B, S, T + 1).
        boundary: None or (B, 4) long.
    Returns:
        (B, S, T + 1), out of place.
    """
    if boundary is None:
        return px  # the appended column already is frame T
    B, _, T1 = px.shape
    frames = torch.arange(T1, device=px.device)
    at_end = frames.unsqueeze(0) == boundary[:, 3].to(px.device).unsqueeze(1)  # (B, T + 1)
    return px.masked_fill(at_end.unsqueeze(1), NEG_INF)


def check_termination(termination_symbol: int, C: int) -> None:
    """Raise ValueError unless 0 <= termination_symbol < C."""
    if not 0 <= termination_symbol < C:
        raise ValueError(f"termination_symbol must be in [0, {C}), got {termination_symbol}")
