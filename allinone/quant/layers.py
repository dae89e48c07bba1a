"""Linear and convolution layers that keep float master weights and quantize on the fly.

Each layer owns one quantizer state per supported bit-width (an LSQ step tensor, or GQ
centroids; ``allinone.quant.quantizer``), so every subnet of a nested model quantizes
the same float weight with its own scale. ``bits=32`` bypasses quantization entirely:
the float model is exactly the unquantized network. ``bits=MIXED_BITS`` lets each layer
use its own bit-width: the Gumbel-softmax blend of its candidates while one-stage mixed
precision searches, its finalised choice afterwards.
"""

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from allinone.quant.gq import gq_fake_quant, init_centroids, sorted_centroids
from allinone.quant.lsq import lsq_fake_quant
from allinone.quant.quantizer import (
    QuantConfig,
    broadcast_step,
    grouped,
    init_lsq_step,
    slice_steps,
    step_shape,
    ungrouped,
)
from allinone.subnet import FLOAT_BITS, MIXED_BITS, SUPPORTED_BITS

QUANT_BITS = tuple(b for b in SUPPORTED_BITS if 0 < b < FLOAT_BITS)


class QuantizedWeightMixin:
    """Quantizer state and ``quantized_weight`` for a layer with a ``weight``.

    Annealing state set by the trainer each step (``set_quant_annealing``), not saved:
    ``gq_alpha``/``gq_hard`` (GQ sharpness; evaluation is always hard) and ``mp_tau``
    (Gumbel-softmax temperature; evaluation takes the most likely bit-width).
    """

    def _add_steps(self) -> None:
        self.configure_quantizer(QuantConfig())

    def configure_quantizer(self, cfg: QuantConfig) -> None:
        """(Re)create the quantizer parameters for ``cfg``, initialised from the current weight."""
        self.quant_cfg = cfg
        for name in ("steps", "centroids", "mp_logits", "mp_bits"):
            if hasattr(self, name):
                delattr(self, name)
        if cfg.method == "lsq":
            shape = step_shape(tuple(self.weight.shape), cfg)
            self.steps = nn.ParameterDict({f"b{b}": nn.Parameter(torch.ones(shape)) for b in QUANT_BITS})
        else:
            self.centroids = nn.ParameterDict({f"b{b}": nn.Parameter(torch.zeros(2**b)) for b in QUANT_BITS})
        if cfg.mixed_candidates:
            self.mp_logits = nn.Parameter(torch.zeros(len(cfg.mixed_candidates)))
            self.register_buffer("mp_bits", torch.tensor(0))  # finalised bit-width, 0 = searching
        self.gq_alpha, self.gq_hard, self.mp_tau = 5.0, False, 1.0
        self.reset_steps()

    @torch.no_grad()
    def reset_steps(self) -> None:
        """Re-initialise every quantizer from the current float weight (LSQ steps, GQ quantiles)."""
        cfg = self.quant_cfg
        for b in QUANT_BITS:
            if cfg.method == "lsq":
                self.steps[f"b{b}"].copy_(init_lsq_step(self.weight, b, cfg))
            else:
                self.centroids[f"b{b}"].copy_(init_centroids(self.weight, b, "quantile", cfg.mu))

    def step_for(self, bits: int) -> torch.Tensor:
        return self.steps[f"b{bits}"]

    # ------------------------------------------------------------------ mixed precision
    def chosen_bits(self) -> Optional[int]:
        """Bit-width the layer runs at under ``MIXED_BITS``: finalised, else (evaluating) the argmax."""
        if not self.quant_cfg.mixed_candidates:
            raise ValueError("this layer has no mixed-precision candidates (train with --mp-candidates)")
        if int(self.mp_bits) > 0:
            return int(self.mp_bits)
        return self.quant_cfg.mixed_candidates[int(self.mp_logits.argmax())]

    def _blend(self, w: torch.Tensor, out_units, in_units) -> torch.Tensor:
        """Gumbel-softmax mixture of the candidate quantizations: one weight, one matmul."""
        probs = F.gumbel_softmax(self.mp_logits, tau=self.mp_tau, hard=False)
        out = 0.0
        for p, b in zip(probs, self.quant_cfg.mixed_candidates):
            out = out + p * self.quantize_at(w, b, out_units, in_units)
        return out

    # ------------------------------------------------------------------ the quantized weight
    def slice_weight(self, out_units: Optional[int] = None, in_units: Optional[int] = None) -> torch.Tensor:
        w = self.weight
        if out_units is not None:
            w = w[:out_units]
        if in_units is not None:
            w = w[:, :in_units]
        return w

    def resolve_bits(self, bits: int) -> Optional[int]:
        """The concrete bit-width of a call with ``bits`` (None: mixed-precision blend)."""
        if bits != MIXED_BITS:
            return bits
        if not self.quant_cfg.mixed_candidates:
            raise ValueError("a mixed-precision subnet needs a model trained with --mp-candidates")
        if int(self.mp_bits) > 0 or not self.training:
            return self.chosen_bits()
        return None

    def quantize_at(self, w: torch.Tensor, bits: int, out_units=None, in_units=None) -> torch.Tensor:
        """Fake-quantize the slice ``w`` (of ``out_units`` rows, ``in_units`` columns) at ``bits``."""
        cfg = self.quant_cfg
        if cfg.method == "gq":
            hard = self.gq_hard or not self.training
            return gq_fake_quant(w, sorted_centroids(self.centroids[f"b{bits}"]), self.gq_alpha, hard, cfg.mu)
        step = slice_steps(self.steps[f"b{bits}"], cfg, out_units, in_units).abs().clamp(min=1e-8)
        if cfg.granularity == "group":
            # gradient scale from the real weights per group (padding excluded)
            per_step = w.numel() / step.numel()
            q = lsq_fake_quant(grouped(w, cfg.group_size), broadcast_step(step, w, cfg), bits, per_step)
            return ungrouped(q, w.shape)
        return lsq_fake_quant(w, broadcast_step(step, w, cfg), bits)

    def quantized_weight(
        self, bits: int = FLOAT_BITS, out_units: Optional[int] = None, in_units: Optional[int] = None
    ) -> torch.Tensor:
        """The weight (or its prefix slice) as a ``bits``-bit subnet sees it.

        Args:
            bits: 1..8, 32 (float) or ``MIXED_BITS``.
            out_units: use only the first rows (output units).
            in_units: use only the first columns (input units).
        Returns:
            ``weight[:out_units, :in_units]`` quantized; slicing commutes with quantizing.
        """
        w = self.slice_weight(out_units, in_units)
        if bits == FLOAT_BITS:
            return w
        concrete = self.resolve_bits(bits)
        if concrete is None:
            return self._blend(w, out_units, in_units)
        if concrete == FLOAT_BITS:
            return w
        return self.quantize_at(w, concrete, out_units, in_units)

    def weight_storage_bits(self, bits: int, out_units=None, in_units=None) -> int:
        """Bits to store the (sliced) weight at ``bits``: codes plus scales or codebook."""
        numel = self.slice_weight(out_units, in_units).numel()
        if bits == MIXED_BITS:
            bits = self.chosen_bits()
        if bits == FLOAT_BITS:
            return numel * FLOAT_BITS
        cfg = self.quant_cfg
        if cfg.method == "gq":
            return numel * bits + 2**bits * FLOAT_BITS
        return (
            numel * bits + slice_steps(self.steps[f"b{bits}"], cfg, out_units, in_units).numel() * FLOAT_BITS
        )


class QLinear(nn.Linear, QuantizedWeightMixin):
    """``nn.Linear`` whose forward takes the bit-width of the calling subnet."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__(in_features, out_features, bias)
        self._add_steps()

    def forward(self, x: torch.Tensor, bits: int = FLOAT_BITS) -> torch.Tensor:
        """x: (..., in_features) -> (..., out_features)."""
        return F.linear(x, self.quantized_weight(bits), self.bias)


class _QConvMixin(QuantizedWeightMixin):
    """Forward of a quantized ``nn.Conv1d``/``nn.Conv2d``: x (N, C_in, *spatial) -> (N, C_out, *spatial')."""

    def forward(self, x: torch.Tensor, bits: int = FLOAT_BITS) -> torch.Tensor:
        return self._conv_forward(x, self.quantized_weight(bits), self.bias)


class QConv1d(_QConvMixin, nn.Conv1d):
    """``nn.Conv1d`` whose forward takes the bit-width of the calling subnet."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._add_steps()


class QConv2d(_QConvMixin, nn.Conv2d):
    """``nn.Conv2d`` whose forward takes the bit-width of the calling subnet."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._add_steps()


QUANT_LAYERS = (QLinear, QConv1d, QConv2d)


def run_at_bits(layer: nn.Module, x: torch.Tensor, bits: int) -> torch.Tensor:
    """``layer(x)``, at ``bits`` if the layer quantizes its weight (a float layer ignores ``bits``)."""
    return layer(x, bits) if isinstance(layer, QUANT_LAYERS) else layer(x)


def quant_layers(model: nn.Module):
    """(name, layer) of every quantized layer of ``model``."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, QUANT_LAYERS)]


def configure_quantizers(model: nn.Module, cfg: QuantConfig) -> None:
    """Give every quantized layer of ``model`` the quantizers of ``cfg``."""
    for _, m in quant_layers(model):
        m.configure_quantizer(cfg)


def reset_quant_steps(model: nn.Module) -> None:
    """Initialise every quantizer from its layer's current weight (e.g. after loading float weights)."""
    for _, m in quant_layers(model):
        m.reset_steps()


def set_quant_annealing(
    model: nn.Module,
    gq_alpha: Optional[float] = None,
    gq_hard: Optional[bool] = None,
    mp_tau: Optional[float] = None,
) -> None:
    """Set the annealing state of every quantized layer (None leaves a value unchanged)."""
    for _, m in quant_layers(model):
        if gq_alpha is not None:
            m.gq_alpha = gq_alpha
        if gq_hard is not None:
            m.gq_hard = gq_hard
        if mp_tau is not None:
            m.mp_tau = mp_tau
