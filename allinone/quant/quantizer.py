"""The quantizer interface, its registry, and the config that picks an implementation.

``QuantConfig`` decides how every quantized layer of a model quantizes its weight
(torchao-style: the float model stays the source of truth, ``configure_quantizers``
applies the config once). Its ``method`` names a registered ``Quantizer``
implementation; ``make_quantizer`` builds it, and from then on every layer calls its
quantizer through the interface below, never by asking which method it is:

- ``lsq`` (``allinone.quant.lsq.LSQQuantizer``): uniform, a learnable step per bit-width
  at ``tensor``, ``channel`` or ``group`` granularity.
- ``gq`` (``allinone.quant.gq.GQQuantizer``): per-tensor mu-law companded, learnable
  centroids per bit-width; the softmax sharpness comes from the ``Annealing`` passed in.

``mixed_candidates`` (one-stage mixed precision) is independent of the method: the layer
(``allinone.quant.layers``) blends its quantizer's outputs at several bit-widths.

A quantizer holds one state tensor per supported bit-width (``b1`` .. ``b8``) and is
registered in its layer under ``state_name``, so the state-dict keys are
``<layer>.steps.b4`` (LSQ) or ``<layer>.centroids.b4`` (GQ).
"""

import abc
from dataclasses import asdict, dataclass
from typing import Callable, ClassVar, Dict, Iterable, Optional, Tuple, Type

import torch
import torch.nn as nn

from allinone.quant.annealing import Annealing
from allinone.subnet import FLOAT_BITS, SUPPORTED_BITS

# Every bit-width a quantizer keeps state for (subnets pick one of them per call).
QUANT_BITS = tuple(b for b in SUPPORTED_BITS if 0 < b < FLOAT_BITS)
GRANULARITIES = ("tensor", "channel", "group")

_REGISTRY: Dict[str, Type["Quantizer"]] = {}


@dataclass(frozen=True)
class QuantConfig:
    """Quantizer choice shared by every quantized layer of a model.

    Args:
        method: name of a registered quantizer: "lsq" (uniform, learned step) or "gq"
            (general quantizer).
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
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"unknown granularity {self.granularity!r}; valid: {GRANULARITIES}")
        if self.group_size < 1:
            raise ValueError(f"group_size must be >= 1, got {self.group_size}")
        quantizer_class(self.method).check_config(self)
        cands = tuple(sorted(int(b) for b in self.mixed_candidates))
        bad = [b for b in cands if not 1 <= b <= 8 or b == 7]
        if bad:
            raise ValueError(f"mixed-precision candidates {bad} are not quantizer bit-widths (1-6, 8)")
        object.__setattr__(self, "mixed_candidates", cands)

    def to_dict(self) -> dict:
        return asdict(self)


class Quantizer(nn.ParameterDict, abc.ABC):
    """One layer's weight quantizer at every bit-width of ``QUANT_BITS``.

    It is a ``ParameterDict`` of its learnable state, one tensor per bit-width keyed
    ``b<bits>`` (LSQ steps, GQ centroids), so ``layer.steps["b4"]`` reads as before. Weights
    are passed in, never held: a slice of the layer's weight (the nested FFN widths) is
    quantized with the matching slice of the state.

    Subclasses set ``state_name`` (the layer attribute they live under) and
    ``side_names`` (the float arrays ``codes`` returns beside the integer codes; with
    ``optional_side_names``, those present only at some granularities), and register with
    ``register_quantizer``.

    Args:
        weight_shape: shape of the layer's weight, (C_out, C_in, *kernel).
        cfg: the model's quantizer config.
    """

    name: ClassVar[str] = ""
    state_name: ClassVar[str] = ""
    side_names: ClassVar[Tuple[str, ...]] = ()
    optional_side_names: ClassVar[Tuple[str, ...]] = ()

    def __init__(self, weight_shape: Tuple[int, ...], cfg: QuantConfig):
        super().__init__(
            {f"b{b}": nn.Parameter(torch.zeros(self.state_shape(weight_shape, b, cfg))) for b in QUANT_BITS}
        )
        self.cfg = cfg
        self.weight_shape = tuple(weight_shape)

    @classmethod
    def check_config(cls, cfg: QuantConfig) -> None:
        """Raise ValueError if ``cfg`` asks for something this quantizer cannot do."""

    @classmethod
    @abc.abstractmethod
    def state_shape(cls, weight_shape: Tuple[int, ...], bits: int, cfg: QuantConfig) -> Tuple[int, ...]:
        """Shape of the learnable state at ``bits`` for a weight of ``weight_shape``."""

    @abc.abstractmethod
    def init_from(self, weight: torch.Tensor) -> None:
        """Initialise the state of every bit-width from the float ``weight`` (C_out, ...)."""

    @abc.abstractmethod
    def fake_quant(
        self,
        w: torch.Tensor,
        bits: int,
        out_units: Optional[int] = None,
        in_units: Optional[int] = None,
        *,
        annealing: Annealing,
    ) -> torch.Tensor:
        """Quantize-dequantize ``w`` at ``bits``, differentiably.

        Args:
            w: ``weight[:out_units, :in_units]`` of the layer (C_out', C_in', *kernel).
            bits: 1..8.
            out_units, in_units: the slice ``w`` is (None = all), to pick the state's slice.
            annealing: the effective annealing state (evaluation already made hard).
        Returns:
            tensor like ``w``.
        """

    @abc.abstractmethod
    def codes(
        self, w: torch.Tensor, bits: int, out_units: Optional[int] = None, in_units: Optional[int] = None
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """The deployable form of ``fake_quant``'s (hard) value of ``w`` at ``bits``.

        Returns:
            codes: integer tensor shaped like ``w``, values in ``[0, 2^bits)``.
            side: name (``side_names``) -> float tensor stored beside the codes, such that
                ``decode(codes, bits, side, cfg)`` equals the hard fake-quantized ``w``.
        """

    @abc.abstractmethod
    def storage_bits(
        self, numel: int, bits: int, out_units: Optional[int] = None, in_units: Optional[int] = None
    ) -> int:
        """Bits that ``numel`` weights of the slice take at ``bits``: codes plus side arrays."""

    @classmethod
    @abc.abstractmethod
    def decode(
        cls, codes: torch.Tensor, bits: int, side: Dict[str, torch.Tensor], cfg: QuantConfig
    ) -> torch.Tensor:
        """Float weight (shaped like ``codes``) from what ``codes`` returned."""

    def extra_repr(self) -> str:
        return f"{self.name}, bits={QUANT_BITS}"


def register_quantizer(name: str) -> Callable[[Type[Quantizer]], Type[Quantizer]]:
    """Class decorator: make ``QuantConfig(method=name)`` build this implementation."""

    def register(cls: Type[Quantizer]) -> Type[Quantizer]:
        if name in _REGISTRY:
            raise ValueError(f"quantizer {name!r} is registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return register


def quantizer_names() -> Tuple[str, ...]:
    """The ``method`` values ``QuantConfig`` accepts."""
    return tuple(_REGISTRY)


def quantizer_class(name: str) -> Type[Quantizer]:
    """The registered implementation called ``name``."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown quantizer {name!r}; valid: {quantizer_names()}")
    return _REGISTRY[name]


def make_quantizer(weight_shape: Tuple[int, ...], cfg: QuantConfig) -> Quantizer:
    """A fresh (uninitialised) quantizer of ``cfg.method`` for a weight of ``weight_shape``."""
    return quantizer_class(cfg.method)(tuple(weight_shape), cfg)


def quantizer_for_side(side_names: Iterable[str]) -> Type[Quantizer]:
    """The implementation whose ``codes`` store exactly the side arrays ``side_names``."""
    names = set(side_names)
    for cls in _REGISTRY.values():
        required = set(cls.side_names)
        if required <= names and names - required <= set(cls.optional_side_names):
            return cls
    raise ValueError(f"no quantizer stores the side arrays {list(names)}")
