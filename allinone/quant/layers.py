"""Linear and convolution layers that keep float master weights and quantize on the fly.

Each layer holds one ``Quantizer`` (``allinone.quant.quantizer``; chosen once from the
model's ``QuantConfig``) with state for every supported bit-width, so every subnet of a
nested model quantizes the same float weight with its own scale or codebook. The layer
only slices its weight and calls the quantizer; it never asks which method it runs.
``bits=32`` bypasses quantization entirely: the float model is exactly the unquantized
network. ``bits=MIXED_BITS`` lets each layer use its own bit-width: the Gumbel-softmax
blend of its candidates while one-stage mixed precision searches, its finalised choice
afterwards.

Annealing (GQ sharpness, Gumbel temperature) arrives with each call as an ``Annealing``
value (``allinone.quant.annealing``); ``None`` is the deployed behaviour in evaluation
mode and ``TRAINING_DEFAULT`` in training mode.
"""

from dataclasses import replace
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from allinone.quant.annealing import TRAINING_DEFAULT, Annealing
from allinone.quant.quantizer import QUANT_BITS, QuantConfig, Quantizer, make_quantizer
from allinone.subnet import FLOAT_BITS, MIXED_BITS
from allinone.utils.device import float32_region

__all__ = [
    "QUANT_BITS",
    "QUANT_LAYERS",
    "QConv1d",
    "QConv2d",
    "QLinear",
    "configure_quantizers",
    "quant_layers",
    "reset_quant_steps",
    "run_at_bits",
]


class QuantizedWeightMixin:
    """Quantizer, mixed-precision state and ``quantized_weight`` for a layer with a ``weight``.

    State-dict entries: ``steps.b<bits>`` or ``centroids.b<bits>`` (the quantizer), and with
    mixed-precision candidates ``mp_logits`` (architecture logits, (num_candidates,)) and
    ``mp_bits`` (the finalised bit-width, 0 while searching).
    """

    def _add_steps(self) -> None:
        self.configure_quantizer(QuantConfig())

    def configure_quantizer(self, cfg: QuantConfig) -> None:
        """(Re)create the quantizer and mixed-precision state for ``cfg``, initialised from the weight."""
        if getattr(self, "_quantizer_name", None):
            delattr(self, self._quantizer_name)
        for name in ("mp_logits", "mp_bits"):
            if hasattr(self, name):
                delattr(self, name)
        quantizer = make_quantizer(tuple(self.weight.shape), cfg)
        # Registered under the implementation's own name (not "quantizer") so that the
        # state-dict keys stay "<layer>.steps.b4" / "<layer>.centroids.b4".
        self._quantizer_name = quantizer.state_name
        self.add_module(quantizer.state_name, quantizer)
        if cfg.mixed_candidates:
            self.mp_logits = nn.Parameter(torch.zeros(len(cfg.mixed_candidates)))
            self.register_buffer("mp_bits", torch.tensor(0))  # finalised bit-width, 0 = searching
        self.reset_steps()

    @property
    def quantizer(self) -> Quantizer:
        return self._modules[self._quantizer_name]

    @property
    def quant_cfg(self) -> QuantConfig:
        return self.quantizer.cfg

    @torch.no_grad()
    def reset_steps(self) -> None:
        """Re-initialise the quantizer from the current float weight (LSQ steps, GQ quantiles)."""
        self.quantizer.init_from(self.weight)

    # ------------------------------------------------------------------ mixed precision
    def chosen_bits(self) -> int:
        """Bit-width the layer runs at under ``MIXED_BITS``: finalised, else (evaluating) the argmax."""
        if not self.quant_cfg.mixed_candidates:
            raise ValueError("this layer has no mixed-precision candidates (train with --mp-candidates)")
        if int(self.mp_bits) > 0:
            return int(self.mp_bits)
        return self.quant_cfg.mixed_candidates[int(self.mp_logits.argmax())]

    def _blend(self, w: torch.Tensor, out_units, in_units, annealing: Annealing) -> torch.Tensor:
        """Gumbel-softmax mixture of the candidate quantizations: one weight, one matmul."""
        probs = F.gumbel_softmax(self.mp_logits, tau=annealing.mp_tau, hard=False)
        out = 0.0
        for p, b in zip(probs, self.quant_cfg.mixed_candidates):
            out = out + p * self.quantizer.fake_quant(w, b, out_units, in_units, annealing=annealing)
        return out

    # ------------------------------------------------------------------ the quantized weight
    def slice_weight(self, out_units: Optional[int] = None, in_units: Optional[int] = None) -> torch.Tensor:
        """``weight[:out_units, :in_units]`` (None = all rows / columns)."""
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

    def effective_annealing(self, annealing: Optional[Annealing]) -> Annealing:
        """The annealing a call runs with: evaluation is always hard GQ (deployed behaviour)."""
        annealing = TRAINING_DEFAULT if annealing is None else annealing
        if not self.training and not annealing.gq_hard:
            annealing = replace(annealing, gq_hard=True)
        return annealing

    def quantized_weight(
        self,
        bits: int = FLOAT_BITS,
        out_units: Optional[int] = None,
        in_units: Optional[int] = None,
        annealing: Optional[Annealing] = None,
    ) -> torch.Tensor:
        """The weight (or its prefix slice) as a ``bits``-bit subnet sees it.

        Args:
            bits: 1..8, 32 (float) or ``MIXED_BITS``.
            out_units: use only the first rows (output units).
            in_units: use only the first columns (input units).
            annealing: GQ sharpness and Gumbel temperature of this step (see module doc).
        Returns:
            ``weight[:out_units, :in_units]`` quantized; slicing commutes with quantizing.
        """
        w = self.slice_weight(out_units, in_units)
        if bits == FLOAT_BITS:
            return w
        concrete = self.resolve_bits(bits)
        annealing = self.effective_annealing(annealing)
        if concrete == FLOAT_BITS:
            return w
        # Quantization runs in float32 under autocast: step sizes, GQ's softmax over
        # centroids and the Gumbel-softmax bit choice need more than half precision's
        # 11 significant bits (an 8-bit grid plus its gradient leaves none to spare).
        with float32_region(w.device.type):
            if concrete is None:
                return self._blend(w, out_units, in_units, annealing)
            return self.quantizer.fake_quant(w, concrete, out_units, in_units, annealing=annealing)

    def weight_storage_bits(self, bits: int, out_units=None, in_units=None) -> int:
        """Bits to store the (sliced) weight at ``bits``: codes plus scales or codebook."""
        numel = self.slice_weight(out_units, in_units).numel()
        if bits == MIXED_BITS:
            bits = self.chosen_bits()
        if bits == FLOAT_BITS:
            return numel * FLOAT_BITS
        return self.quantizer.storage_bits(numel, bits, out_units, in_units)


class QLinear(nn.Linear, QuantizedWeightMixin):
    """``nn.Linear`` whose forward takes the bit-width of the calling subnet."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__(in_features, out_features, bias)
        self._add_steps()

    def forward(
        self, x: torch.Tensor, bits: int = FLOAT_BITS, annealing: Optional[Annealing] = None
    ) -> torch.Tensor:
        """x: (..., in_features) -> (..., out_features)."""
        return F.linear(x, self.quantized_weight(bits, annealing=annealing), self.bias)


class _QConvMixin(QuantizedWeightMixin):
    """Forward of a quantized ``nn.Conv1d``/``nn.Conv2d``: x (N, C_in, *spatial) -> (N, C_out, *spatial')."""

    def forward(
        self, x: torch.Tensor, bits: int = FLOAT_BITS, annealing: Optional[Annealing] = None
    ) -> torch.Tensor:
        return self._conv_forward(x, self.quantized_weight(bits, annealing=annealing), self.bias)


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


def run_at_bits(
    layer: nn.Module, x: torch.Tensor, bits: int, annealing: Optional[Annealing] = None
) -> torch.Tensor:
    """``layer(x)``, at ``bits`` if the layer quantizes its weight (a float layer ignores both)."""
    return layer(x, bits, annealing) if isinstance(layer, QUANT_LAYERS) else layer(x)


def quant_layers(model: nn.Module) -> List[Tuple[str, nn.Module]]:
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
