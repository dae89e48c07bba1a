"""Training several subnets of one nested model on the same batch.

Each step runs a selection of subnets (policy ``all``, ``sandwich`` or
``largest_random``) through one shared model; their losses are weighted and summed so
a single backward pass accumulates every subnet's gradient in the shared weights.
Optionally the largest subnet is a detached teacher: the others add a KL term towards
its output distributions and scale their label losses down (``student_label_scale``).
"""

import math
import random
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch
import torch.nn as nn

from allinone.quant.annealing import Annealing
from allinone.subnet import SubnetConfig, SubnetError

POLICIES = ("auto", "all", "sandwich", "largest_random")
# Policies that run the largest subnet at every step plus k drawn from a pool of the others.
DRAWING_POLICIES = ("sandwich", "largest_random")
# Above this many subnets, "auto" switches from "all" to the sandwich rule.
AUTO_ALL_MAX = 6


@dataclass(frozen=True)
class NestedPlan:
    """The grid and how each step samples and weights it.

    Args:
        subnets: the training grid, largest (teacher) first, smallest last.
        policy: "all"; "sandwich" (largest + smallest + k random middle subnets);
            "largest_random" (largest + k random among all the others, the smallest
            included: no subnet but the largest gets a direct update at every step);
            or "auto" (all up to ``AUTO_ALL_MAX`` subnets, else sandwich).
        sandwich_k: subnets drawn per step (the k of "sandwich" and "largest_random").
        loss_weights: per-subnet weight of its label losses (missing = 1).
        draw_weights: relative chance of a subnet of the draw pool (sandwich: neither largest
            nor smallest; largest_random: all but the largest) to be one of the k random
            picks (missing = 1; none given = uniform).
        distill: add KL from the detached largest subnet to every other one.
        distill_scale: weight of the KL terms of a student (not multiplied by its loss weight,
            so unfolding's ``deepest + alpha * seed + beta * KL`` is ``seed=alpha``,
            ``distill_scale=beta``, ``student_label_scale=1``).
        student_label_scale: weight of a student's label losses when distilling.
        distill_start: first global batch with KL terms; before it every subnet learns
            from the labels alone, so a teacher still on the blank-only plateau does
            not pin its students there.
        warmup: subnets that train alone for the first ``warmup_batches`` global batches
            (progressive depth: a shallow seed leaves the blank-only plateau first, the
            deeper paths then start from working blocks); no KL terms meanwhile.
        warmup_batches: length of that phase (0 = none).
        distill_students: names of the subnets that get the KL terms (empty: every subnet but
            the teacher). Unfolding's paper distils the deepest unfolded path into the seed
            only; the other sampled depths then learn from the labels alone.
    """

    subnets: tuple
    policy: str = "auto"
    sandwich_k: int = 2
    loss_weights: tuple = ()
    draw_weights: tuple = ()
    distill: bool = False
    distill_scale: float = 1.0
    student_label_scale: float = 0.5
    distill_start: int = 0
    warmup: tuple = ()
    warmup_batches: int = 0
    distill_students: tuple = ()

    def __post_init__(self):
        if self.policy not in POLICIES:
            raise ValueError(f"unknown subnet policy {self.policy!r}; choose from {POLICIES}")
        if not self.subnets:
            raise SubnetError("a nested plan needs at least one subnet")
        names = {s.name for s in self.subnets}
        unknown = [n for n, _ in self.loss_weights if n not in names]
        if unknown:
            raise SubnetError(
                f"loss weights given for subnets not in the grid: {unknown}; grid: {sorted(names)}"
            )
        self._check_draw_weights()
        bad = [n for n in self.distill_students if n not in names or n == self.subnets[0].name]
        if bad:
            raise SubnetError(
                f"distillation students {bad} are not in the grid or are its teacher "
                f"({self.subnets[0].name}); students may be: {sorted(names - {self.subnets[0].name})}"
            )
        if self.warmup_batches > 0 and not self.warmup:
            raise SubnetError("a warm-up phase needs the subnets it trains (--warmup-subnet)")

    def _check_draw_weights(self) -> None:
        if not self.draw_weights:
            return
        if self.effective_policy() not in DRAWING_POLICIES:
            raise SubnetError(
                f"draw weights only apply to the policies {DRAWING_POLICIES}; this plan runs "
                f"{self.effective_policy()!r}"
            )
        pool = [s.name for s in self.draw_pool()]
        always = [s.name for s in self.subnets if s.name not in pool]
        given = [name for name, _ in self.draw_weights]
        twice = sorted({n for n in given if given.count(n) > 1})
        if twice:
            raise SubnetError(f"draw weight given more than once for {twice}")
        for name, weight in self.draw_weights:
            if name in always:
                raise SubnetError(
                    f"draw weight given for {name}, which the {self.effective_policy()} policy runs "
                    f"at every step; weigh only the subnets it draws from: {pool}"
                )
            if name not in pool:
                raise SubnetError(f"draw weight given for {name}, not in the grid; drawn subnets: {pool}")
            if not (math.isfinite(weight) and weight > 0):
                raise SubnetError(
                    f"draw weight of {name} is {weight}; it must be finite and > 0 (a subnet never "
                    "drawn would keep untrained quantizer scales and normalisation statistics)"
                )

    def draw_pool(self) -> List[SubnetConfig]:
        """The subnets the k random picks come from: the sandwich rule's middle subnets
        (it runs the smallest at every step), or all but the largest for largest_random."""
        if self.effective_policy() == "largest_random":
            return list(self.subnets[1:])
        return list(self.subnets[1:-1])

    def draw_probability(self, name: str) -> float:
        """Chance that one weighted draw picks ``name`` from the draw pool (k = 1)."""
        weights = dict(self.draw_weights)
        pool = [s.name for s in self.draw_pool()]
        return weights.get(name, 1.0) / sum(weights.get(n, 1.0) for n in pool)

    def warming_up(self, step: int) -> bool:
        """Whether global batch ``step`` (counted from 1) belongs to the warm-up phase."""
        return bool(self.warmup) and step <= self.warmup_batches

    @property
    def teacher(self) -> SubnetConfig:
        return self.subnets[0]

    def distills_at(self, step: int) -> bool:
        """Whether students get KL terms at global batch ``step``."""
        return self.distill and step >= self.distill_start and not self.warming_up(step)

    def weight(self, name: str) -> float:
        return dict(self.loss_weights).get(name, 1.0)

    def effective_policy(self) -> str:
        if self.policy == "auto":
            return "all" if len(self.subnets) <= AUTO_ALL_MAX else "sandwich"
        return self.policy

    def select(self, step: int, seed: int) -> List[SubnetConfig]:
        """Subnets to run at global ``step``: the teacher first, the rest in grid order.

        The random picks come from a generator seeded by (seed, step), so a resumed run
        picks exactly what an uninterrupted one would.
        """
        if self.warming_up(step):
            return list(self.warmup)
        subnets = list(self.subnets)
        if self.effective_policy() == "all" or len(subnets) <= 2:
            return subnets
        pool = self.draw_pool()
        rng = random.Random(seed * 1_000_003 + step)
        k = min(self.sandwich_k, len(pool))
        if self.draw_weights:
            weights = dict(self.draw_weights)
            indices = _weighted_sample(rng, [weights.get(s.name, 1.0) for s in pool], k)
        else:  # uniform: kept as it was, so runs from before draw weights resume identically
            indices = rng.sample(range(len(pool)), k)
        picked = {pool[i].name for i in indices}
        drawn = {s.name for s in pool}
        return [s for s in subnets if s.name not in drawn or s.name in picked]


def _weighted_sample(rng: random.Random, weights: Sequence[float], k: int) -> set:
    """``k`` distinct indices into ``weights``, drawn one after another, each with chance
    proportional to its weight among those not yet drawn."""
    left = list(range(len(weights)))
    picked = set()
    for _ in range(k):
        (i,) = rng.choices(left, weights=[weights[j] for j in left])
        left.remove(i)
        picked.add(i)
    return picked


def order_by_size(
    subnets: Sequence[SubnetConfig], size_of: Callable[[SubnetConfig], Any]
) -> List[SubnetConfig]:
    """Largest first, smallest last (stable for ties), by ``size_of`` (stored bytes, or a tuple)."""
    return sorted(subnets, key=size_of, reverse=True)


def parse_subnet_weights(spec: str) -> tuple:
    """``"d6-w1.0-b32=2,d3-w0.5-b4=0.5"`` -> (("d6-w1.0-b32", 2.0), ("d3-w0.5-b4", 0.5)).

    The format of ``--subnet-loss-weights`` and ``--subnet-draw-weights``."""
    out = []
    for item in filter(None, (x.strip() for x in spec.split(","))):
        name, sep, value = item.rpartition("=")
        if not sep:
            raise ValueError(f"subnet weight {item!r} is not NAME=WEIGHT")
        out.append((name, float(value)))
    return tuple(out)


class NestedLoss(nn.Module):
    """Runs several subnets of ``model`` on one batch; the module DDP wraps for nested training.

    Putting every subnet inside one ``forward`` lets DistributedDataParallel see a single
    graph per step, so gradients of shared weights are reduced once.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(
        self,
        features: torch.Tensor,
        feature_lens: torch.Tensor,
        labels: List[List[int]],
        subnets: Sequence[SubnetConfig],
        distill: bool = False,
        teacher_targets=None,
        annealing: Optional[Annealing] = None,
        students: Optional[Sequence[str]] = None,
        **loss_kwargs,
    ) -> Dict[str, Dict[str, torch.Tensor]]:
        """Losses per subnet.

        Args:
            features: (N, T, F); feature_lens: (N,); labels: N token lists.
            subnets: subnets to run; with ``distill`` the first is the teacher.
            distill: add "kl"/"kl_ctc" terms to every subnet after the first.
            teacher_targets: ``DistillTargets`` of an external (frozen) teacher; every
                subnet then learns from it and none is the teacher.
            students: names of the subnets that get the KL terms (None: all but the teacher).
            annealing: the quantizers' annealing value of this step, for every subnet
                (None: not annealing).
            loss_kwargs: prune_range, am_scale, lm_scale of ``Transducer.forward``.
        Returns:
            {subnet name: {loss name: (N,)}}.
        """
        out: Dict[str, Dict[str, torch.Tensor]] = {}
        teacher = teacher_targets
        for i, subnet in enumerate(subnets):
            if distill and teacher_targets is None and i == 0 and len(subnets) > 1:
                losses, teacher = self.model(
                    features,
                    feature_lens,
                    labels,
                    subnet=subnet,
                    return_targets=True,
                    annealing=annealing,
                    **loss_kwargs,
                )
            else:
                learns = students is None or subnet.name in students
                losses = self.model(
                    features,
                    feature_lens,
                    labels,
                    subnet=subnet,
                    teacher=teacher if learns else None,
                    annealing=annealing,
                    **loss_kwargs,
                )
            out[subnet.name] = losses
        return out


def combine_subnet_losses(
    per_subnet: Dict[str, Dict[str, torch.Tensor]],
    head_weights: Dict[str, float],
    plan: NestedPlan,
    teacher_name: Optional[str] = None,
) -> torch.Tensor:
    """Weighted per-utterance total (N,) over subnets and heads.

    A subnet's total is ``w_subnet * label_scale * sum_k head_weights[k] * L_k + distill_scale * KL``
    where the KL of the CTC head is scaled like its label loss and ``label_scale`` is
    ``student_label_scale`` for students with KL terms, else 1.
    """
    total = None
    for name, losses in per_subnet.items():
        student = plan.distill and name != teacher_name and any(k.startswith("kl") for k in losses)
        label_scale = plan.student_label_scale if student else 1.0
        label_weight = plan.weight(name) * label_scale
        t = 0.0
        for k, v in losses.items():
            if k == "kl":
                t = t + plan.distill_scale * v
            elif k == "kl_ctc":
                t = t + plan.distill_scale * head_weights["ctc"] * v
            else:
                t = t + label_weight * head_weights[k] * v
        total = t if total is None else total + t
    return total
