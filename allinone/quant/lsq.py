"""Symmetric uniform weight quantization with a learned step (LSQ, Esser et al., 2020).

For ``b >= 2`` bits the integer grid is symmetric, ``-Q .. Q`` with ``Q = 2^(b-1) - 1``
(so a 2-bit tensor is ternary and zero is always exact); 1 bit is ``sign(w) * s``.
The forward value is ``round(clamp(w / s, -Q, Q)) * s``; rounding passes gradients
straight through, and the step's gradient is multiplied by ``g = 1 / sqrt(numel * Q)``
as the LSQ paper prescribes so that steps and weights learn at comparable rates.
"""

import math
from typing import Optional

import torch

from allinone.subnet import FLOAT_BITS


def quant_levels(bits: int) -> int:
    """Largest integer code Q of a ``bits``-bit symmetric grid (1 for the sign quantizer)."""
    if bits < 1 or bits >= FLOAT_BITS:
        raise ValueError(f"no integer grid for {bits} bits")
    return 1 if bits == 1 else 2 ** (bits - 1) - 1


def init_step(weight: torch.Tensor, bits: int) -> torch.Tensor:
    """LSQ's initial step ``2 mean|w| / sqrt(Q)``; for 1 bit the L1-optimal ``mean|w|``."""
    mean_abs = weight.detach().abs().mean().clamp(min=1e-8)
    if bits == 1:
        return mean_abs
    return 2.0 * mean_abs / math.sqrt(quant_levels(bits))


def _scale_grad(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Identity in the forward pass; multiplies the gradient by ``scale``."""
    y = x * scale
    return (x - y).detach() + y


def _round_ste(x: torch.Tensor) -> torch.Tensor:
    return (x.round() - x).detach() + x


def _sign_ste(x: torch.Tensor) -> torch.Tensor:
    # sign with sign(0) = +1 so that every weight has exactly one of two values.
    return (torch.where(x >= 0, 1.0, -1.0).to(x.dtype) - x).detach() + x


def lsq_fake_quant(
    weight: torch.Tensor, step: torch.Tensor, bits: int, per_step: Optional[float] = None
) -> torch.Tensor:
    """Quantize-dequantize ``weight`` on a ``bits``-bit grid of spacing ``step``.

    Args:
        weight: any shape, float.
        step: positive step: a scalar, or one per row/group shaped to broadcast against
            ``weight``; each step's gradient is scaled by ``1 / sqrt(weights per step * Q)``.
        bits: 1..8.
    Returns:
        tensor like ``weight`` whose entries lie on ``step * {-Q..Q}`` (``{-1, 1}`` for 1 bit).
    """
    q = quant_levels(bits)
    # weights per step: the whole tensor for one step, a row or a group for finer steps
    per_step = weight.numel() / step.numel() if per_step is None else per_step
    s = _scale_grad(step, 1.0 / math.sqrt(per_step * q))
    v = torch.clamp(weight / s, -q, q)
    codes = _sign_ste(v) if bits == 1 else _round_ste(v)
    return codes * s


def lsq_codes(weight: torch.Tensor, step: torch.Tensor, bits: int) -> torch.Tensor:
    """Integer codes in ``-Q..Q`` (``{-1, 1}`` for 1 bit) that ``lsq_fake_quant`` multiplies by the step."""
    with torch.no_grad():
        step = step.abs().clamp(min=1e-8)  # as ``QuantizedWeightMixin.quantized_weight`` uses it
        v = torch.clamp(weight / step, -quant_levels(bits), quant_levels(bits))
        codes = torch.where(v >= 0, 1.0, -1.0) if bits == 1 else v.round()
    return codes.to(torch.int8)
