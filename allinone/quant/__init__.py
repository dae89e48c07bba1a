"""Weight quantizers and the layers that apply them per subnet."""

from allinone.quant.layers import QUANT_BITS, QConv1d, QConv2d, QLinear, reset_quant_steps
from allinone.quant.lsq import lsq_codes, lsq_fake_quant, quant_levels

__all__ = [
    "QUANT_BITS",
    "QConv1d",
    "QConv2d",
    "QLinear",
    "lsq_codes",
    "lsq_fake_quant",
    "quant_levels",
    "reset_quant_steps",
]
