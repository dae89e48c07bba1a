"""Which training settings make up "the recipe", i.e. what two runs must share for one
to be a like-for-like reference for the other (an all-in-one pass and its individually
trained twins), and what a resumed run must not change."""

from typing import Any, Dict, Iterable, Mapping

# Optimisation, losses and batching: resuming with other values would continue a
# different recipe from the middle of this one.
OPTIMISATION_KEYS = (
    "max_duration", "num_buckets", "sortagrad_epochs", "max_batches_per_epoch", "world_size",
    "spec_augment", "base_lr", "warmup_batches", "lr_batches", "lr_epochs", "weight_decay",
    "clip_grad_norm", "average_period", "prune_range", "lm_scale", "am_scale",
    "simple_loss_scale", "warm_step", "use_transducer", "use_ctc", "ctc_loss_scale",
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
    "teacher_checkpoint": "",
    "unfold_relax": False,
}


def config_differences(a: Mapping[str, Any], b: Mapping[str, Any], keys: Iterable[str]) -> Dict[str, tuple]:
    """``{key: (a[key], b[key])}`` for the ``keys`` whose values differ. A key a config
    lacks takes its :data:`LEGACY_DEFAULTS` value, else None."""
    a, b = {**LEGACY_DEFAULTS, **a}, {**LEGACY_DEFAULTS, **b}
    return {k: (a.get(k), b.get(k)) for k in keys if a.get(k) != b.get(k)}
