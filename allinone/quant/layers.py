"""Linear and convolution layers that keep float master weights and quantize on the fly.

Each layer owns one learnable step per supported bit-width, so every subnet of a nested
model quantizes the same float weight with its own scale. ``bits=32`` bypasses
quantization entirely: the float model is exactly the unquantized network.
"""

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from allinone.quant.lsq import init_step, lsq_fake_quant
from allinone.subnet import FLOAT_BITS, SUPPORTED_BITS

QUANT_BITS = tuple(b for b in SUPPORTED_BITS if b < FLOAT_BITS)


class QuantizedWeightMixin:
    """Adds ``steps`` (one scalar per bit-width) and ``quantized_weight`` to a layer with ``weight``."""

    def _add_steps(self) -> None:
        self.steps = nn.ParameterDict({f"b{b}": nn.Parameter(torch.ones(())) for b in QUANT_BITS})
        self.reset_steps()

    @torch.no_grad()
    def reset_steps(self) -> None:
        """Re-initialise every step from the current float weight (LSQ's initialisation)."""
        for b in QUANT_BITS:
            self.steps[f"b{b}"].copy_(init_step(self.weight, b))

    def step_for(self, bits: int) -> torch.Tensor:
        return self.steps[f"b{bits}"]

    def quantized_weight(self, bits: int = FLOAT_BITS, weight: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The weight (or a slice of it, ``weight``) as a ``bits``-bit subnet sees it.

        Slicing before quantizing gives the same values as quantizing then slicing: the
        quantizer is element-wise for a given step.
        """
        w = self.weight if weight is None else weight
        if bits == FLOAT_BITS:
            return w
        return lsq_fake_quant(w, self.step_for(bits).abs().clamp(min=1e-8), bits)


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


def reset_quant_steps(model: nn.Module) -> None:
    """Initialise every quantizer step from its layer's current weight (e.g. after loading float weights)."""
    for m in model.modules():
        if isinstance(m, QUANT_LAYERS):
            m.reset_steps()
