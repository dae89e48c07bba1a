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

The pieces live by job in :mod:`~allinone.losses.rnnt_logprobs` (px, py from joiner
outputs), :mod:`~allinone.losses.rnnt_recursion` (the path sum and its occupation
gradients) and :mod:`~allinone.losses.rnnt_pruning` (prune ranges); this module holds the
losses and is the backend :func:`allinone.losses.get_rnnt_backend` returns for "torch",
exposing every name of :data:`allinone.losses.RNNT_API`.
"""

from typing import Optional, Tuple, Union

from torch import Tensor

from allinone.losses.rnnt_logprobs import (
    get_rnnt_logprobs,
    get_rnnt_logprobs_joint,
    get_rnnt_logprobs_pruned,
    get_rnnt_logprobs_smoothed,
)
from allinone.losses.rnnt_pruning import do_rnnt_pruning, get_rnnt_prune_ranges
from allinone.losses.rnnt_recursion import mutual_information_recursion

__all__ = [
    "get_rnnt_logprobs",
    "get_rnnt_logprobs_smoothed",
    "get_rnnt_logprobs_joint",
    "get_rnnt_logprobs_pruned",
    "mutual_information_recursion",
    "rnnt_loss_simple",
    "rnnt_loss_smoothed",
    "rnnt_loss",
    "rnnt_loss_pruned",
    "get_rnnt_prune_ranges",
    "do_rnnt_pruning",
]


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
