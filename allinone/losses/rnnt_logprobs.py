"""Lattice log-probs (px, py) of the RNN-T lattice from joiner outputs: the trivial joiner
(plain and smoothed), full joiner logits, and logits inside pruning ranges.

Conventions as in :mod:`allinone.losses.rnnt`; all return px (B, S, T + 1), py (B, S + 1, T).
"""

from typing import Optional, Tuple

import torch
from torch import Tensor

from allinone.losses.rnnt_lattice import (
    NEG_INF,
    append_neg_inf_column,
    check_termination,
    compute_dtype,
    fix_for_boundary,
)

# k2 replaces zero interpolation scales by this so that 0 * -inf never yields nan.
_TINY_SCALE = 1.0e-20


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
    check_termination(termination_symbol, C)


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
    dtype = compute_dtype(lm, am)
    lm, am = lm.to(dtype), am.to(dtype)
    S = symbols.shape[1]

    lm_max = lm.detach().amax(dim=2, keepdim=True)
    am_max = am.detach().amax(dim=2, keepdim=True)
    normalizers = _joint_log_normalizers(lm_max, (lm - lm_max).exp(), am_max, (am - am_max).exp())

    lm_sym = torch.gather(lm[:, :S], 2, symbols.unsqueeze(2))  # (B, S, 1)
    px = _am_at_symbols(am, symbols) + lm_sym - normalizers[:, :S]
    py = am[:, :, termination_symbol].unsqueeze(1) + lm[:, :, termination_symbol].unsqueeze(2) - normalizers
    return fix_for_boundary(append_neg_inf_column(px), boundary), py


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
    dtype = compute_dtype(lm, am)
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
    return fix_for_boundary(append_neg_inf_column(px), boundary), py


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
    check_termination(termination_symbol, C)
    logits = logits.to(compute_dtype(logits))

    normalizers = torch.logsumexp(logits, dim=3)  # (B, T, S + 1)
    index = symbols.reshape(B, 1, S, 1).expand(B, T, S, 1)
    px = torch.gather(logits[:, :, :S], 3, index).squeeze(3) - normalizers[:, :, :S]
    py = logits[:, :, :, termination_symbol] - normalizers
    px = append_neg_inf_column(px.transpose(1, 2))
    return fix_for_boundary(px, boundary), py.transpose(1, 2)


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
    check_termination(termination_symbol, C)
    if ranges.numel() and (int(ranges.min()) < 0 or int(ranges.max()) > S):
        raise ValueError(f"ranges must lie in [0, {S}]")
    logits = logits.to(compute_dtype(logits))

    normalizers = torch.logsumexp(logits, dim=3)  # (B, T, s_range)
    # Position S has no label; the blank stands in so the gather stays in bounds and the
    # resulting value is discarded below.
    padded_symbols = torch.cat((symbols, symbols.new_full((B, 1), termination_symbol)), dim=1)
    window_symbols = torch.gather(padded_symbols, 1, ranges.reshape(B, T * s_range)).reshape(B, T, s_range)
    sym_lp = torch.gather(logits, 3, window_symbols.unsqueeze(3)).squeeze(3) - normalizers
    blank_lp = logits[:, :, :, termination_symbol] - normalizers

    empty = logits.new_full((B, T, S + 1), NEG_INF)
    px = empty.scatter(2, ranges, sym_lp)[:, :, :S].transpose(1, 2)  # (B, S, T)
    py = empty.scatter(2, ranges, blank_lp).transpose(1, 2)  # (B, S + 1, T)
    return fix_for_boundary(append_neg_inf_column(px), boundary), py
