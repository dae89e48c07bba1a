"""k2 backend: the functions of :mod:`allinone.losses.rnnt`, delegated to k2.

k2 is imported lazily, inside each call, so this module can be imported (and the pure
PyTorch backend used) on machines without k2. Only k2's default "regular" RNN-T is
exposed. Half-precision inputs are upcast to float32 first, matching the precision policy
of the PyTorch backend (k2's recursion kernels do not take float16).
"""

from typing import Optional, Tuple, Union

import torch
from torch import Tensor

_K2_MISSING = (
    "the 'k2' RNN-T loss backend needs k2, which could not be imported ({error}). Install a k2 "
    "build matching your torch and CUDA versions (https://k2-fsa.github.io/k2/installation/), "
    "or use the pure PyTorch backend: get_rnnt_backend('torch')."
)


def import_k2():
    """Import and return k2.

    Returns:
        The ``k2`` module.
    Raises:
        ImportError: with installation advice when k2 is missing or broken.
    """
    try:
        import k2
    except (ImportError, OSError) as error:  # a k2 built for another torch fails with OSError
        raise ImportError(_K2_MISSING.format(error=error)) from error
    return k2


def _float(x: Tensor) -> Tensor:
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def get_rnnt_logprobs(
    lm: Tensor, am: Tensor, symbols: Tensor, termination_symbol: int, boundary: Optional[Tensor] = None
) -> Tuple[Tensor, Tensor]:
    """k2.get_rnnt_logprobs.

    Args:
        lm: (B, S + 1, C); am: (B, T, C); symbols: (B, S) long; termination_symbol: blank id;
        boundary: optional (B, 4) long.
    Returns:
        (px (B, S, T + 1), py (B, S + 1, T)).
    """
    return import_k2().get_rnnt_logprobs(
        lm=_float(lm),
        am=_float(am),
        symbols=symbols,
        termination_symbol=termination_symbol,
        boundary=boundary,
    )


def get_rnnt_logprobs_smoothed(
    lm: Tensor,
    am: Tensor,
    symbols: Tensor,
    termination_symbol: int,
    lm_only_scale: float = 0.1,
    am_only_scale: float = 0.1,
    boundary: Optional[Tensor] = None,
) -> Tuple[Tensor, Tensor]:
    """k2.get_rnnt_logprobs_smoothed.

    Args:
        lm: (B, S + 1, C); am: (B, T, C); symbols: (B, S) long; termination_symbol: blank id;
        lm_only_scale, am_only_scale: interpolation weights; boundary: optional (B, 4) long.
    Returns:
        (px (B, S, T + 1), py (B, S + 1, T)).
    """
    return import_k2().get_rnnt_logprobs_smoothed(
        lm=_float(lm),
        am=_float(am),
        symbols=symbols,
        termination_symbol=termination_symbol,
        lm_only_scale=lm_only_scale,
        am_only_scale=am_only_scale,
        boundary=boundary,
    )


def get_rnnt_logprobs_joint(
    logits: Tensor, symbols: Tensor, termination_symbol: int, boundary: Optional[Tensor] = None
) -> Tuple[Tensor, Tensor]:
    """k2.get_rnnt_logprobs_joint.

    Args:
        logits: (B, T, S + 1, C); symbols: (B, S) long; termination_symbol: blank id;
        boundary: optional (B, 4) long.
    Returns:
        (px (B, S, T + 1), py (B, S + 1, T)).
    """
    return import_k2().get_rnnt_logprobs_joint(
        logits=_float(logits), symbols=symbols, termination_symbol=termination_symbol, boundary=boundary
    )


def get_rnnt_logprobs_pruned(
    logits: Tensor,
    symbols: Tensor,
    ranges: Tensor,
    termination_symbol: int,
    boundary: Optional[Tensor] = None,
) -> Tuple[Tensor, Tensor]:
    """k2.get_rnnt_logprobs_pruned.

    Args:
        logits: (B, T, s_range, C); symbols: (B, S) long; ranges: (B, T, s_range) long;
        termination_symbol: blank id; boundary: optional (B, 4) long.
    Returns:
        (px (B, S, T + 1), py (B, S + 1, T)).
    """
    return import_k2().get_rnnt_logprobs_pruned(
        logits=_float(logits),
        symbols=symbols,
        ranges=ranges,
        termination_symbol=termination_symbol,
        boundary=boundary,
    )


def mutual_information_recursion(
    px: Tensor, py: Tensor, boundary: Optional[Tensor] = None, return_grad: bool = False
) -> Union[Tensor, Tuple[Tensor, Tuple[Tensor, Tensor]]]:
    """k2.mutual_information_recursion.

    Args:
        px: (B, S, T + 1); py: (B, S + 1, T); boundary: optional (B, 4) long;
        return_grad: also return the occupation probabilities.
    Returns:
        scores (B,), or (scores, (px_grad, py_grad)) when ``return_grad``.
    """
    # k2 requires contiguous inputs.
    return import_k2().mutual_information_recursion(
        px=_float(px).contiguous(), py=_float(py).contiguous(), boundary=boundary, return_grad=return_grad
    )


def rnnt_loss_simple(
    lm: Tensor,
    am: Tensor,
    symbols: Tensor,
    termination_symbol: int,
    boundary: Optional[Tensor] = None,
    reduction: str = "mean",
    return_grad: bool = False,
) -> Union[Tensor, Tuple[Tensor, Tuple[Tensor, Tensor]]]:
    """k2.rnnt_loss_simple.

    Args:
        lm: (B, S + 1, C); am: (B, T, C); symbols: (B, S) long; termination_symbol: blank id;
        boundary: optional (B, 4) long; reduction: "none" | "mean" | "sum";
        return_grad: also return (px_grad, py_grad).
    Returns:
        loss, or (loss, (px_grad (B, S, T + 1), py_grad (B, S + 1, T))).
    """
    return import_k2().rnnt_loss_simple(
        lm=_float(lm),
        am=_float(am),
        symbols=symbols,
        termination_symbol=termination_symbol,
        boundary=boundary,
        reduction=reduction,
        return_grad=return_grad,
    )


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
    """k2.rnnt_loss_smoothed (defaults as in :func:`allinone.losses.rnnt.rnnt_loss_smoothed`).

    Args:
        lm: (B, S + 1, C); am: (B, T, C); symbols: (B, S) long; termination_symbol: blank id;
        lm_only_scale, am_only_scale: interpolation weights; boundary: optional (B, 4) long;
        reduction: "none" | "mean" | "sum"; return_grad: also return (px_grad, py_grad).
    Returns:
        loss, or (loss, (px_grad (B, S, T + 1), py_grad (B, S + 1, T))).
    """
    return import_k2().rnnt_loss_smoothed(
        lm=_float(lm),
        am=_float(am),
        symbols=symbols,
        termination_symbol=termination_symbol,
        lm_only_scale=lm_only_scale,
        am_only_scale=am_only_scale,
        boundary=boundary,
        reduction=reduction,
        return_grad=return_grad,
    )


def rnnt_loss(
    logits: Tensor,
    symbols: Tensor,
    termination_symbol: int,
    boundary: Optional[Tensor] = None,
    reduction: str = "mean",
) -> Tensor:
    """k2.rnnt_loss.

    Args:
        logits: (B, T, S + 1, C); symbols: (B, S) long; termination_symbol: blank id;
        boundary: optional (B, 4) long; reduction: "none" | "mean" | "sum".
    Returns:
        loss: (B,) or scalar.
    """
    return import_k2().rnnt_loss(
        logits=_float(logits),
        symbols=symbols,
        termination_symbol=termination_symbol,
        boundary=boundary,
        reduction=reduction,
    )


def rnnt_loss_pruned(
    logits: Tensor,
    symbols: Tensor,
    ranges: Tensor,
    termination_symbol: int,
    boundary: Optional[Tensor] = None,
    reduction: str = "mean",
) -> Tensor:
    """k2.rnnt_loss_pruned.

    Args:
        logits: (B, T, s_range, C); symbols: (B, S) long; ranges: (B, T, s_range) long;
        termination_symbol: blank id; boundary: optional (B, 4) long;
        reduction: "none" | "mean" | "sum".
    Returns:
        loss: (B,) or scalar.
    """
    return import_k2().rnnt_loss_pruned(
        logits=_float(logits),
        symbols=symbols,
        ranges=ranges,
        termination_symbol=termination_symbol,
        boundary=boundary,
        reduction=reduction,
    )


def get_rnnt_prune_ranges(
    px_grad: Tensor, py_grad: Tensor, boundary: Optional[Tensor], s_range: int
) -> Tensor:
    """k2.get_rnnt_prune_ranges (a None boundary becomes [0, 0, S, T], which k2 requires).

    Args:
        px_grad: (B, S, T + 1); py_grad: (B, S + 1, T); boundary: (B, 4) long or None;
        s_range: symbols kept per frame.
    Returns:
        ranges: (B, T, min(s_range, S + 1)) long.
    """
    if boundary is None:
        B, S, T1 = px_grad.shape
        boundary = torch.tensor([0, 0, S, T1 - 1], dtype=torch.int64, device=px_grad.device).repeat(B, 1)
    return import_k2().get_rnnt_prune_ranges(
        px_grad=px_grad, py_grad=py_grad, boundary=boundary, s_range=s_range
    )


def do_rnnt_pruning(am: Tensor, lm: Tensor, ranges: Tensor) -> Tuple[Tensor, Tensor]:
    """k2.do_rnnt_pruning.

    Args:
        am: (B, T, C_am); lm: (B, S + 1, C_lm); ranges: (B, T, s_range) long.
    Returns:
        (am_pruned (B, T, s_range, C_am), lm_pruned (B, T, s_range, C_lm)).
    """
    return import_k2().do_rnnt_pruning(am=am, lm=lm, ranges=ranges)
