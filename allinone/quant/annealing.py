"""Annealing state of the quantizers: a value passed down the forward call, and its schedule.

Two quantities are annealed during a compression run:

- GQ's softmax sharpness ``gq_alpha`` and the switch to its hard forward ``gq_hard``
  (``allinone.quant.gq``), whose gradient ``gq_hard_grad`` picks;
- the Gumbel-softmax temperature ``mp_tau`` of one-stage mixed precision
  (``allinone.quant.layers``).

The trainer asks ``AnnealingSchedule.at(step)`` for the ``Annealing`` of a step and passes
it to ``model(..., annealing=...)``; every module hands it on to its quantized layers. No
layer keeps annealing state of its own, so two calls with different values (a training
step and a validation pass, or two models sharing layers) cannot see each other's, and the
value is a small record a checkpoint can hold (``to_dict``/``from_dict``).

``annealing=None`` means "not annealing": a layer in evaluation mode then runs GQ hard and
mixed precision at its finalised (or most likely) bit-width, as a deployed model does; a
layer in training mode uses ``TRAINING_DEFAULT`` (what a layer used before any schedule
value was set).
"""

import math
from dataclasses import asdict, dataclass, field
from typing import Optional

GQ_HARD_GRADS = ("ste", "soft")


@dataclass(frozen=True)
class Annealing:
    """Annealing state of one training step.

    Args:
        gq_alpha: GQ softmax sharpness (>= 0); larger is closer to nearest-centroid rounding.
        gq_hard: GQ forward is the nearest centroid.
        mp_tau: Gumbel-softmax temperature (> 0) of the mixed-precision blend.
        gq_hard_grad: the gradient of GQ's hard forward (one of ``GQ_HARD_GRADS``): "ste"
            passes it straight through the hard assignment to the weight and to the
            centroid it picked; "soft" follows the soft assignment at ``gq_alpha``, which
            vanishes for weights away from a decision boundary as alpha grows.
    """

    gq_alpha: float = 5.0
    gq_hard: bool = False
    mp_tau: float = 1.0
    gq_hard_grad: str = "ste"

    def __post_init__(self) -> None:
        if not (self.gq_alpha >= 0 and math.isfinite(self.gq_alpha)):
            raise ValueError(f"gq_alpha must be non-negative and finite, got {self.gq_alpha}")
        if not (self.mp_tau > 0 and math.isfinite(self.mp_tau)):
            raise ValueError(f"mp_tau must be positive and finite, got {self.mp_tau}")
        if self.gq_hard_grad not in GQ_HARD_GRADS:
            raise ValueError(f"gq_hard_grad must be one of {GQ_HARD_GRADS}, got {self.gq_hard_grad!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Annealing":
        # Values saved before the option existed came from the soft-gradient hard phase.
        hard_grad = d.get("gq_hard_grad", "soft")
        return cls(float(d["gq_alpha"]), bool(d["gq_hard"]), float(d["mp_tau"]), hard_grad)


# Used by a layer in training mode when no value is passed: soft GQ at alpha 5 and the
# Gumbel-softmax at temperature 1, so code that never anneals trains as it always did.
TRAINING_DEFAULT = Annealing()


@dataclass
class GQSchedule:
    """Annealing of GQ's sharpness ``alpha`` and the switch to hard (straight-through) mode.

    ``alpha`` rises geometrically from ``alpha_start`` to ``alpha_end`` over
    ``anneal_steps`` training steps and stays at ``alpha_end`` afterwards; the quantizer
    runs hard from step ``hard_after`` on (default: when the anneal ends).

    Defaults. ``p_k`` is a Gaussian bump of standard deviation ``1 / sqrt(2 alpha)`` in
    the companded domain, so how hard a given alpha is depends on the centroid spacing:
    with quantile initialisation on Gaussian weights the spacing is ~1.3 at 1 bit, ~0.22
    at 2, ~0.06 at 4, ~0.015 at 6 and ~0.004 at 8 bits.

    - ``alpha_start = 5`` (width ~0.3) is clearly soft for every codebook of 2 or more
      bits (1 bit is already nearly hard), so weights and centroids all get gradients at
      first. The soft weight is then about half its norm away from the float one: when
      fine-tuning a trained model expect a loss jump, or start higher (at ~100 the soft
      error is about the hard one).
    - ``alpha_end = 1e5`` leaves the soft output within ~8% of the hard one (mean absolute
      gap relative to the quantization error) up to 6 bits, ~50% at 8 bits; 5e3 would be
      that hard only up to 3 bits (~11% at 4, ~40% at 5), so switching to hard mode would
      jolt the 5- and 6-bit models. The soft path's gradient w.r.t. a weight vanishes away
      from the decision boundaries as alpha grows, so the hard phase trains the weights
      through a straight-through estimator (``hard_grad="ste"``) rather than that gradient.
    - Geometric growth spends equal time on every order of magnitude of alpha.
    - ``anneal_steps = 10_000`` is a short fine-tuning run; set it to about yours.
    - ``hard_after = anneal_steps``: hard mode starts when the anneal ends.

    Args:
        alpha_start: alpha at step 0 (> 0).
        alpha_end: alpha from step ``anneal_steps`` on (> 0).
        anneal_steps: length of the geometric ramp (0 = ``alpha_end`` from the start).
        hard_after: first hard step; ``None`` means ``anneal_steps``.
        hard_grad: gradient of the hard phase, "ste" or "soft" (see ``Annealing``).
    """

    alpha_start: float = 5.0
    alpha_end: float = 1e5
    anneal_steps: int = 10_000
    hard_after: Optional[int] = None
    hard_grad: str = "ste"

    def __post_init__(self) -> None:
        if not (self.alpha_start > 0 and self.alpha_end > 0):
            raise ValueError("alpha_start and alpha_end must be positive")
        if not (math.isfinite(self.alpha_start) and math.isfinite(self.alpha_end)):
            raise ValueError("alpha_start and alpha_end must be finite")
        if self.anneal_steps < 0:
            raise ValueError(f"anneal_steps must be >= 0, got {self.anneal_steps}")
        if self.hard_after is None:
            self.hard_after = self.anneal_steps

    def alpha(self, step: int) -> float:
        """Sharpness at training step ``step`` (0-based): geometric ramp, then constant."""
        if step >= self.anneal_steps:
            return float(self.alpha_end)
        if step <= 0:
            return float(self.alpha_start)
        frac = step / self.anneal_steps
        return float(self.alpha_start * (self.alpha_end / self.alpha_start) ** frac)

    def is_hard(self, step: int) -> bool:
        """Whether step ``step`` uses the hard (straight-through) forward."""
        return step >= self.hard_after


@dataclass
class TauSchedule:
    """Gumbel-softmax temperature, geometric from ``tau_start`` to ``tau_end`` over ``anneal_steps``."""

    tau_start: float = 1.0
    tau_end: float = 0.1
    anneal_steps: int = 1000

    def tau(self, step: int) -> float:
        if step >= self.anneal_steps or self.anneal_steps <= 0:
            return self.tau_end
        frac = max(step, 0) / self.anneal_steps
        return self.tau_start * math.exp(frac * math.log(self.tau_end / self.tau_start))


@dataclass
class AnnealingSchedule:
    """Both schedules together: ``at(step)`` is the ``Annealing`` of a training step.

    Args:
        gq: GQ sharpness and hard-mode switch.
        tau: Gumbel-softmax temperature.
    """

    gq: GQSchedule = field(default_factory=GQSchedule)
    tau: TauSchedule = field(default_factory=TauSchedule)

    def at(self, step: int) -> Annealing:
        """The annealing state of global training step ``step``."""
        return Annealing(self.gq.alpha(step), self.gq.is_hard(step), self.tau.tau(step), self.gq.hard_grad)
