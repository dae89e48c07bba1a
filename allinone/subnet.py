"""Sub-network selection passed explicitly down the model (no global state).

A ``SubnetConfig`` names one system inside a nested model: how many encoder layers run,
how many FFN hidden units each layer uses, and at which bit-width each class of encoder
weights is quantized. Every config has a stable short name that parses back to it:

    d12-w1.0-b32        12 layers, full FFN width, float weights
    d8-w0.5-b4          8 layers, half the FFN units, 4-bit weights
    d6-w0.5_0.5_1_1_1_1-b4_attn8
                        per-layer FFN widths; 4 bits except attention at 8 bits
    d6-w1.0-b2_head8    2-bit encoder; decoder, joiner and CTC head at 8 bits (a model
                        with quantized heads; without them the heads are always float)

Grammar (tokens joined by "-"):
    d<int>              encoder depth (layers 1..d run)
    w<r>[_<r>...]       FFN width ratio, one value for all layers or one per layer
    b<bits>[_<cls><bits>...]
                        default bit-width of quantized encoder weights (and of the
                        heads, in a model built with quantized heads), then per-class
                        overrides; classes are ``QUANT_CLASSES``
    u<order> | u<i>[_<i>...]
                        weight-tied unfolding (``allinone.unfold``): "rep" or "cyc" order,
                        or the physical block of every logical layer; the depth ``d`` is
                        then the logical depth and may exceed the number of blocks

    d12-w1.0-b32-urep   6 physical blocks each run twice in a row as a 12-layer model
"""

import re
from dataclasses import dataclass, field, replace
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

from allinone.unfold import SCHEDULE_ORDERS, Schedule, ScheduleSpec, resolve_schedule

FLOAT_BITS = 32
# "bmix": every layer at its own bit-width, learned by one-stage mixed precision
# (``allinone.quant.mixed``) or fixed by a bit map.
MIXED_BITS = 0
SUPPORTED_BITS = (1, 2, 3, 4, 5, 6, 8, FLOAT_BITS, MIXED_BITS)
# Weight groups that can take their own bit-width: the encoder's (the Conformer's FFN,
# attention and convolution modules, or the LSTM encoder's matrices, "rnn"), and "head"
# (the decoder's context convolution, the joiner and the CTC output layer), which only a
# model built with quantized heads (ModelConfig.quantize_heads) quantizes; other models
# keep them float.
QUANT_CLASSES = ("subsampling", "ffn", "attn", "conv", "rnn", "head")
HEAD_CLASS = "head"


class SubnetError(ValueError):
    """A subnet name or config that is malformed or impossible for a model."""


def _fmt_bits(b: int) -> str:
    return "mix" if b == MIXED_BITS else str(b)


def _parse_bits(text: str) -> int:
    return MIXED_BITS if text == "mix" else int(text)


def _fmt_ratio(r: float) -> str:
    return f"{r:g}" if r != 1.0 else "1.0"


@dataclass(frozen=True)
class SubnetConfig:
    """One system of the nested model.

    Args:
        depth: encoder layers to run (1..depth); None = every layer of the model.
        ffn_ratio: FFN width fraction in (0, 1], one float for all layers or a tuple with
            one entry per layer actually run.
        bits: default bit-width of quantized encoder weights (32 = float, ``MIXED_BITS``
            = each layer's own learned or fixed bit-width).
        class_bits: per-class overrides, as sorted ``(class, bits)`` pairs.
        unfold: weight-tied unfolding: an order ("rep", "cyc") or the physical block of
            every logical layer (``allinone.unfold``); None = layer i runs block i.
    """

    depth: Optional[int] = None
    ffn_ratio: Union[float, Tuple[float, ...]] = 1.0
    bits: int = FLOAT_BITS
    class_bits: Tuple[Tuple[str, int], ...] = field(default_factory=tuple)
    unfold: Optional[ScheduleSpec] = None

    def __post_init__(self):
        if self.depth is not None and self.depth < 1:
            raise SubnetError(f"depth must be >= 1, got {self.depth}")
        ratios = self.ffn_ratio if isinstance(self.ffn_ratio, tuple) else (self.ffn_ratio,)
        for r in ratios:
            if not 0.0 < r <= 1.0:
                raise SubnetError(f"FFN width ratio must be in (0, 1], got {r}")
        if isinstance(self.ffn_ratio, tuple) and self.depth is not None and len(self.ffn_ratio) != self.depth:
            raise SubnetError(f"{len(self.ffn_ratio)} per-layer FFN widths given for depth {self.depth}")
        for cls, b in ((None, self.bits),) + tuple(self.class_bits):
            if cls is not None and cls not in QUANT_CLASSES:
                raise SubnetError(f"unknown weight class {cls!r}; valid: {QUANT_CLASSES}")
            if b not in SUPPORTED_BITS:
                raise SubnetError(f"unsupported bit-width {b}; valid: {SUPPORTED_BITS}")
        object.__setattr__(self, "class_bits", tuple(sorted(dict(self.class_bits).items())))
        if isinstance(self.unfold, str):
            if self.unfold not in SCHEDULE_ORDERS:
                raise SubnetError(f"unknown unfolding order {self.unfold!r}; valid: {SCHEDULE_ORDERS}")
        elif self.unfold is not None:
            unfold = tuple(int(i) for i in self.unfold)
            if not unfold or min(unfold) < 0:
                raise SubnetError(f"an unfolding schedule lists block indices >= 0, got {self.unfold}")
            if self.depth is not None and len(unfold) != self.depth:
                raise SubnetError(
                    f"unfolding schedule {unfold} has {len(unfold)} layers for depth {self.depth}"
                )
            object.__setattr__(self, "unfold", unfold)

    # ------------------------------------------------------------------ queries
    def layer_ratio(self, layer: int) -> float:
        """FFN width ratio of 0-based ``layer``."""
        if isinstance(self.ffn_ratio, tuple):
            return self.ffn_ratio[layer]
        return self.ffn_ratio

    def bits_for(self, cls: str) -> int:
        """Bit-width of weight class ``cls`` (one of ``QUANT_CLASSES``)."""
        return dict(self.class_bits).get(cls, self.bits)

    @property
    def is_float(self) -> bool:
        return all(self.bits_for(c) == FLOAT_BITS for c in QUANT_CLASSES)

    def resolved(self, num_layers: int) -> "SubnetConfig":
        """This config with ``depth`` made concrete, checked against a model of ``num_layers`` blocks."""
        depth = self.depth
        if depth is None:
            depth = len(self.unfold) if isinstance(self.unfold, tuple) else num_layers
        if self.unfold is None and depth > num_layers:
            raise SubnetError(f"subnet {self.name} needs {depth} layers, the model has {num_layers}")
        if isinstance(self.ffn_ratio, tuple) and len(self.ffn_ratio) != depth:
            raise SubnetError(f"{len(self.ffn_ratio)} per-layer FFN widths given for depth {depth}")
        if self.unfold is not None:
            try:
                resolve_schedule(self.unfold, num_layers, depth)
            except ValueError as e:
                raise SubnetError(f"subnet {self.name}: {e}") from None
        return replace(self, depth=depth)

    def schedule(self, num_layers: int) -> Schedule:
        """Physical block of every logical layer this subnet runs, on a model of ``num_layers`` blocks."""
        resolved = self.resolved(num_layers)
        if self.unfold is None:
            return tuple(range(resolved.depth))
        return resolve_schedule(self.unfold, num_layers, resolved.depth)

    # ------------------------------------------------------------------ names
    @property
    def name(self) -> str:
        d = "dall" if self.depth is None else f"d{self.depth}"
        if isinstance(self.ffn_ratio, tuple):
            w = "w" + "_".join(_fmt_ratio(r) for r in self.ffn_ratio)
        else:
            w = "w" + _fmt_ratio(self.ffn_ratio)
        b = f"b{_fmt_bits(self.bits)}" + "".join(
            f"_{c}{_fmt_bits(v)}" for c, v in self.class_bits if v != self.bits
        )
        parts = [d, w, b]
        if isinstance(self.unfold, str):
            parts.append("u" + self.unfold)
        elif self.unfold is not None:
            parts.append("u" + "_".join(str(i) for i in self.unfold))
        return "-".join(parts)

    def __str__(self) -> str:
        return self.name

    @classmethod
    def from_name(cls, name: str) -> "SubnetConfig":
        """Parse a short name such as ``d8-w0.5-b4`` (see the module docstring)."""
        kwargs: Dict = {}
        seen = set()
        for token in name.strip().split("-"):
            if not token:
                raise SubnetError(f"empty field in subnet name {name!r}")
            key, rest = token[0], token[1:]
            if key in seen:
                raise SubnetError(f"field {key!r} repeated in subnet name {name!r}")
            seen.add(key)
            try:
                if key == "d":
                    kwargs["depth"] = None if rest == "all" else int(rest)
                elif key == "w":
                    ratios = tuple(float(r) for r in rest.split("_"))
                    kwargs["ffn_ratio"] = ratios[0] if len(ratios) == 1 else ratios
                elif key == "b":
                    first, *overrides = rest.split("_")
                    kwargs["bits"] = _parse_bits(first)
                    pairs = []
                    for o in overrides:
                        m = re.fullmatch(r"([a-z]+?)(\d+|mix)", o)
                        if not m:
                            raise SubnetError(f"bad bit override {o!r} in {name!r}")
                        pairs.append((m.group(1), _parse_bits(m.group(2))))
                    kwargs["class_bits"] = tuple(pairs)
                elif key == "u":
                    kwargs["unfold"] = rest if rest.isalpha() else tuple(int(i) for i in rest.split("_"))
                else:
                    raise SubnetError(f"unknown field {token!r} in subnet name {name!r}")
            except ValueError as e:
                if isinstance(e, SubnetError):
                    raise
                raise SubnetError(f"cannot parse {token!r} in subnet name {name!r}: {e}") from None
        return cls(**kwargs)


FULL = SubnetConfig()


def full_subnet(num_layers: int) -> SubnetConfig:
    """The largest system of a model with ``num_layers`` encoder layers."""
    return SubnetConfig(depth=num_layers)


def grid(depths: Iterable[int], ratios: Iterable[float], bits: Iterable[int]) -> List[SubnetConfig]:
    """Every combination of depth, uniform FFN width ratio and bit-width, largest first."""
    out = [SubnetConfig(depth=d, ffn_ratio=r, bits=b) for d in depths for r in ratios for b in bits]
    return sorted(out, key=lambda s: (-(s.depth or 0), -s.layer_ratio(0), -s.bits))


def preset_grids(num_layers: int) -> Dict[str, List[SubnetConfig]]:
    """Named grids for a model of ``num_layers`` layers.

    ``default``: depth {full, 2/3, 1/2} x width {1, 0.5} x bits {32, 8, 4, 2} thinned to
    a 10-system grid that still spans each axis and reaches past 12.8x compression (the
    paper's lossless figure) with its two smallest systems; ``depth``, ``width`` and
    ``bits``: one axis each with the others at the full model; ``full``: the whole
    24-system product; ``unfold``: the model as a seed, run weight-tied ("rep" order)
    at 2, 5/3 and 4/3 times its depth, deepest first.
    """
    full, two_thirds, half = num_layers, max(1, round(num_layers * 2 / 3)), max(1, num_layers // 2)
    product = grid([full, two_thirds, half], [1.0, 0.5], [32, 8, 4, 2])
    names = [
        f"d{full}-w1.0-b32", f"d{full}-w1.0-b8", f"d{full}-w1.0-b4", f"d{full}-w1.0-b2",
        f"d{full}-w0.5-b4",
        f"d{two_thirds}-w1.0-b32", f"d{two_thirds}-w0.5-b8", f"d{two_thirds}-w0.5-b2",
        f"d{half}-w1.0-b4", f"d{half}-w0.5-b2",
    ]  # fmt: skip
    return {
        "default": [SubnetConfig.from_name(n) for n in names],
        "depth": [SubnetConfig(depth=d) for d in sorted({full, two_thirds, half}, reverse=True)],
        "width": [SubnetConfig(depth=full, ffn_ratio=r) for r in (1.0, 0.5, 0.25)],
        "bits": [SubnetConfig(depth=full, bits=b) for b in (32, 8, 4, 2)],
        "full": product,
        "unfold": [
            SubnetConfig(depth=d, unfold="rep")
            for d in sorted({2 * full, round(full * 5 / 3), round(full * 4 / 3)}, reverse=True)
            if d > full
        ]
        + [SubnetConfig(depth=full)],
    }


def parse_subnets(spec: str, num_layers: int) -> List[SubnetConfig]:
    """Subnets from ``--subnets``: a preset grid name or comma-separated short names.

    Every subnet is checked against a model of ``num_layers`` layers before anything runs.
    """
    presets = preset_grids(num_layers)
    if spec in presets:
        subnets = presets[spec]
    else:
        subnets = [SubnetConfig.from_name(n) for n in spec.split(",") if n.strip()]
    if not subnets:
        raise SubnetError(f"no subnets in {spec!r}; give names like d6-w0.5-b4 or one of {sorted(presets)}")
    resolved = [s.resolved(num_layers) for s in subnets]
    seen = set()
    for s in resolved:
        if s.name in seen:
            raise SubnetError(f"subnet {s.name} listed twice in {spec!r}")
        seen.add(s.name)
    return resolved


def select_subnets(names: Sequence[str], available: Sequence[SubnetConfig]) -> List[SubnetConfig]:
    """Pick subnets by name from ``available`` ("all" = every one), listing valid names on error."""
    by_name = {s.name: s for s in available}
    if list(names) == ["all"]:
        return list(available)
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise SubnetError(f"unknown subnets {unknown}; this checkpoint holds: {', '.join(by_name)}")
    return [by_name[n] for n in names]
