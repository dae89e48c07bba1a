"""A training run's checkpoints: what they record, when a resume may use them, old ones pruned.

Resumption is exact on CPU: a record holds the model, the running average, the
optimizer, the schedule, every RNG state and the position in the epoch, and the data
order is a pure function of (seed, epoch), so a run killed after ``checkpoint-N.pt`` and
restarted with ``--start-batch N`` continues with the batch an uninterrupted run would
have seen next and ends with the same weights.
"""

import logging
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Dict, Optional

from allinone.checkpoint.record import CheckpointRecord, write_record
from allinone.nn.model import ModelConfig
from allinone.training.config import CompressionOptions, TrainConfig
from allinone.training.nested import NestedPlan
from allinone.training.recipe import LEGACY_DEFAULTS, OPTIMISATION_KEYS, config_differences
from allinone.training.resume import continuation_flags, numbered

# Nested-plan options added after some checkpoints were written, at the values those runs had.
LEGACY_PLAN = {
    "distill_start": 0,
    "warmup": [],
    "warmup_batches": 0,
    "mp_lr_scale": 50.0,
    "draw_weights": [],
    "distill_students": [],
}
# Compression options added later: the same values as in the flat training config.
LEGACY_COMPRESSION = {
    k: v for k, v in LEGACY_DEFAULTS.items() if k in {f.name for f in fields(CompressionOptions)}
}
# The sampler keys a resume must keep, each checked with its own message.
SAMPLER_KEYS = ("seed", "world_size", "max_duration")


def plan_signature(plan: NestedPlan, compression: CompressionOptions, mp_lr_scale: float) -> Dict[str, Any]:
    """What defines the nested training objective; a resume must not change it."""
    return {
        "subnets": [s.name for s in plan.subnets],
        "policy": plan.effective_policy(),
        "sandwich_k": plan.sandwich_k,
        "loss_weights": [list(w) for w in plan.loss_weights],
        "draw_weights": [list(w) for w in plan.draw_weights],
        "distill": plan.distill,
        "distill_scale": plan.distill_scale,
        "student_label_scale": plan.student_label_scale,
        "distill_start": plan.distill_start,
        "warmup": [s.name for s in plan.warmup],
        "warmup_batches": plan.warmup_batches,
        "distill_students": list(plan.distill_students),
        "compression": asdict(compression),
        "mp_lr_scale": mp_lr_scale,
    }


def complete_saved_plan(saved_plan: Dict[str, Any]) -> Dict[str, Any]:
    """A checkpoint's ``nested_plan`` with the options its run predates filled in, so it
    compares equal to the signature of a resumed run that did not change anything."""
    plan = {**LEGACY_PLAN, "compression": asdict(CompressionOptions()), **saved_plan}
    plan["compression"] = {**LEGACY_COMPRESSION, **plan["compression"]}
    return plan


def resume_path(cfg: TrainConfig) -> Optional[Path]:
    """The checkpoint ``--start-batch`` / ``--start-epoch`` name, None for a fresh start.

    Raises:
        ValueError: for a fresh start into an ``--exp-dir`` that holds a run's checkpoints
            (it would overwrite them one by one), naming the flags that continue that run.
    """
    exp_dir = Path(cfg.run.exp_dir)
    if cfg.run.start_batch > 0:
        return exp_dir / f"checkpoint-{cfg.run.start_batch}.pt"
    if cfg.run.start_epoch > 1:
        return exp_dir / f"epoch-{cfg.run.start_epoch - 1}.pt"
    flags = continuation_flags(exp_dir)
    if flags:
        raise ValueError(
            f"{exp_dir} already holds a run's checkpoints; training from scratch would overwrite them. "
            f"Continue that run with {' '.join(flags)} (a finished run also with a larger --num-epochs), "
            "or give another --exp-dir"
        )
    return None


def check_resumable(
    record: CheckpointRecord, cfg: TrainConfig, model_cfg: ModelConfig, signature: Dict
) -> None:
    """Refuse a resume that would continue another run than the one ``record`` belongs to.

    Raises:
        ValueError: naming the file and the first thing that differs: model, nested plan,
            optimisation flags or the sampler keys the data order depends on.
    """
    path = record.path
    if record.kind != "train" or record.sampler is None:
        raise ValueError(
            f"{path} is a {record.kind} checkpoint without a training state; it cannot be resumed"
        )
    # from_dict fills options added after the checkpoint was written with their defaults.
    if ModelConfig.from_dict(record.model_config).to_dict() != model_cfg.to_dict():
        raise ValueError(
            f"{path} was trained with model config {record.model_config}, "
            f"but this run builds {model_cfg.to_dict()}"
        )
    if record.nested_plan is not None and complete_saved_plan(record.nested_plan) != signature:
        raise ValueError(
            f"{path} was trained with the nested plan {complete_saved_plan(record.nested_plan)}, "
            f"but this run asks for {signature}: give the same --subnets, --subnet-policy, "
            "--sandwich-k, --subnet-loss-weights, "
            "--subnet-draw-weights, distillation and compression flags to resume"
        )
    keys = [k for k in OPTIMISATION_KEYS if k not in SAMPLER_KEYS]
    changed = config_differences(record.train_config, cfg.to_flat_dict(), keys)
    changed = {k: v for k, v in changed.items() if v[0] is not None}  # keys older runs lack
    if changed:
        what = ", ".join(f"--{k.replace('_', '-')} {a!r} (now {b!r})" for k, (a, b) in changed.items())
        raise ValueError(f"{path} was trained with {what}: resume with the same values")
    now = {"seed": cfg.run.seed, "world_size": cfg.run.world_size, "max_duration": cfg.data.max_duration}
    for key in SAMPLER_KEYS:
        if getattr(record.sampler, key) != now[key]:
            raise ValueError(
                f"{path}: resuming needs --{key.replace('_', '-')} {getattr(record.sampler, key)} "
                f"(the data order depends on it), got {now[key]}"
            )


@dataclass
class CheckpointWriter:
    """Writes a run's records on rank 0 and keeps the newest ``keep_last_k`` batch checkpoints."""

    exp_dir: Path
    rank: int = 0
    keep_last_k: int = 5

    def save(self, name: str, record: CheckpointRecord) -> None:
        if self.rank != 0:
            return
        path = write_record(record, Path(self.exp_dir) / name)
        logging.info(f"saved {path}")
        if name.startswith("checkpoint-"):
            self._prune()

    def _prune(self) -> None:
        found = [Path(self.exp_dir) / f"checkpoint-{n}.pt" for n in numbered(self.exp_dir, "checkpoint")]
        for old in found[: -self.keep_last_k] if self.keep_last_k > 0 else []:
            old.unlink()
