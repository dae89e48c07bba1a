"""Symmetric uniform weight quantization with a learned step (LSQ, Esser et al., 2020).

For ``b >= 2`` bits the integer grid is symmetric, ``-Q .. Q`` with ``Q = 2^(b-1) - 1``
(so a 2-bit tensor is ternary and zero is always exact); 1 bit is ``sign(w) * s``.
The forward value is ``round(clamp(w / s, -Q, Q)) * s``; rounding passes gradients
straight through, and the step's gradient is multiplied by ``g = 1 / sqrt(numel * Q)``
as the LSQ paper prescribes so that steps and weights learn at comparable rates.

Granularity (``QuantConfig.granularity``): one step per tensor, per output channel, or
per ``group_size`` consecutive input entries of each output channel (over the flattened
input and kernel dimensions). Slicing a weight's prefix (``out_units``/``in_units``)
uses the matching prefix of steps, so a slice of a quantized tensor equals the
quantized slice.
"""

import math
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F

from allinone.quant.annealing import Annealing
from allinone.quant.quantizer import QuantConfig, Quantizer, register_quantizer
from allinone.subnet import FLOAT_BITS

# --------------------------------------------------------------------------- the grid


def quant_levels(bits: int) -> int:
    """Largest integer code Q of a ``bits``-bit symmetric grid (1 for the sign quantizer)."""
    if bits < 1 or bits >= FLOAT_BITS:
        raise ValueError(f"no integer grid for {bits} bits")
    return 1 if bits == 1 else 2 ** (bits - 1) - 1


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
        per_step: weights per step for that gradient scale (default ``numel / steps``).
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
    """Integer codes in ``-Q..Q`` (``{-1, 1}`` for 1 bit) that ``lsq_fake_quant`` multiplies by the step.

    Args:
        weight: any shape, float.
        step: as in ``lsq_fake_quant``.
        bits: 1..8.
    Returns:
        int8 tensor like ``weight``.
    """
    with torch.no_grad():
        step = step.abs().clamp(min=1e-8)  # as ``LSQQuantizer`` uses it
        v = torch.clamp(weight / step, -quant_levels(bits), quant_levels(bits))
        codes = torch.where(v >= 0, 1.0, -1.0) if bits == 1 else v.round()
    return codes.to(torch.int8)


def _check_integer_codes(codes: torch.Tensor, bits: int) -> torch.Tensor:
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 8:
        raise ValueError(f"bits must be an integer in 1..8, got {bits!r}")
    if codes.dtype.is_floating_point or codes.dtype.is_complex:
        raise ValueError(f"codes must have an integer dtype, got {codes.dtype}")
    return codes.detach().to(torch.int64)


def offset_codes(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Map symmetric codes ``-Q..Q`` (``{-1, 1}`` for 1 bit) to unsigned codes for ``pack_bits``.

    For ``bits >= 2`` the map is ``c + Q`` with ``Q = 2^(bits-1) - 1`` (so ``2^bits - 1`` is
    never used); for 1 bit it is ``-1 -> 0, 1 -> 1``.

    Args:
        codes: any shape, integer dtype, e.g. from ``lsq_codes``.
        bits: 1..8.
    Returns:
        int64 tensor like ``codes`` with values in ``[0, 2^bits)``.
    Raises:
        ValueError: a code outside the symmetric grid.
    """
    c = _check_integer_codes(codes, bits)
    if bits == 1:
        if not bool(((c == 1) | (c == -1)).all()):
            raise ValueError("1-bit codes must be -1 or 1")
        return (c + 1) // 2
    q = quant_levels(bits)
    if c.numel() and int(c.abs().max()) > q:
        raise ValueError(
            f"{bits}-bit symmetric codes must lie in [-{q}, {q}], "
            f"got values in [{int(c.min())}, {int(c.max())}]"
        )
    return c + q


def unoffset_codes(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Inverse of ``offset_codes``: unsigned codes back to ``-Q..Q`` (``{-1, 1}`` for 1 bit).

    Args:
        codes: any shape, integer dtype, values in ``[0, 2Q]`` (``{0, 1}`` for 1 bit).
        bits: 1..8.
    Returns:
        int64 tensor like ``codes``.
    Raises:
        ValueError: a code that ``offset_codes`` cannot have produced.
    """
    c = _check_integer_codes(codes, bits)
    top = 1 if bits == 1 else 2 * quant_levels(bits)
    if c.numel() and (int(c.min()) < 0 or int(c.max()) > top):
        raise ValueError(
            f"offset {bits}-bit codes must lie in [0, {top}], got values in [{int(c.min())}, {int(c.max())}]"
        )
    return 2 * c - 1 if bits == 1 else c - quant_levels(bits)


# --------------------------------------------------------------------------- granularity


def flat_rows(weight: torch.Tensor) -> torch.Tensor:
    """(C_out, ...) weight as (C_out, fan_in): one row per output channel."""
    return weight.reshape(weight.shape[0], -1)


def step_shape(weight_shape: Tuple[int, ...], cfg: QuantConfig) -> Tuple[int, ...]:
    """Shape of a layer's step tensor for one bit-width: (), (C_out,) or (C_out, groups)."""
    if cfg.granularity == "tensor":
        return ()
    out = weight_shape[0]
    if cfg.granularity == "channel":
        return (out,)
    fan_in = math.prod(weight_shape[1:])
    return (out, math.ceil(fan_in / cfg.group_size))


def grouped(weight: torch.Tensor, group_size: int) -> torch.Tensor:
    """(C_out, ...) -> (C_out, G, group_size), zero-padding the last group of each row."""
    rows = flat_rows(weight)
    pad = (-rows.shape[1]) % group_size
    if pad:
        rows = F.pad(rows, (0, pad))
    return rows.view(rows.shape[0], -1, group_size)


def ungrouped(values: torch.Tensor, weight_shape: torch.Size) -> torch.Tensor:
    """Inverse of ``grouped``: drop the padding and restore ``weight_shape``."""
    fan_in = math.prod(weight_shape[1:])
    return values.reshape(values.shape[0], -1)[:, :fan_in].reshape(weight_shape)


def slice_steps(
    step: torch.Tensor, cfg: QuantConfig, out_units: Optional[int], in_units: Optional[int]
) -> torch.Tensor:
    """The steps of the prefix slice ``weight[:out_units, :in_units]``."""
    if cfg.granularity == "tensor":
        return step
    if out_units is not None:
        step = step[:out_units]
    if cfg.granularity == "group" and in_units is not None:
        step = step[:, : math.ceil(in_units / cfg.group_size)]
    return step


def init_lsq_step(weight: torch.Tensor, bits: int, cfg: QuantConfig) -> torch.Tensor:
    """LSQ's initial step ``2 mean|w| / sqrt(Q)`` (1 bit: ``mean|w|``) per step's share of ``weight``."""
    w = weight.detach().abs()
    if cfg.granularity == "tensor":
        mean_abs = w.mean()
    elif cfg.granularity == "channel":
        mean_abs = flat_rows(w).mean(dim=1)
    else:
        g = grouped(w, cfg.group_size)
        counts = grouped(torch.ones_like(w), cfg.group_size).sum(-1)  # padding excluded
        mean_abs = g.sum(-1) / counts
    mean_abs = mean_abs.clamp(min=1e-8)
    return mean_abs if bits == 1 else 2.0 * mean_abs / math.sqrt(quant_levels(bits))


def broadcast_step(step: torch.Tensor, weight: torch.Tensor, cfg: QuantConfig) -> torch.Tensor:
    """``step`` shaped to broadcast against ``weight`` (channel) or ``grouped(weight)`` (group)."""
    if cfg.granularity == "channel":
        return step.view(-1, *([1] * (weight.dim() - 1)))
    if cfg.granularity == "group":
        return step.unsqueeze(-1)
    return step


# --------------------------------------------------------------------------- the quantizer


@register_quantizer("lsq")
class LSQQuantizer(Quantizer):
    """LSQ steps per bit-width: ``steps.b<bits>`` of shape ``step_shape(weight_shape, cfg)``."""

    state_name = "steps"
    side_names = ("scale",)

    @classmethod
    def state_shape(cls, weight_shape: Tuple[int, ...], bits: int, cfg: QuantConfig) -> Tuple[int, ...]:
        return step_shape(weight_shape, cfg)

    @torch.no_grad()
    def init_from(self, weight: torch.Tensor) -> None:
        for key, step in self.items():
            step.copy_(init_lsq_step(weight, int(key[1:]), self.cfg))

    def _step(self, bits: int, out_units: Optional[int], in_units: Optional[int]) -> torch.Tensor:
        # abs and clamp: an optimizer step may push a step through zero
        return slice_steps(self[f"b{bits}"], self.cfg, out_units, in_units).abs().clamp(min=1e-8)

    def fake_quant(
        self,
        w: torch.Tensor,
        bits: int,
        out_units: Optional[int] = None,
        in_units: Optional[int] = None,
        *,
        annealing: Annealing,
    ) -> torch.Tensor:
        cfg = self.cfg
        step = self._step(bits, out_units, in_units)
        if cfg.granularity == "group":
            # gradient scale from the real weights per group (padding excluded)
            per_step = w.numel() / step.numel()
            q = lsq_fake_quant(grouped(w, cfg.group_size), broadcast_step(step, w, cfg), bits, per_step)
            return ungrouped(q, w.shape)
        return lsq_fake_quant(w, broadcast_step(step, w, cfg), bits)

    def codes(
        self, w: torch.Tensor, bits: int, out_units: Optional[int] = None, in_units: Optional[int] = None
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        cfg = self.cfg
        step = self._step(bits, out_units, in_units).detach()
        if cfg.granularity == "group":
            signed = ungrouped(
                lsq_codes(grouped(w, cfg.group_size), broadcast_step(step, w, cfg), bits), w.shape
            )
        else:
            signed = lsq_codes(w, broadcast_step(step, w, cfg), bits)
        return offset_codes(signed, bits), {"scale": step.float()}

    def storage_bits(
        self, numel: int, bits: int, out_units: Optional[int] = None, in_units: Optional[int] = None
    ) -> int:
        steps = slice_steps(self[f"b{bits}"], self.cfg, out_units, in_units).numel()
        return numel * bits + steps * FLOAT_BITS

    @classmethod
    def decode(
        cls, codes: torch.Tensor, bits: int, side: Dict[str, torch.Tensor], cfg: QuantConfig
    ) -> torch.Tensor:
        values = unoffset_codes(codes, bits).float()
        step = side["scale"]
        if cfg.granularity == "group":
            return ungrouped(
                grouped(values, cfg.group_size) * broadcast_step(step, values, cfg), values.shape
            )
        return values * broadcast_step(step, values, cfg)
