"""Weight-quantization primitives: the quantizer interface with its LSQ and GQ
implementations, annealing values, the Q-layers that apply them per subnet, mixed-precision
bit maps and the bit-packed file format.

Nothing here imports the model (``allinone.nn``) or what sits above it; model-level tools
(size accounting, subnet export, int8 PTQ) live in ``allinone.deploy``.
"""

# Importing the implementations registers them ("lsq", "gq") for ``QuantConfig.method``.
from allinone.quant import gq, lsq  # noqa: F401
from allinone.quant.annealing import Annealing, AnnealingSchedule, GQSchedule, TauSchedule
from allinone.quant.layers import QUANT_BITS, QConv1d, QConv2d, QLinear, reset_quant_steps
from allinone.quant.lsq import lsq_codes, lsq_fake_quant, quant_levels
from allinone.quant.quantizer import QuantConfig, Quantizer, make_quantizer

__all__ = [
    "QUANT_BITS",
    "Annealing",
    "AnnealingSchedule",
    "GQSchedule",
    "QConv1d",
    "QConv2d",
    "QLinear",
    "QuantConfig",
    "Quantizer",
    "TauSchedule",
    "lsq_codes",
    "lsq_fake_quant",
    "make_quantizer",
    "quant_levels",
    "reset_quant_steps",
]
