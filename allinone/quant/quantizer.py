"""How a layer's weights are quantized: one config, one set of functions every layer uses.

``QuantConfig`` decides the method and granularity for every quantized layer of a model
(torchao-style: the float model stays the source of truth, ``configure_quantizers``
applies the config once):

- ``lsq`` (uniform, ``allinone.quant.lsq``): a learnable step per bit-width at
  ``tensor`` (one step), ``channel`` (one per output channel) or ``group`` (one per
  ``group_size`` consecutive input entries of each output channel, over the flattened
  input and kernel dimensions) granularity.
- ``gq`` (``allinone.quant.gq``): per-tensor mu-law companded, learnable centroids per
  bit-width; the softmax sharpness comes from the layer's annealing state.
- ``mixed_candidates`` (one-stage mixed precision, ``allinone.quant.mixed``): every layer
  also holds architecture logits over the candidate bit-widths and, once finalised, its
  chosen bit-width.

Slicing (``out_units``/``in_units``) selects a prefix of output rows or input columns,
as the nested FFN widths need; the matching prefix of steps is used, so a slice of a
quantized tensor equals the quantized slice.
"""

import math
from dataclasses import asdict, dataclass
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from allinone.quant.lsq import quant_levels

METHODS = ("lsq", "gq")
GRANULARITIES = ("tensor", "channel", "group")


@dataclass(frozen=True)
class QuantConfig:
    """Quantizer choice shared by every quantized layer of a model.

    Args:
        method: "lsq" (uniform, learned step) or "gq" (general quantizer).
        granularity: LSQ step sharing: "tensor", "channel" or "group" (GQ: "tensor" only).
        group_size: input entries per step with "group" granularity.
        mu: GQ companding strength.
        mixed_candidates: bit-widths of one-stage mixed precision (empty = off).
    """

    method: str = "lsq"
    granularity: str = "tensor"
    group_size: int = 32
    mu: float = 255.0
    mixed_candidates: Tuple[int, ...] = ()

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown quantizer {self.method!r}; valid: {METHODS}")
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"unknown granularity {self.granularity!r}; valid: {GRANULARITIES}")
        if self.method == "gq" and self.granularity != "tensor":
            raise ValueError("the general quantizer is per tensor; use --quant-granularity tensor")
        if self.group_size < 1:
            raise ValueError(f"group_size must be >= 1, got {self.group_size}")
        cands = tuple(sorted(int(b) for b in self.mixed_candidates))
        bad = [b for b in cands if not 1 <= b <= 8 or b == 7]
        if bad:
            raise ValueError(f"mixed-precision candidates {bad} are not quantizer bit-widths (1-6, 8)")
        object.__setattr__(self, "mixed_candidates", cands)

    def to_dict(self) -> dict:
        return asdict(self)


def flat_rows(weight: torch.Tensor) -> torch.Tensor:
    """(C_out, ...) weight as (C_out, fan_in): one row per output channel."""
    return weight.reshape(weight.shape[0], -1)


def step_shape(weight_shape: Tuple[int, ...], cfg: QuantConfig) -> Tuple[int, ...]:
    """Shape of a layer's step tensor for one bit-width."""
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


def slice_steps(step: torch.Tensor, cfg: QuantConfig, out_units: Optional[int], in_units: Optional[int]):
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
