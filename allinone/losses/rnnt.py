"""Pruned RNN-T loss in pure PyTorch, with the semantics and argument names of k2.

Lattice conventions (the same as k2's "regular" RNN-T): for an utterance with S symbols
and T frames, node (s, t) means "s symbols emitted, t frames consumed". From (s, t) the
symbol ``symbols[b, s]`` leads to (s + 1, t) with log-prob ``px[b, s, t]`` and the
termination (blank) symbol leads to (s, t + 1) with log-prob ``py[b, s, t]``. Emitting a
symbol does not consume a frame, so every complete path ends with the blank of the last
frame; ``px[b, :, t_end]`` is therefore -inf.

``boundary`` is an optional (B, 4) LongTensor of rows ``[s_begin, t_begin, s_end, t_end]``;
None means ``[0, 0, S, T]`` for every utterance. Padded utterances are described purely
by their boundary (``s_end`` = label count, ``t_end`` = frame count).

Everything is vectorised over the batch; the only Python loop is over the anti-diagonals
of the (S + 1, T + 1) lattice, whose nodes depend only on the previous anti-diagonal.
Half-precision inputs are upcast: the recursion runs in float32 (float64 for float64
inputs), and the returned log-probs, losses and occupation probabilities use that dtype.
"""

from typing import Optional, Tuple, Union

import torch
from torch import Tensor

_NEG_INF = float("-inf")

# k2 replaces zero interpolation scales by this so that 0 * -inf never yields nan.
_TINY_SCALE = 1.0e-20


def _compute_dtype(*tensors: Tensor) -> torch.dtype:
    """Dtype used for log-probs and the recursion: float64 if any input is, else float32."""
    return torch.float64 if any(x.dtype == torch.float64 for x in tensors) else torch.float32


def _boundary_or_default(boundary: Optional[Tensor], B: int, S: int, T: int, device) -> Tensor:
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


def _check_reduction(reduction: str) -> None:
    """Raise ValueError unless ``reduction`` is "none", "mean" or "sum"."""
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"reduction should be 'none' | 'mean' | 'sum', given {reduction!r}")


def _reduce(negated_loss: Tensor, reduction: str) -> Tensor:
    """Turn per-utterance total log-probs into the loss.

    Args:
        negated_loss: (B,) total log-probs.
        reduction: "none" (per utterance), "mean" (over the batch) or "sum".
    Returns:
        (B,) for "none", else a scalar.
    """
    _check_reduction(reduction)
    if reduction == "none":
        return -negated_loss
    if reduction == "mean":
        return -negated_loss.mean()
    return -negated_loss.sum()


def _append_neg_inf_column(x: Tensor) -> Tensor:
    """Extend (B, S, T) symbol log-probs to (B, S, T + 1) with a -inf "one past last" frame.

    Args:
        x: (B, S, T).
    Returns:
        (B, S, T + 1).
    """
    B, S, _ = x.shape
    return torch.cat((x, x.new_full((B, S, 1), _NEG_INF)), dim=2)


def _fix_for_boundary(px: Tensor, boundary: Optional[Tensor]) -> Tensor:
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
    return px.masked_fill(at_end.unsqueeze(1), _NEG_INF)


def _check_termination(termination_symbol: int, C: int) -> None:
    """Raise ValueError unless 0 <= termination_symbol < C."""
    if not 0 <= termination_symbol < C:
        raise ValueError(f"termination_symbol must be in [0, {C}), got {termination_symbol}")


def _check_simple_inputs(lm: Tensor, am: Tensor, symbols: Tensor, termination_symbol: int) -> None:
    """Raise ValueError unless lm (B, S + 1, C), am (B, T, C) and symbols (B, S) agree."""
    if lm.ndim != 3 or am.ndim != 3:
        raise ValueError(f"lm and am must be 3-D, got {tuple(lm.shape)} and {tuple(am.shape)}")
    B, T, C = am.shape
    if lm.shape[0] != B or lm.shape[2] != C:
        raise ValueError(f"lm {tuple(lm.shape)} does not match am {tuple(am.shape)}")
    S = lm.shape[1] - 1
    if symbols.shape != (B, S):
        raise ValueError(f"symbols must have shape {(B, S)}, got {tuple(symbols.shape)}")
    _check_termination(termination_symbol, C)


def _joint_log_normalizers(lm_max: Tensor, lm_e: Tensor, am_max: Tensor, am_e: Tensor) -> Tensor:
    """log sum_c exp(lm[b, s, c] + am[b, t, c]) without materialising (B, S + 1, T, C).

    The per-row maxima are factored out so exp() stays in [0, 1] and cannot overflow; a
    matmul then does the sum over C. ``tiny`` keeps log() finite if the product underflows.

    Args:
        lm_max: (B, S + 1, 1); lm_e: (B, S + 1, C) = exp(lm - lm_max).
        am_max: (B, T, 1); am_e: (B, T, C) = exp(am - am_max).
    Returns:
        (B, S + 1, T).
    """
    prod = torch.matmul(lm_e, am_e.transpose(1, 2))
    tiny = torch.finfo(prod.dtype).tiny
    return (prod + tiny).log() + lm_max + am_max.transpose(1, 2)


def _am_at_symbols(am: Tensor, symbols: Tensor) -> Tensor:
    """am[b, t, symbols[b, s]] arranged as (B, S, T).

    Args:
        am: (B, T, C); symbols: (B, S).
    Returns:
        (B, S, T).
    """
    B, T, _ = am.shape
    S = symbols.shape[1]
    return torch.gather(am, 2, symbols.unsqueeze(1).expand(B, T, S)).transpose(1, 2)


def get_rnnt_logprobs(
    lm: Tensor,
    am: Tensor,
    symbols: Tensor,
    termination_symbol: int,
    boundary: Optional[Tensor] = None,
) -> Tuple[Tensor, Tensor]:
    """Lattice log-probs of the trivial joiner (logits = am[t] + lm[s]), as in k2.

    Args:
        lm: (B, S + 1, C) un-normalised "language model" part of the logits.
        am: (B, T, C) un-normalised "acoustic" part of the logits.
        symbols: (B, S) long, the label sequences.
        termination_symbol: blank id, in [0, C).
        boundary: optional (B, 4) long ``[s_begin, t_begin, s_end, t_end]``.
    Returns:
        (px, py): px (B, S, T + 1), the log-prob of emitting ``symbols[b, s]`` at node
        (s, t), -inf at t = t_end; py (B, S + 1, T), the log-prob of blank at (s, t).
    """
    _check_simple_inputs(lm, am, symbols, termination_symbol)
    dtype = _compute_dtype(lm, am)
    lm, am = lm.to(dtype), am.to(dtype)
    S = symbols.shape[1]

    lm_max = lm.detach().amax(dim=2, keepdim=True)
    am_max = am.detach().amax(dim=2, keepdim=True)
    normalizers = _joint_log_normalizers(lm_max, (lm - lm_max).exp(), am_max, (am - am_max).exp())

    lm_sym = torch.gather(lm[:, :S], 2, symbols.unsqueeze(2))  # (B, S, 1)
    px = _am_at_symbols(am, symbols) + lm_sym - normalizers[:, :S]
    py = am[:, :, termination_symbol].unsqueeze(1) + lm[:, :, termination_symbol].unsqueeze(2) - normalizers
    return _fix_for_boundary(_append_neg_inf_column(px), boundary), py


def get_rnnt_logprobs_smoothed(
    lm: Tensor,
    am: Tensor,
    symbols: Tensor,
    termination_symbol: int,
    lm_only_scale: float = 0.1,
    am_only_scale: float = 0.1,
    boundary: Optional[Tensor] = None,
) -> Tuple[Tensor, Tensor]:
    """Trivial-joiner lattice log-probs interpolated with LM-only and AM-only log-probs.

    As in k2, the interpolation is log-linear::

        (1 - lm_only_scale - am_only_scale) * joint + lm_only_scale * lm_only
            + am_only_scale * am_only

    where ``joint`` = log_softmax(am[t] + lm[s]), ``lm_only`` = log_softmax(lm[s]) and
    ``am_only`` = log_softmax(am[t] + log(unigram)), ``unigram`` being the LM distribution
    averaged over every (b, s) position of ``lm`` (padding included, like k2).

    Args:
        lm: (B, S + 1, C) un-normalised "language model" part of the logits.
        am: (B, T, C) un-normalised "acoustic" part of the logits.
        symbols: (B, S) long, the label sequences.
        termination_symbol: blank id, in [0, C).
        lm_only_scale: weight of the LM-only log-probs.
        am_only_scale: weight of the AM-only log-probs.
        boundary: optional (B, 4) long ``[s_begin, t_begin, s_end, t_end]``.
    Returns:
        (px, py): px (B, S, T + 1), -inf at t = t_end; py (B, S + 1, T).
    """
    _check_simple_inputs(lm, am, symbols, termination_symbol)
    dtype = _compute_dtype(lm, am)
    lm, am = lm.to(dtype), am.to(dtype)
    S = symbols.shape[1]
    tiny = torch.finfo(dtype).tiny

    lm_max = lm.detach().amax(dim=2, keepdim=True)
    am_max = am.detach().amax(dim=2, keepdim=True)
    lm_e = (lm - lm_max).exp()
    am_e = (am - am_max).exp()
    joint_norm = _joint_log_normalizers(lm_max, lm_e, am_max, am_e)  # (B, S + 1, T)
    lm_e_sum = lm_e.sum(dim=2, keepdim=True)
    lm_only_norm = lm_e_sum.log() + lm_max  # (B, S + 1, 1)
    unigram = (lm_e / lm_e_sum).mean(dim=(0, 1)) + tiny  # (C,)
    am_only_norm = (torch.matmul(am_e, unigram).unsqueeze(2).log() + am_max).transpose(1, 2)  # (B, 1, T)
    log_unigram = unigram.log()

    am_sym = _am_at_symbols(am, symbols)  # (B, S, T)
    lm_sym = torch.gather(lm[:, :S], 2, symbols.unsqueeze(2))  # (B, S, 1)
    px_joint = am_sym + lm_sym - joint_norm[:, :S]
    px_lm_only = lm_sym - lm_only_norm[:, :S]
    px_am_only = am_sym + log_unigram[symbols].unsqueeze(2) - am_only_norm

    am_blank = am[:, :, termination_symbol].unsqueeze(1)  # (B, 1, T)
    lm_blank = lm[:, :, termination_symbol].unsqueeze(2)  # (B, S + 1, 1)
    py_joint = am_blank + lm_blank - joint_norm
    py_lm_only = lm_blank - lm_only_norm
    py_am_only = am_blank + log_unigram[termination_symbol] - am_only_norm

    joint_scale = 1.0 - lm_only_scale - am_only_scale
    lm_only_scale = lm_only_scale if lm_only_scale != 0.0 else _TINY_SCALE
    am_only_scale = am_only_scale if am_only_scale != 0.0 else _TINY_SCALE
    px = joint_scale * px_joint + lm_only_scale * px_lm_only + am_only_scale * px_am_only
    py = joint_scale * py_joint + lm_only_scale * py_lm_only + am_only_scale * py_am_only
    return _fix_for_boundary(_append_neg_inf_column(px), boundary), py


def get_rnnt_logprobs_joint(
    logits: Tensor,
    symbols: Tensor,
    termination_symbol: int,
    boundary: Optional[Tensor] = None,
) -> Tuple[Tensor, Tensor]:
    """Lattice log-probs from full joiner logits.

    Args:
        logits: (B, T, S + 1, C) joiner output for every (frame, symbol position).
        symbols: (B, S) long, the label sequences.
        termination_symbol: blank id, in [0, C).
        boundary: optional (B, 4) long ``[s_begin, t_begin, s_end, t_end]``.
    Returns:
        (px, py): px (B, S, T + 1), -inf at t = t_end; py (B, S + 1, T).
    """
    if logits.ndim != 4:
        raise ValueError(f"logits must be (B, T, S + 1, C), got {tuple(logits.shape)}")
    B, T, S1, C = logits.shape
    S = S1 - 1
    if symbols.shape != (B, S):
        raise ValueError(f"symbols must have shape {(B, S)}, got {tuple(symbols.shape)}")
    _check_termination(termination_symbol, C)
    logits = logits.to(_compute_dtype(logits))

    normalizers = torch.logsumexp(logits, dim=3)  # (B, T, S + 1)
    index = symbols.reshape(B, 1, S, 1).expand(B, T, S, 1)
    px = torch.gather(logits[:, :, :S], 3, index).squeeze(3) - normalizers[:, :, :S]
    py = logits[:, :, :, termination_symbol] - normalizers
    px = _append_neg_inf_column(px.transpose(1, 2))
    return _fix_for_boundary(px, boundary), py.transpose(1, 2)


def get_rnnt_logprobs_pruned(
    logits: Tensor,
    symbols: Tensor,
    ranges: Tensor,
    termination_symbol: int,
    boundary: Optional[Tensor] = None,
) -> Tuple[Tensor, Tensor]:
    """Lattice log-probs from joiner logits evaluated only inside the pruning ranges.

    Nodes outside ``ranges`` get -inf, so only paths inside the pruned lattice count.

    Args:
        logits: (B, T, s_range, C); ``logits[b, t, k]`` is for symbol position
            ``ranges[b, t, k]``.
        symbols: (B, S) long, the label sequences.
        ranges: (B, T, s_range) long, distinct positions in [0, S] per frame (see
            :func:`get_rnnt_prune_ranges`).
        termination_symbol: blank id, in [0, C).
        boundary: optional (B, 4) long ``[s_begin, t_begin, s_end, t_end]``.
    Returns:
        (px, py): px (B, S, T + 1), py (B, S + 1, T), -inf outside the pruned lattice.
    """
    if logits.ndim != 4:
        raise ValueError(f"logits must be (B, T, s_range, C), got {tuple(logits.shape)}")
    B, T, s_range, C = logits.shape
    if ranges.shape != (B, T, s_range):
        raise ValueError(f"ranges must have shape {(B, T, s_range)}, got {tuple(ranges.shape)}")
    if symbols.ndim != 2 or symbols.shape[0] != B:
        raise ValueError(f"symbols must be (B={B}, S), got {tuple(symbols.shape)}")
    S = symbols.shape[1]
    _check_termination(termination_symbol, C)
    if ranges.numel() and (int(ranges.min()) < 0 or int(ranges.max()) > S):
        raise ValueError(f"ranges must lie in [0, {S}]")
    logits = logits.to(_compute_dtype(logits))

    normalizers = torch.logsumexp(logits, dim=3)  # (B, T, s_range)
    # Position S has no label; the blank stands in so the gather stays in bounds and the
    # resulting value is discarded below.
    padded_symbols = torch.cat((symbols, symbols.new_full((B, 1), termination_symbol)), dim=1)
    window_symbols = torch.gather(padded_symbols, 1, ranges.reshape(B, T * s_range)).reshape(B, T, s_range)
    sym_lp = torch.gather(logits, 3, window_symbols.unsqueeze(3)).squeeze(3) - normalizers
    blank_lp = logits[:, :, :, termination_symbol] - normalizers

    empty = logits.new_full((B, T, S + 1), _NEG_INF)
    px = empty.scatter(2, ranges, sym_lp)[:, :, :S].transpose(1, 2)  # (B, S, T)
    py = empty.scatter(2, ranges, blank_lp).transpose(1, 2)  # (B, S + 1, T)
    return _fix_for_boundary(_append_neg_inf_column(px), boundary), py


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
    return x[:, s, t.clamp(0, max(W - 1, 0))].masked_fill(~valid, _NEG_INF)


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
    alpha = py_d.new_full((B, D, S1), _NEG_INF)
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
    beta = py_d.new_full((B, D + 1, S1), _NEG_INF)
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
    dtype = _compute_dtype(px, py)
    boundary = _boundary_or_default(boundary, B, S, T, px.device)
    scores, px_grad, py_grad = _MutualInformation.apply(px.to(dtype), py.to(dtype), boundary, return_grad)
    return (scores, (px_grad, py_grad)) if return_grad else scores


def rnnt_loss_simple(
    lm: Tensor,
    am: Tensor,
    symbols: Tensor,
    termination_symbol: int,
    boundary: Optional[Tensor] = None,
    reduction: str = "mean",
    return_grad: bool = False,
) -> Union[Tensor, Tuple[Tensor, Tuple[Tensor, Tensor]]]:
    """RNN-T loss of the trivial joiner (logits = am[t] + lm[s]).

    Args:
        lm: (B, S + 1, C) un-normalised "language model" part of the logits.
        am: (B, T, C) un-normalised "acoustic" part of the logits.
        symbols: (B, S) long, the label sequences.
        termination_symbol: blank id, in [0, C).
        boundary: optional (B, 4) long ``[s_begin, t_begin, s_end, t_end]``.
        reduction: "none" -> (B,), "mean" -> mean over the batch, "sum" -> sum.
        return_grad: also return the occupation probabilities of px and py.
    Returns:
        loss (negated total log-prob), or ``(loss, (px_grad, py_grad))`` with px_grad
        (B, S, T + 1) and py_grad (B, S + 1, T) when ``return_grad``.
    """
    _check_reduction(reduction)
    px, py = get_rnnt_logprobs(lm, am, symbols, termination_symbol, boundary)
    out = mutual_information_recursion(px, py, boundary, return_grad=return_grad)
    if return_grad:
        return _reduce(out[0], reduction), out[1]
    return _reduce(out, reduction)


def rnnt_loss_smoothed(
    lm: Tensor,
    am: Tensor,
    symbols: Tensor,
    termination_symbol: int,
    lm_only_scale: float = 0.0,
    am_only_scale: float = 0.1,
    boundary: Optional[Tensor] = None,
    reduction: str = "mean",
    return_grad: bool = False,
) -> Union[Tensor, Tuple[Tensor, Tuple[Tensor, Tensor]]]:
    """RNN-T loss of the trivial joiner, smoothed with LM-only and AM-only log-probs.

    See :func:`get_rnnt_logprobs_smoothed` for the interpolation.

    Args:
        lm: (B, S + 1, C) un-normalised "language model" part of the logits.
        am: (B, T, C) un-normalised "acoustic" part of the logits.
        symbols: (B, S) long, the label sequences.
        termination_symbol: blank id, in [0, C).
        lm_only_scale: weight of the LM-only log-probs.
        am_only_scale: weight of the AM-only log-probs.
        boundary: optional (B, 4) long ``[s_begin, t_begin, s_end, t_end]``.
        reduction: "none" -> (B,), "mean" -> mean over the batch, "sum" -> sum.
        return_grad: also return the occupation probabilities of px and py.
    Returns:
        loss, or ``(loss, (px_grad, py_grad))`` with px_grad (B, S, T + 1) and py_grad
        (B, S + 1, T) when ``return_grad``.
    """
    _check_reduction(reduction)
    px, py = get_rnnt_logprobs_smoothed(
        lm, am, symbols, termination_symbol, lm_only_scale, am_only_scale, boundary
    )
    out = mutual_information_recursion(px, py, boundary, return_grad=return_grad)
    if return_grad:
        return _reduce(out[0], reduction), out[1]
    return _reduce(out, reduction)


def rnnt_loss(
    logits: Tensor,
    symbols: Tensor,
    termination_symbol: int,
    boundary: Optional[Tensor] = None,
    reduction: str = "mean",
) -> Tensor:
    """Full RNN-T loss from joiner logits over the whole lattice.

    Args:
        logits: (B, T, S + 1, C) joiner output.
        symbols: (B, S) long, the label sequences.
        termination_symbol: blank id, in [0, C).
        boundary: optional (B, 4) long ``[s_begin, t_begin, s_end, t_end]``.
        reduction: "none" -> (B,), "mean" -> mean over the batch, "sum" -> sum.
    Returns:
        loss: (B,) or scalar.
    """
    _check_reduction(reduction)
    px, py = get_rnnt_logprobs_joint(logits, symbols, termination_symbol, boundary)
    return _reduce(mutual_information_recursion(px, py, boundary), reduction)


def rnnt_loss_pruned(
    logits: Tensor,
    symbols: Tensor,
    ranges: Tensor,
    termination_symbol: int,
    boundary: Optional[Tensor] = None,
    reduction: str = "mean",
) -> Tensor:
    """RNN-T loss restricted to the pruned lattice given by ``ranges``.

    Args:
        logits: (B, T, s_range, C) joiner output at the positions in ``ranges``.
        symbols: (B, S) long, the label sequences.
        ranges: (B, T, s_range) long, from :func:`get_rnnt_prune_ranges`.
        termination_symbol: blank id, in [0, C).
        boundary: optional (B, 4) long ``[s_begin, t_begin, s_end, t_end]``.
        reduction: "none" -> (B,), "mean" -> mean over the batch, "sum" -> sum.
    Returns:
        loss: (B,) or scalar; never smaller than the full loss with the same logits.
    """
    _check_reduction(reduction)
    px, py = get_rnnt_logprobs_pruned(logits, symbols, ranges, termination_symbol, boundary)
    return _reduce(mutual_information_recursion(px, py, boundary), reduction)


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
    boundary = _boundary_or_default(boundary, B, S, T, px_grad.device)

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
