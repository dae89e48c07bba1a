"""One-stage mixed precision: per-layer bit-widths learned together with the weights.

Every quantized encoder layer holds architecture logits over candidate bit-widths
(``QuantConfig.mixed_candidates``, default {2, 3, 4, 6, 8}) that share its float weight.
While searching, a subnet with ``bits = MIXED_BITS`` runs each layer with a
Gumbel-softmax blend of its candidate quantizations (one weight, one matmul; the
temperature is annealed, ``allinone.quant.annealing.TauSchedule``). The training loss adds

    penalty_scale * (expected average bits - target)^2,

where the expected bits of a layer are ``softmax(logits) . candidates`` and the average
is weighted by each layer's number of weights, so the bit budget is a model-size
budget. Finalising (``finalise``) turns the logits into a fixed per-layer bit map:

- without a target, each layer's argmax;
- with a target, the argmax moved to the budget (``budgeted_argmax``). The expected
  bits can sit on target while the argmax lands far from it: a layer at probabilities
  (0.48, 0.34, 0.10, 0.04, 0.05) over {2, 3, 4, 6, 8} expects 3.0 bits and its argmax
  is 2 (measured: a search at target 3 whose argmax map averaged 2.01 bits). The
  argmax map is moved one candidate at a time, cheapest log-probability per bit first,
  until its average meets the target, so the logits still decide which layers get
  the bits.

The map is which is saved as JSON; the two-stage baseline loads such a map into
a model retrained from the float weights (``apply_bit_map``).
"""

import json
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn

from allinone.quant.layers import quant_layers

DEFAULT_CANDIDATES = (2, 3, 4, 6, 8)


def mixed_layers(model: nn.Module) -> List[Tuple[str, nn.Module]]:
    """(name, layer) of every encoder layer with mixed-precision candidates, in model order."""
    return [
        (n, m) for n, m in quant_layers(model) if m.quant_cfg.mixed_candidates and n.startswith("encoder.")
    ]


def _require(layers: List) -> None:
    if not layers:
        raise ValueError(
            "the model has no mixed-precision layers: build it with --model mp_candidates=2,3,4,6,8"
        )


def expected_average_bits(model: nn.Module) -> torch.Tensor:
    """Differentiable weight-count-weighted mean of each layer's expected bit-width (scalar)."""
    layers = mixed_layers(model)
    _require(layers)
    total, weights = 0.0, 0
    for _, m in layers:
        cands = torch.tensor(m.quant_cfg.mixed_candidates, dtype=torch.float32, device=m.weight.device)
        total = total + m.weight.numel() * (m.mp_logits.softmax(-1) * cands).sum()
        weights += m.weight.numel()
    return total / weights


def average_bits(model: nn.Module) -> float:
    """Weight-count-weighted mean of the bit-widths the layers run at now (finalised or argmax)."""
    layers = mixed_layers(model)
    _require(layers)
    return sum(m.weight.numel() * m.chosen_bits() for _, m in layers) / sum(
        m.weight.numel() for _, m in layers
    )


def bit_penalty(model: nn.Module, target_bits: float) -> torch.Tensor:
    """Squared distance of the expected average bit-width from ``target_bits`` (scalar)."""
    return (expected_average_bits(model) - target_bits) ** 2


def is_finalised(model: nn.Module) -> bool:
    """Whether every mixed layer runs a fixed bit-width (a finalised search or a loaded map)."""
    layers = mixed_layers(model)
    return bool(layers) and all(int(m.mp_bits) > 0 for _, m in layers)


def bit_map(model: nn.Module) -> Dict[str, int]:
    """Layer name -> the bit-width it runs at (its finalised one, else its argmax)."""
    layers = mixed_layers(model)
    _require(layers)
    return {n: m.chosen_bits() for n, m in layers}


@torch.no_grad()
def apply_bit_map(model: nn.Module, bits: Dict[str, int], source: str = "bit map") -> None:
    """Fix every mixed layer's bit-width from ``bits`` (layer name -> bits).

    Raises:
        ValueError: naming ``source`` when a layer is missing from the map, the map names
            layers the model lacks, or a bit-width is not one of the layer's candidates.
    """
    layers = dict(mixed_layers(model))
    _require(list(layers))
    missing = sorted(set(layers) - set(bits))
    extra = sorted(set(bits) - set(layers))
    if missing or extra:
        raise ValueError(f"{source} does not match the model: missing {missing[:5]}, unknown {extra[:5]}")
    for name, m in layers.items():
        b = int(bits[name])
        if b not in m.quant_cfg.mixed_candidates:
            raise ValueError(
                f"{source}: {name} at {b} bits is not a candidate {m.quant_cfg.mixed_candidates}"
            )
        m.mp_bits.fill_(b)


@torch.no_grad()
def budgeted_argmax(model: nn.Module, target_bits: float) -> Dict[str, int]:
    """The argmax map, moved one candidate at a time towards ``target_bits``.

    Starting from every layer's argmax, each move shifts one layer to its next candidate
    in the direction of the target, choosing the move that costs the least
    log-probability per bit of average moved; moves stop once the average reaches or
    crosses the target, and of the last two maps the one closer to it is returned (ties:
    the smaller). A layer therefore only ever moves towards the target, the layers the
    search was least sure about move first, and the result is within one move of the
    target (a layer's share of the weights times its candidate gap).
    """
    layers = mixed_layers(model)
    _require(layers)
    total = sum(m.weight.numel() for _, m in layers)
    cands = [m.quant_cfg.mixed_candidates for _, m in layers]
    if not all(min(c) <= target_bits <= max(c) for c in cands):
        raise ValueError(f"target {target_bits} bits is outside the candidates {sorted(set(cands))}")
    order = [sorted(range(len(c)), key=c.__getitem__) for c in cands]  # candidate indices by bits
    log_probs = [m.mp_logits.detach().double().log_softmax(-1).tolist() for _, m in layers]
    share = [m.weight.numel() / total for _, m in layers]
    rank = [o.index(int(m.mp_logits.argmax())) for o, (_, m) in zip(order, layers)]

    def bits_at(i: int, r: int) -> int:
        return cands[i][order[i][r]]

    def average() -> float:
        return sum(s * bits_at(i, r) for i, (s, r) in enumerate(zip(share, rank)))

    avg = average()
    step = 1 if avg < target_bits else -1
    previous = (avg, list(rank))
    while (target_bits - avg) * step > 0:
        best = None
        for i, r in enumerate(rank):
            if not 0 <= r + step < len(cands[i]):
                continue
            cost = log_probs[i][order[i][r]] - log_probs[i][order[i][r + step]]
            per_bit = cost / (share[i] * abs(bits_at(i, r + step) - bits_at(i, r)))
            if best is None or per_bit < best[0]:
                best = (per_bit, i)
        if best is None:
            break
        previous = (avg, list(rank))
        rank[best[1]] += step
        avg = average()
    if (abs(previous[0] - target_bits), previous[0]) < (abs(avg - target_bits), avg):
        rank = previous[1]
    return {n: bits_at(i, r) for i, ((n, _), r) in enumerate(zip(layers, rank))}


def finalise(model: nn.Module, target_bits: Optional[float] = None) -> Dict[str, int]:
    """Fix every mixed layer's bits: the argmax, or ``budgeted_argmax`` for a target; returns the map."""
    if target_bits is None:
        bits = {n: m.quant_cfg.mixed_candidates[int(m.mp_logits.argmax())] for n, m in mixed_layers(model)}
    else:
        bits = budgeted_argmax(model, target_bits)
    apply_bit_map(model, bits)
    return bits


def save_bit_map(bits: Dict[str, int], path: Path, average: float) -> None:
    Path(path).write_text(json.dumps({"average_bits": average, "layers": bits}, indent=1) + "\n")


def load_bit_map(path: Path) -> Dict[str, int]:
    """The layer map of a JSON file ``save_bit_map`` wrote, with a clear error naming a bad file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"bit map {path} does not exist")
    try:
        data = json.loads(path.read_text())
        return {str(k): int(v) for k, v in data["layers"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"bit map {path} is not a bit-map JSON file ({type(e).__name__}: {e})") from None


def format_bit_map(bits: Dict[str, int]) -> str:
    """One line per encoder block: ``layer 3: ff_macaron.linear1:4 ... conv.depthwise:3 ...``."""
    rows: Dict[str, List[str]] = {}
    for name, b in bits.items():
        parts = name.split(".")
        in_layer = parts[1] == "layers"
        block = f"layer {parts[2]}" if in_layer else parts[1]
        module = ".".join(parts[3:] if in_layer else parts[2:])
        rows.setdefault(block, []).append(f"{module}:{b}")
    return "\n".join(f"{block}: {' '.join(items)}" for block, items in rows.items())
