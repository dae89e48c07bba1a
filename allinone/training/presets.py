"""Method presets: ``train.py --preset NAME`` sets the training flags of one method at once.

Two kinds sit side by side:

- ``*-paper``: each paper's method as far as its text and its group's code are known. Every
  value a paper does not give is listed in ``our_choices`` with the reason we took it;
- ``*-tuned``: the settings this repository's recipes use on the synthetic corpus (what
  the tables of ``egs/synth_digits/ASR/RESULTS.md`` were trained with), so the two can be
  compared run against run.

The paper presets of nested and unfolded models share one set of BatchNorm statistics
across subnets and repeats (``shared_norm_stats``), as pure weight sharing implies; the
tuned ones keep a set per subnet and per repeat, this repository's departure.

A preset only changes defaults: any flag given on the command line wins, and ``--model``
keys merge with the preset's. Nothing a preset sets is hidden: it is the same config a run
with those flags written out would have, and the checkpoint records it.
"""

from dataclasses import dataclass, field
from typing import Any, Dict

__all__ = ["MethodPreset", "METHOD_PRESETS", "apply_preset"]


@dataclass(frozen=True)
class MethodPreset:
    """One method's settings.

    Args:
        summary: one line for ``--help``.
        values: ``train.py`` option values by field name; ``"model"`` holds ``--model`` keys.
        our_choices: the values the paper does not state, each with why this one.
    """

    summary: str
    values: Dict[str, Any]
    our_choices: Dict[str, str] = field(default_factory=dict)


METHOD_PRESETS: Dict[str, MethodPreset] = {
    "aio-paper": MethodPreset(
        "all-in-one nested model (Interspeech 2024): one pass over depth x width x bits, KL from the largest",
        {
            "subnets": "default",
            "subnet_policy": "auto",
            "distill": True,
            "distill_scale": 1.0,
            "student_label_scale": 0.5,
            "model": {
                "quantizer": "lsq",
                "quant_granularity": "tensor",
                "quantize_heads": False,
                "shared_norm_stats": True,
            },
        },
        {
            "subnets": "the paper's grid is not published in full; ours spans depth 6/4/3, FFN width 1/0.5 "
            "and 32/8/4/2 bits",
            "subnet_policy": "all subnets up to 6, else the sandwich rule: the paper trains every subnet "
            "per step, which a 10-subnet grid makes slow",
            "student_label_scale": "0.5 x labels + 1.0 x KL is the group's code, not stated in the paper",
        },
    ),
    "aio-tuned": MethodPreset(
        "all-in-one as run_all_in_one.sh trains it: sandwich rule with one random middle subnet, no KL",
        {"subnets": "default", "subnet_policy": "sandwich", "sandwich_k": 1, "distill": False},
    ),
    "mp-paper": MethodPreset(
        "one-stage mixed precision (ICASSP 2025): Gumbel-softmax bit choice per layer, per-tensor scales",
        {
            "model": {"quantizer": "lsq", "quant_granularity": "tensor", "mp_candidates": "2,3,4,6,8"},
            "mp_tau_start": 1.0,
            "mp_tau_end": 0.1,
            "distill": True,
            "student_label_scale": 1.0,
        },
        {
            "mp_candidates": "{2, 3, 4, 6, 8}: the paper's candidate set is not given in the text we have",
            "mp_tau_start/end": "1.0 to 0.1, geometric over --mp-anneal-batches: the schedule is not given",
            "distill": "KL to the frozen float model (--teacher-checkpoint) beside the labels, weight 1",
        },
    ),
    "mp-tuned": MethodPreset(
        "one-stage mixed precision as run_quantizers.sh runs it: per-channel steps",
        {
            "model": {"quantizer": "lsq", "quant_granularity": "channel", "mp_candidates": "2,3,4,6,8"},
            "distill": True,
            "student_label_scale": 1.0,
        },
    ),
    "gq-paper": MethodPreset(
        "general quantizer (SLT 2022): companded learnable centroids, soft-to-hard, no regulariser",
        {
            "model": {"quantizer": "gq", "quant_granularity": "tensor", "gq_mu": 255.0},
            "gq_alpha_start": 5.0,
            "gq_alpha_end": 1e5,
            "gq_hard_grad": "ste",
            "quantizer_weight_decay": 0.0,
            "distill": True,
            "student_label_scale": 1.0,
        },
        {
            "gq_mu": "255, the mu-law of telephony: the paper's value is not given",
            "gq_alpha_start/end": "5 (soft for every codebook of 2+ bits) to 1e5 (within ~8% of hard up to 6 "
            "bits), see allinone.quant.annealing.GQSchedule",
            "gq_hard_grad": "straight through the hard assignment, as a soft-to-hard quantizer implies",
        },
    ),
    "gq-tuned": MethodPreset(
        "general quantizer as run_quantizers.sh runs it from a float model: sharpness from 100",
        {
            "model": {"quantizer": "gq"},
            "gq_alpha_start": 100.0,
            "distill": True,
            "student_label_scale": 1.0,
        },
    ),
    "unfold-paper": MethodPreset(
        "unfolding (Interspeech 2025): seed and unfolded paths jointly from step 0, KL deepest -> seed",
        {
            "subnets": "unfold",
            "subnet_policy": "sandwich",
            "sandwich_k": 1,
            "distill": True,
            "distill_students": "seed",
            "distill_scale": 1.0,
            "student_label_scale": 1.0,
            "distill_start_batch": 0,
            "warmup_subnet": "",
            "warmup_subnet_batches": 0,
            "model": {"shared_norm_stats": True},
        },
        {
            "subnet_policy": "the deepest path and the seed every step plus one other depth drawn at random",
            "distill_scale": "beta = 1: the paper's weight of the KL term is not given",
            "student_label_scale": "alpha = 1 for the seed's own label losses",
        },
    ),
    "unfold-tuned": MethodPreset(
        "unfolding as run_unfolding.sh trains it: the seed alone first, no KL",
        {
            "subnets": "unfold",
            "subnet_policy": "sandwich",
            "sandwich_k": 1,
            "distill": True,
            "distill_scale": 0.0,
            "student_label_scale": 1.0,
            "distill_start_batch": 500,
            "warmup_subnet": "seed",
            "warmup_subnet_batches": 700,
        },
    ),
}


def apply_preset(defaults: Dict[str, Any], name: str) -> Dict[str, Any]:
    """The recipe's ``defaults`` with preset ``name``'s values on top (``model`` keys merged).

    Raises:
        ValueError: an unknown preset, listing the known ones.
    """
    if not name:
        return dict(defaults)
    if name not in METHOD_PRESETS:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(METHOD_PRESETS)}")
    values = METHOD_PRESETS[name].values
    out = {**defaults, **{k: v for k, v in values.items() if k != "model"}}
    out["model"] = {**defaults.get("model", {}), **values.get("model", {})}
    return out
