"""Which training settings make up "the recipe", i.e. what two runs must share for one
to be a like-for-like reference for the other (an all-in-one pass and its individually
trained twins), and what a resumed run must not change."""

from dataclasses import MISSING, fields
from typing import Any, Dict, Iterable, Mapping, Optional

from allinone.nn.model import ModelConfig

# Optimisation, losses and batching: resuming with other values would continue a
# different recipe from the middle of this one.
OPTIMISATION_KEYS = (
    "max_duration", "num_buckets", "sortagrad_epochs", "max_batches_per_epoch", "world_size",
    "spec_augment", "base_lr", "warmup_batches", "lr_batches", "lr_epochs", "weight_decay",
    "quantizer_weight_decay", "clip_grad_norm", "average_period", "prune_range", "lm_scale", "am_scale",
    "simple_loss_scale", "warm_step", "use_transducer", "use_ctc", "ctc_loss_scale",
    "use_fp16", "use_bf16", "on_the_fly_feats", "perturb_speed", "enable_musan",
    "channel_copies", "channel_copy_prob",
)  # fmt: skip

# Plus the data, the starting point and the model: the recipe two compared runs share.
# Per-run settings (exp dir, seed, subnets, policy, distillation, logging, epochs) are not
# part of it. Paths are compared as written, so spell them the same way in both runs.
RECIPE_KEYS = (
    "manifest_dir",
    "train_cuts",
    "bpe_model",
    "init_from",
    "float_weights",
    "reorder_ffn_units",
    "teacher_checkpoint",
    "unfold_relax",
    "model",
) + OPTIMISATION_KEYS


# Model options that act on quantizers only, so a float subnet (no quantizer runs) trains
# bit-identically whatever their value (tests/e2e/test_all_in_one.py checks quantize_heads).
# A float twin may differ from its one pass in these alone. Values: what runs that
# predate an option had.
QUANTIZER_ONLY_MODEL_OPTIONS = {"quantize_heads": False}

# Options added after some runs were trained, at the value those runs had.
LEGACY_DEFAULTS = {
    "init_from": "",
    "float_weights": "epoch-mean",
    "reorder_ffn_units": "none",
    "mp_finalise_batch": 0,
    "teacher_checkpoint": "",
    "unfold_relax": False,
    "use_fp16": False,
    "use_bf16": False,
    "on_the_fly_feats": False,
    "perturb_speed": False,
    "enable_musan": False,
    "channel_copies": "",
    "channel_copy_prob": 0.0,
    # Runs before the option decayed quantizer parameters like weights, at weight_decay's default.
    "quantizer_weight_decay": 1e-3,
    # GQ's hard phase followed the soft assignment's gradient before the option existed.
    "gq_hard_grad": "soft",
    "freeze_weights": False,
}


# What ``--model`` can set, with ModelConfig's defaults (the rest the run derives itself).
MODEL_DEFAULTS = {
    f.name: f.default
    for f in fields(ModelConfig)
    if f.default is not MISSING
    and f.name not in ("blank_id", "use_transducer", "use_ctc", "norm_subnets", "unfold_relax")
}


def model_values(model: Optional[Mapping[str, Any]]) -> Optional[Dict[str, Any]]:
    """A run's ``--model`` values with the defaults filled in, so a run that lists a default
    value explicitly (as older runs stored the recipe's whole list) equals one that does not."""
    return None if model is None else {**MODEL_DEFAULTS, **model}


def config_differences(a: Mapping[str, Any], b: Mapping[str, Any], keys: Iterable[str]) -> Dict[str, tuple]:
    """``{key: (a[key], b[key])}`` for the ``keys`` whose values differ. A key a config
    lacks takes its :data:`LEGACY_DEFAULTS` value, else None; ``model`` values are compared
    with ModelConfig's defaults filled in."""
    a, b = {**LEGACY_DEFAULTS, **a}, {**LEGACY_DEFAULTS, **b}
    out = {}
    for k in keys:
        va, vb = a.get(k), b.get(k)
        if k == "model":
            va, vb = model_values(va), model_values(vb)
        if va != vb:
            out[k] = (a.get(k), b.get(k))
    return out
