"""The mutual-information recursion: log-sum over all monotonic paths of the RNN-T lattice
and, as its gradient, the occupation probability of every arc.

Vectorised over the batch; the only Python loop is over the anti-diagonals of the
(S + 1, T + 1) lattice, whose nodes depend only on the previous anti-diagonal.
"""

from typing import Optional, Tuple, Union

import torch
from torch import Tensor

from allinone.losses.rnnt_lattice import NEG_INF, boundary_or_default, compute_dtype


def _to_diagonals(x: Tensor, num_diagonals: int) -> Tensor:
    """Re-index a lattice quantity by anti-diagonal: out[b, d, s] = x[b, s, d - s].

    Args:
        x: (B, R, W), indexed by (symbol position s, frame t).
        num_diagonals: D, the number of anti-diagonals d = s + t to produce.
    Returns:
        (B, D, R), -inf where d - s is outside [0, W).
    """
    _, R, W = x.shape
    d = torch.arange(num_diagonals, device=x.device).unsqueeze(1)
    s = torch.arange(R, device=x.device).unsqueeze(0)
    t = d - s
    valid = (t >= 0) & (t < W)
    return x[:, s, t.clamp(0, max(W - 1, 0))].masked_fill(~valid, NEG_INF)


def _from_diagonals(y: Tensor, width: int) -> Tensor:
    """Inverse of :func:`_to_diagonals`: out[b, s, t] = y[b, s + t, s].

    Args:
        y: (B, D, R) with D >= R + width - 1.
        width: W, the number of frames of the output.
    Returns:
        (B, R, W).
    """
    R = y.shape[2]
    s = torch.arange(R, device=y.device).unsqueeze(1)
    t = torch.arange(width, device=y.device).unsqueeze(0)
    return y[:, s + t, s]


def _forward_scores(px_d: Tensor, py_d: Tensor, boundary: Tensor) -> Tensor:
    """Alpha recursion over anti-diagonals.

    Args:
        px_d: (B, D, S) symbol log-probs by diagonal.
        py_d: (B, D, S + 1) blank log-probs by diagonal.
        boundary: (B, 4) long.
    Returns:
        alpha: (B, D, S + 1), alpha[b, s + t, s] = log-sum of paths (s_begin, t_begin) -> (s, t).
    """
    B, D, S1 = py_d.shape
    alpha = py_d.new_full((B, D, S1), NEG_INF)
    batch = torch.arange(B, device=py_d.device)
    alpha[batch, boundary[:, 0] + boundary[:, 1], boundary[:, 0]] = 0.0
    for d in range(1, D):
        prev = alpha[:, d - 1]
        new = prev + py_d[:, d - 1]
        new[:, 1:] = torch.logaddexp(new[:, 1:], prev[:, :-1] + px_d[:, d - 1])
        # A start node has no predecessors, so at most one operand is finite: max == logaddexp.
        alpha[:, d] = torch.maximum(alpha[:, d], new)
    return alpha


def _backward_scores(px_d: Tensor, py_d: Tensor, boundary: Tensor) -> Tensor:
    """Beta recursion over anti-diagonals.

    Args:
        px_d: (B, D, S) symbol log-probs by diagonal.
        py_d: (B, D, S + 1) blank log-probs by diagonal.
        boundary: (B, 4) long.
    Returns:
        beta: (B, D + 1, S + 1), beta[b, s + t, s] = log-sum of paths (s, t) -> (s_end, t_end);
        the extra last diagonal is all -inf so callers can look one diagonal ahead.
    """
    B, D, S1 = py_d.shape
    beta = py_d.new_full((B, D + 1, S1), NEG_INF)
    batch = torch.arange(B, device=py_d.device)
    beta[batch, boundary[:, 2] + boundary[:, 3], boundary[:, 2]] = 0.0
    for d in range(D - 2, -1, -1):
        nxt = beta[:, d + 1]
        new = nxt + py_d[:, d]
        new[:, :-1] = torch.logaddexp(new[:, :-1], nxt[:, 1:] + px_d[:, d])
        # The end node has no successors, so at most one operand is finite.
        beta[:, d] = torch.maximum(beta[:, d], new)
    return beta


def _occupation(
    px_d: Tensor, py_d: Tensor, alpha: Tensor, total: Tensor, boundary: Tensor, T: int
) -> Tuple[Tensor, Tensor]:
    """Posterior probability of every lattice arc, i.e. d(total)/d(px), d(total)/d(py).

    Args:
        px_d: (B, D, S); py_d: (B, D, S + 1); alpha: (B, D, S + 1); total: (B,).
        boundary: (B, 4) long.
        T: number of frames.
    Returns:
        (px_grad (B, S, T + 1), py_grad (B, S + 1, T)); zero for utterances whose total
        is -inf (no valid path), where the derivative is undefined.
    """
    beta = _backward_scores(px_d, py_d, boundary)
    S = px_d.shape[2]
    finite = torch.isfinite(total).reshape(-1, 1, 1)
    norm = torch.where(finite, total.reshape(-1, 1, 1), torch.zeros_like(total).reshape(-1, 1, 1))
    occ_x = (alpha[:, :, :S] + px_d + beta[:, 1:, 1:] - norm).exp()
    occ_y = (alpha + py_d + beta[:, 1:] - norm).exp()
    occ_x = torch.where(finite, occ_x, torch.zeros_like(occ_x))
    occ_y = torch.where(finite, occ_y, torch.zeros_like(occ_y))
    return _from_diagonals(occ_x, T + 1), _from_diagonals(occ_y, T)


class _MutualInformation(torch.autograd.Function):
    """Total log-prob of the lattice; gradients are the arc occupation probabilities."""

    @staticmethod
    def forward(ctx, px: Tensor, py: Tensor, boundary: Tensor, return_grad: bool):
        B, S, T1 = px.shape
        T = T1 - 1
        D = S + T + 1
        px_d = _to_diagonals(px, D)
        py_d = _to_diagonals(py, D)
        alpha = _forward_scores(px_d, py_d, boundary)
        total = alpha[torch.arange(B, device=px.device), boundary[:, 2] + boundary[:, 3], boundary[:, 2]]
        if return_grad or ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            px_grad, py_grad = _occupation(px_d, py_d, alpha, total, boundary, T)
        else:
            px_grad, py_grad = px.new_zeros(0), py.new_zeros(0)
        ctx.save_for_backward(px_grad, py_grad)
        ctx.mark_non_differentiable(px_grad, py_grad)
        return total, px_grad, py_grad

    @staticmethod
    def backward(ctx, total_grad: Tensor, _px_grad_grad: Tensor, _py_grad_grad: Tensor):
        px_grad, py_grad = ctx.saved_tensors
        scale = total_grad.reshape(-1, 1, 1)
        return px_grad * scale, py_grad * scale, None, None


def mutual_information_recursion(
    px: Tensor,
    py: Tensor,
    boundary: Optional[Tensor] = None,
    return_grad: bool = False,
) -> Union[Tensor, Tuple[Tensor, Tuple[Tensor, Tensor]]]:
    """Log-sum over all monotonic lattice paths, k2's ``mutual_information_recursion``.

    Computes, for each b, ``p[b, s_end, t_end]`` where ``p[b, s_begin, t_begin] = 0`` and
    ``p[b, s, t] = logaddexp(p[b, s - 1, t] + px[b, s - 1, t], p[b, s, t - 1] + py[b, s, t - 1])``,
    terms with indices outside the boundary box being -inf.

    Args:
        px: (B, S, T + 1) log-probs of moving from (s, t) to (s + 1, t).
        py: (B, S + 1, T) log-probs of moving from (s, t) to (s, t + 1).
        boundary: optional (B, 4) long ``[s_begin, t_begin, s_end, t_end]``.
        return_grad: also return the occupation probabilities.
    Returns:
        scores (B,) in float32 (float64 for float64 inputs); with ``return_grad``,
        ``(scores, (px_grad, py_grad))`` with px_grad (B, S, T + 1) and py_grad (B, S + 1, T)
        equal to d(scores.sum())/d(px, py), zero for utterances with no valid path.
    """
    if px.ndim != 3 or py.ndim != 3:
        raise ValueError(f"px and py must be 3-D, got {tuple(px.shape)} and {tuple(py.shape)}")
    B, S, T1 = px.shape
    T = py.shape[2]
    if T1 == T:
        raise ValueError(
            "px of shape (B, S, T) is k2's 'modified' RNN-T, which is not supported; px must be (B, S, T + 1)"
        )
    if T1 != T + 1 or py.shape != (B, S + 1, T):
        raise ValueError(
            f"expected px (B, S, T + 1) and py (B, S + 1, T), got {tuple(px.shape)} and {tuple(py.shape)}"
        )
    dtype = compute_dtype(px, py)
    boundary = boundary_or_default(boundary, B, S, T, px.device)
    scores, px_grad, py_grad = _MutualInformation.apply(px.to(dtype), py.to(dtype), boundary, return_grad)
    return (scores, (px_grad, py_grad)) if return_grad else scores
