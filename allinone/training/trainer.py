"""The transducer training loop: resumable, data-parallel, robust to bad batches.

Resumption is exact on CPU: a checkpoint holds the model, the running average, the
optimizer, the schedule, every RNG state and the position in the epoch, and the data
order is a pure function of (seed, epoch), so a run killed after ``checkpoint-N.pt``
and restarted with ``--start-batch N`` continues with the batch an uninterrupted run
would have seen next and ends with the same weights.
"""

import copy
import json
import logging
import math
import resource
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Dict, List, Optional

import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP

from allinone.data.augment import SpecAugmentConfig, spec_augment
from allinone.data.datamodule import (
    AsrDataModule,
    check_features_exist,
    filter_cuts,
    load_cuts,
    log_filter_stats,
)
from allinone.data.tokenizer import BpeTokenizer
from allinone.nn.model import ModelConfig, Transducer
from allinone.nn.subsampling import subsampled_lengths
from allinone.quant.accounting import subnet_footprint
from allinone.subnet import SubnetError, full_subnet, parse_subnets
from allinone.training.averaging import update_running_average
from allinone.training.compression import Compression, CompressionConfig
from allinone.training.nested import (
    NestedLoss,
    NestedPlan,
    combine_subnet_losses,
    order_by_size,
    parse_subnet_weights,
)
from allinone.training.recipe import OPTIMISATION_KEYS, config_differences
from allinone.training.resume import continuation_flags, numbered
from allinone.training.schedule import WarmupDecaySchedule, transducer_loss_scales
from allinone.unfold import max_occurrences, statistics_keys
from allinone.utils.checkpoint import get_rng_state, load_checkpoint, save_checkpoint_atomic, set_rng_state
from allinone.utils.dist import all_reduce_sum, cleanup_dist, setup_dist
from allinone.utils.log import setup_logger


@dataclass(kw_only=True)
class TrainConfig(CompressionConfig):
    """Everything a training run depends on; saved in each checkpoint.

    The compression-run fields (``--init-from``, the quantizer schedules, the
    mixed-precision budget) are inherited from ``CompressionConfig``.
    """

    exp_dir: Path
    bpe_model: Path
    manifest_dir: Path
    train_cuts: str
    valid_cuts: str
    num_epochs: int = 4
    start_epoch: int = 1
    start_batch: int = 0
    seed: int = 42
    world_size: int = 1
    master_port: int = 12354
    max_duration: float = 120.0
    num_buckets: int = 10
    num_workers: int = 1
    base_lr: float = 3e-3
    warmup_batches: int = 200
    lr_batches: float = 1500.0
    lr_epochs: float = 6.0
    weight_decay: float = 1e-3
    clip_grad_norm: float = 5.0
    prune_range: int = 5
    lm_scale: float = 0.25
    am_scale: float = 0.0
    simple_loss_scale: float = 0.5
    warm_step: int = 300
    use_transducer: bool = True
    use_ctc: bool = False
    ctc_loss_scale: float = 0.2
    spec_augment: bool = True
    sortagrad_epochs: int = 1
    save_every_n: int = 100
    keep_last_k: int = 5
    average_period: int = 10
    log_interval: int = 20
    max_batches_per_epoch: int = 0
    max_consecutive_bad_batches: int = 20
    loss_backend: str = "torch"
    tensorboard: bool = True
    subnets: str = ""
    subnet_policy: str = "auto"
    sandwich_k: int = 2
    subnet_loss_weights: str = ""
    subnet_draw_weights: str = ""
    distill: bool = False
    distill_scale: float = 1.0
    student_label_scale: float = 0.5
    distill_start_batch: int = 0
    warmup_subnet: str = ""
    warmup_subnet_batches: int = 0
    unfold_relax: bool = False
    # the compression-run fields come from CompressionConfig
    mp_lr_scale: float = 50.0
    model: Dict = field(default_factory=dict)

    def to_dict(self) -> Dict:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, Path):
                d[k] = str(v)
        return d


class TooManyBadBatches(RuntimeError):
    """Raised when non-finite losses keep recurring, which means training has diverged."""


def build_model(model_cfg: ModelConfig, loss_backend: str = "torch") -> Transducer:
    return Transducer(model_cfg, loss_backend=loss_backend)


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, DDP) else model


def batch_inputs(batch: Dict, tokenizer: BpeTokenizer):
    """Features, lengths, labels and cut ids of a lhotse ``K2SpeechRecognitionDataset`` batch."""
    sup = batch["supervisions"]
    order = sup["sequence_idx"]
    features = batch["inputs"][order]
    feature_lens = sup["num_frames"].long()
    cut_ids = [c.id for c in sup["cut"]]
    labels = tokenizer.encode_batch(sup["text"], cut_ids)
    return features, feature_lens, labels, cut_ids


# Nested-plan options added after some checkpoints were written, at the values those runs had.
LEGACY_PLAN = {
    "distill_start": 0,
    "warmup": [],
    "warmup_batches": 0,
    "mp_lr_scale": 50.0,
    "draw_weights": [],
}
LEGACY_COMPRESSION = {"mp_finalise_batch": 0, "reorder_ffn_units": "none"}


def complete_saved_plan(saved_plan: Dict) -> Dict:
    """A checkpoint's ``nested_plan`` with the options its run predates filled in, so it
    compares equal to the signature of a resumed run that did not change anything."""
    plan = {**LEGACY_PLAN, "compression": asdict(CompressionConfig()), **saved_plan}
    plan["compression"] = {**LEGACY_COMPRESSION, **plan["compression"]}
    return plan


class Trainer:
    """Runs ``TrainConfig`` on one process of a (possibly data-parallel) job."""

    def __init__(self, cfg: TrainConfig, rank: int = 0):
        self.cfg = cfg
        self.rank = rank
        self.exp_dir = Path(cfg.exp_dir)
        self.tokenizer = BpeTokenizer(cfg.bpe_model)
        num_layers = cfg.model.get("num_layers", ModelConfig(vocab_size=1).num_layers)
        # Checked before anything is built: an impossible grid fails here, not mid-training.
        subnets = parse_subnets(cfg.subnets or full_subnet(num_layers).name, num_layers)
        model_cfg = ModelConfig(
            use_transducer=cfg.use_transducer,
            use_ctc=cfg.use_ctc,
            **{
                **cfg.model,
                "vocab_size": self.tokenizer.vocab_size,
                "blank_id": self.tokenizer.blank_id,
                "norm_subnets": tuple(statistics_keys(subnets, num_layers)),
                "unfold_relax": max(max_occurrences(s.schedule(num_layers)) for s in subnets) - 1
                if cfg.unfold_relax
                else 0,
            },
        )
        torch.manual_seed(cfg.seed)
        self.model_cfg = model_cfg
        self.model = build_model(model_cfg, cfg.loss_backend)
        # Largest first by stored size, then by logical depth (unfolded subnets tie on size).
        sizes = {s.name: (subnet_footprint(self.model, s).stored_bits, s.depth) for s in subnets}
        self.plan = NestedPlan(
            subnets=tuple(order_by_size(subnets, lambda s: sizes[s.name])),
            policy=cfg.subnet_policy,
            sandwich_k=cfg.sandwich_k,
            loss_weights=parse_subnet_weights(cfg.subnet_loss_weights),
            draw_weights=parse_subnet_weights(cfg.subnet_draw_weights),
            distill=cfg.distill,
            distill_scale=cfg.distill_scale,
            student_label_scale=cfg.student_label_scale,
            distill_start=cfg.distill_start_batch,
            warmup=self._warmup_subnets(subnets, num_layers),
            warmup_batches=cfg.warmup_subnet_batches,
        )
        self.compression = Compression(
            CompressionConfig(**{f.name: getattr(cfg, f.name) for f in fields(CompressionConfig)}),
            self.model,
            lambda d: build_model(ModelConfig.from_dict(d)),
        )
        if self.compression.teacher is not None and not cfg.distill:
            raise ValueError(
                "--teacher-checkpoint needs --distill true (the teacher only provides KL targets)"
            )
        self.train_module: nn.Module = NestedLoss(self.model)
        self.train_seconds = 0.0  # training-loop wall time of finished epochs (validation excluded)
        # The same loop's CPU time (this process, all threads): comparable across runs that
        # shared the machine with others, where wall time is not.
        self.train_cpu_seconds = 0.0
        self._epoch_cpu_start: Optional[float] = None
        self._epoch_start: Optional[float] = None  # set while an epoch runs
        self.model_avg = copy.deepcopy(self.model) if rank == 0 else None
        self.optimizer = torch.optim.AdamW(
            self._param_groups(), lr=cfg.base_lr, betas=(0.9, 0.98), weight_decay=cfg.weight_decay
        )
        self.schedule = WarmupDecaySchedule(
            self.optimizer, cfg.base_lr, cfg.warmup_batches, cfg.lr_batches, cfg.lr_epochs
        )
        self.batch_idx_train = 0
        self.best_valid_loss = math.inf
        self.consecutive_bad = 0
        self.tb = None
        self.resume_epoch = cfg.start_epoch
        self.resume_skip = 0

    def _param_groups(self) -> List[Dict]:
        """One group of weights; bit-width logits apart (faster, no decay) when searching."""
        logits = [p for n, p in self.model.named_parameters() if n.endswith(".mp_logits")]
        if not logits:
            return [{"params": list(self.model.parameters())}]
        ids = {id(p) for p in logits}
        rest = [p for p in self.model.parameters() if id(p) not in ids]
        return [
            {"params": rest},
            {"params": logits, "lr_scale": self.cfg.mp_lr_scale, "weight_decay": 0.0},
        ]

    def _warmup_subnets(self, grid, num_layers: int) -> tuple:
        """The ``--warmup-subnet`` as a tuple (empty without one), checked against the model."""
        if not self.cfg.warmup_subnet:
            return ()
        parsed = parse_subnets(self.cfg.warmup_subnet, num_layers)
        if len(parsed) != 1:
            raise SubnetError(f"--warmup-subnet takes one subnet, got {[s.name for s in parsed]}")
        sub = parsed[0]
        names = {s.name for s in grid}
        if sub.name not in names and statistics_keys(grid, num_layers):
            raise SubnetError(
                f"--warmup-subnet {sub.name} is not in the grid ({', '.join(sorted(names))}), and this "
                "model keeps BatchNorm statistics per grid subnet: warm up one of them"
            )
        return (sub,)

    # ----------------------------------------------------------------- checkpoints
    def _plan_signature(self) -> Dict:
        """What defines the nested training objective; a resume must not change it."""
        p = self.plan
        return {
            "subnets": [s.name for s in p.subnets],
            "policy": p.effective_policy(),
            "sandwich_k": p.sandwich_k,
            "loss_weights": [list(w) for w in p.loss_weights],
            "draw_weights": [list(w) for w in p.draw_weights],
            "distill": p.distill,
            "distill_scale": p.distill_scale,
            "student_label_scale": p.student_label_scale,
            "distill_start": p.distill_start,
            "warmup": [s.name for s in p.warmup],
            "warmup_batches": p.warmup_batches,
            "compression": asdict(self.compression.cfg),
            "mp_lr_scale": self.cfg.mp_lr_scale,
        }

    def _state(self, epoch: int, batches_done: int) -> Dict:
        return {
            "model": _unwrap(self.model).state_dict(),
            "model_avg": self.model_avg.state_dict() if self.model_avg is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "sampler": {
                "epoch": epoch,
                "batches_done": batches_done,
                "seed": self.cfg.seed,
                "world_size": self.cfg.world_size,
                "max_duration": self.cfg.max_duration,
            },
            "rng": get_rng_state(),
            "batch_idx_train": self.batch_idx_train,
            "best_valid_loss": self.best_valid_loss,
            # A mid-epoch checkpoint also counts the part of the epoch already run.
            "train_seconds": self.train_seconds
            + (time.time() - self._epoch_start if self._epoch_start is not None else 0.0),
            "train_cpu_seconds": self.train_cpu_seconds
            + (time.process_time() - self._epoch_cpu_start if self._epoch_cpu_start is not None else 0.0),
            "nested_plan": self._plan_signature(),
            "subnets": [s.name for s in self.plan.subnets],
            "model_config": self.model_cfg.to_dict(),
            "train_config": self.cfg.to_dict(),
        }

    def _save(self, name: str, epoch: int, batches_done: int) -> None:
        if self.rank != 0:
            return
        path = save_checkpoint_atomic(self._state(epoch, batches_done), self.exp_dir / name)
        logging.info(f"saved {path}")

    def _prune_batch_checkpoints(self) -> None:
        ckpts = [self.exp_dir / f"checkpoint-{n}.pt" for n in numbered(self.exp_dir, "checkpoint")]
        for old in ckpts[: -self.cfg.keep_last_k] if self.cfg.keep_last_k > 0 else []:
            old.unlink()

    def _refuse_to_start_over(self) -> None:
        """A fresh start in a directory that holds a run's checkpoints would overwrite them
        one by one; name the flags that continue that run instead (the usual cause of a
        fresh start there is a forgotten one)."""
        flags = continuation_flags(self.exp_dir)
        if flags:
            raise ValueError(
                f"{self.exp_dir} already holds a run's checkpoints; training from scratch would "
                f"overwrite them. Continue that run with {' '.join(flags)} (a finished run also "
                "with a larger --num-epochs), or give another --exp-dir"
            )

    def resume(self) -> None:
        """Load the checkpoint named by ``--start-batch`` or ``--start-epoch``, if any."""
        cfg = self.cfg
        if cfg.start_batch > 0:
            path = self.exp_dir / f"checkpoint-{cfg.start_batch}.pt"
        elif cfg.start_epoch > 1:
            path = self.exp_dir / f"epoch-{cfg.start_epoch - 1}.pt"
        else:
            self._refuse_to_start_over()
            return
        state = load_checkpoint(path)
        # from_dict fills options added after the checkpoint was written with their defaults.
        if ModelConfig.from_dict(state["model_config"]).to_dict() != self.model_cfg.to_dict():
            raise ValueError(
                f"{path} was trained with model config {state['model_config']}, "
                f"but this run builds {self.model_cfg.to_dict()}"
            )
        saved_plan = state.get("nested_plan")
        if saved_plan is not None:
            saved_plan = complete_saved_plan(saved_plan)
        if saved_plan is not None and saved_plan != self._plan_signature():
            raise ValueError(
                f"{path} was trained with the nested plan {saved_plan}, but this run asks for "
                f"{self._plan_signature()}: give the same --subnets, --subnet-policy, --sandwich-k, "
                "--subnet-loss-weights, --subnet-draw-weights, distillation and compression flags to resume"
            )
        # The sampler keys are checked below with their own message; keys older runs lack are skipped.
        keys = [k for k in OPTIMISATION_KEYS if k not in ("world_size", "max_duration")]
        changed = config_differences(state.get("train_config") or {}, cfg.to_dict(), keys)
        changed = {k: v for k, v in changed.items() if v[0] is not None}
        if changed:
            what = ", ".join(f"--{k.replace('_', '-')} {a!r} (now {b!r})" for k, (a, b) in changed.items())
            raise ValueError(f"{path} was trained with {what}: resume with the same values")
        sampler = state["sampler"]
        for key in ("seed", "world_size", "max_duration"):
            if sampler[key] != getattr(cfg, key):
                raise ValueError(
                    f"{path}: resuming needs --{key.replace('_', '-')} {sampler[key]} "
                    f"(the data order depends on it), got {getattr(cfg, key)}"
                )
        self.model.load_state_dict(state["model"])
        if self.model_avg is not None and state["model_avg"] is not None:
            self.model_avg.load_state_dict(state["model_avg"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.batch_idx_train = state["batch_idx_train"]
        self.best_valid_loss = state["best_valid_loss"]
        self.train_seconds = state.get("train_seconds", 0.0)
        self.train_cpu_seconds = state.get("train_cpu_seconds", 0.0)
        self.resume_epoch = sampler["epoch"]
        self.resume_skip = sampler["batches_done"]
        if cfg.start_batch > 0 and cfg.start_epoch not in (1, self.resume_epoch):
            logging.warning(
                f"--start-epoch {cfg.start_epoch} ignored: {path} is in epoch {self.resume_epoch}"
            )
        # Restored just before the first step (see ``run``): building the data pipeline
        # may draw random numbers, which must not shift the saved streams.
        self._rng_to_restore = state["rng"]
        logging.info(
            f"resumed from {path}: epoch {self.resume_epoch}, {self.resume_skip} batches of it done, "
            f"global batch {self.batch_idx_train}"
        )

    # ----------------------------------------------------------------- steps
    def _finalise_compression(self) -> None:
        """Fix a mixed-precision search's bit map in the live and the averaged model."""
        models = [_unwrap(self.model)] + ([self.model_avg] if self.model_avg is not None else [])
        self.compression.finalise(models, self.exp_dir if self.rank == 0 else None)

    def _compute_loss(self, module: nn.Module, batch: Dict, train: bool):
        """Per-subnet losses ({name: {loss: (N,)}}), encoder frames (N,) and the batch inputs.

        Training runs the subnets the plan selects for this step (teacher first); validation
        runs the whole grid without distillation.
        """
        features, feature_lens, labels, cut_ids = batch_inputs(batch, self.tokenizer)
        if train and self.cfg.spec_augment:
            features = spec_augment(features, feature_lens, SpecAugmentConfig())
        subnets = self.plan.select(self.batch_idx_train, self.cfg.seed) if train else self.plan.subnets
        distill = train and self.plan.distills_at(self.batch_idx_train)
        loss_kwargs = dict(
            prune_range=self.cfg.prune_range, am_scale=self.cfg.am_scale, lm_scale=self.cfg.lm_scale
        )
        targets = None
        teacher = self.compression.teacher
        if distill and teacher is not None:
            with torch.no_grad():
                _, targets = teacher(
                    features,
                    feature_lens,
                    labels,
                    subnet=full_subnet(teacher.config.num_layers),
                    return_targets=True,
                    **loss_kwargs,
                )
        per_subnet = module(
            features,
            feature_lens,
            labels,
            subnets=subnets,
            distill=distill,
            teacher_targets=targets,
            **loss_kwargs,
        )
        frames = subsampled_lengths(feature_lens)
        return per_subnet, frames, (features, feature_lens, labels, cut_ids)

    def _loss_weights(self, train: bool) -> Dict[str, float]:
        """Weight of each head's loss at the current step (validation: after warm-up)."""
        step = self.batch_idx_train if train else self.cfg.warm_step
        s_scale, p_scale = transducer_loss_scales(step, self.cfg.warm_step, self.cfg.simple_loss_scale)
        return {"simple": s_scale, "pruned": p_scale, "ctc": self.cfg.ctc_loss_scale}

    def _combine(self, per_subnet: Dict[str, Dict[str, torch.Tensor]], train: bool):
        """Weighted per-utterance total (N,) with non-finite utterances zeroed, and the finite mask."""
        finite = torch.stack(
            [torch.isfinite(v.detach()) for losses in per_subnet.values() for v in losses.values()]
        ).all(0)
        # With an external teacher every subnet is a student.
        teacher_name = None if self.compression.teacher is not None else self.plan.teacher.name
        total = combine_subnet_losses(per_subnet, self._loss_weights(train), self.plan, teacher_name)
        return torch.where(finite, total, torch.zeros_like(total)), finite

    def _loss_breakdown(self, per_subnet: Dict[str, Dict[str, torch.Tensor]], finite: torch.Tensor):
        """Summed losses to log: per head for one subnet; per subnet (weighted label loss, KL) for a grid."""
        if len(self.plan.subnets) == 1:
            (losses,) = per_subnet.values()
            return {k: float(v.detach()[finite].sum()) for k, v in losses.items()}
        head_weights = self._loss_weights(train=True)
        out = {}
        for name, losses in per_subnet.items():
            label = sum(head_weights[k] * v.detach() for k, v in losses.items() if not k.startswith("kl"))
            out[name] = float(label[finite].sum())
            kl = [v.detach() for k, v in losses.items() if k.startswith("kl")]
            if kl:
                out[name + "/kl"] = float(sum(kl)[finite].sum())
        return out

    def _handle_bad(self, finite: torch.Tensor, inputs, epoch: int) -> None:
        features, feature_lens, labels, cut_ids = inputs
        bad = [cut_ids[i] for i in range(len(cut_ids)) if not bool(finite[i])]
        dump = self.exp_dir / "bad-batches" / f"batch-{self.batch_idx_train}-rank{self.rank}.pt"
        dump.parent.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "features": features,
                "feature_lens": feature_lens,
                "labels": labels,
                "cut_ids": cut_ids,
                "epoch": epoch,
            },
            dump,
        )
        logging.warning(
            f"non-finite loss at batch {self.batch_idx_train} for {len(bad)} utterances {bad}; "
            f"dropped them, batch saved to {dump}"
        )
        self.consecutive_bad += 1
        if self.consecutive_bad > self.cfg.max_consecutive_bad_batches:
            raise TooManyBadBatches(
                f"{self.consecutive_bad} consecutive batches had non-finite losses (last dump: {dump}); "
                "training has diverged: lower --base-lr or inspect the dumped batches"
            )

    def train_one_epoch(self, epoch: int, loader, valid_loader) -> None:
        cfg = self.cfg
        model = self.model
        model.train()
        skip = self.resume_skip if epoch == self.resume_epoch else 0
        tot: Dict[str, float] = {"loss": 0.0, "frames": 0.0, "audio": 0.0}
        t0 = self._epoch_start = time.time()
        self._epoch_cpu_start = time.process_time()
        for batch_idx, batch in enumerate(loader, start=skip):
            if cfg.max_batches_per_epoch and batch_idx >= cfg.max_batches_per_epoch:
                break
            self.batch_idx_train += 1
            self.schedule.step_batch(self.batch_idx_train)
            self.compression.before_step(_unwrap(model), self.batch_idx_train)
            per_subnet, frames, inputs = self._compute_loss(self.train_module, batch, train=True)
            per_utt, finite = self._combine(per_subnet, train=True)
            if not bool(finite.all()):
                self._handle_bad(finite, inputs, epoch)
            else:
                self.consecutive_bad = 0
            num_frames = all_reduce_sum(frames[finite].sum().float()).clamp(min=1.0)
            # Normalising by frames makes gradient clipping independent of the batch size.
            loss = per_utt.sum() / num_frames * cfg.world_size
            extra, extra_logs = self.compression.extra_loss(_unwrap(model))
            if extra is not None:
                loss = loss + extra
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.clip_grad_norm > 0:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad_norm)
            self.optimizer.step()

            if self.model_avg is not None and self.batch_idx_train % cfg.average_period == 0:
                update_running_average(
                    self.model_avg, _unwrap(model), self.batch_idx_train, cfg.average_period
                )
            if self.compression.finalises_after(self.batch_idx_train):
                self._finalise_compression()

            tot["loss"] += float(per_utt.detach().sum())
            n_frames = float(frames[finite].sum())
            for key, value in self._loss_breakdown(per_subnet, finite).items():
                # Per key, so a sandwich-sampled subnet is averaged over the steps that ran it.
                tot[key] = tot.get(key, 0.0) + value
                tot[key + "#frames"] = tot.get(key + "#frames", 0.0) + n_frames
            tot["frames"] += float(frames[finite].sum())
            tot["audio"] += float(inputs[1].sum()) * 0.01
            if self.rank == 0 and self.batch_idx_train % cfg.log_interval == 0:
                elapsed = time.time() - t0
                f = max(tot["frames"], 1.0)
                keys = [k for k in tot if k + "#frames" in tot]
                parts = ", ".join(f"{k} {tot[k] / max(tot[k + '#frames'], 1.0):.4f}" for k in keys)
                extras = "".join(f", {k} {v:.4f}" for k, v in extra_logs.items())
                logging.info(
                    f"epoch {epoch}, batch {batch_idx}, global {self.batch_idx_train}: "
                    f"loss/frame {tot['loss'] / f:.4f} ({parts}){extras}, lr {self.schedule.lr():.2e}, "
                    f"{tot['audio'] / elapsed:.1f} s audio/s"
                )
                if self.tb is not None:
                    self.tb.add_scalar("train/loss_per_frame", tot["loss"] / f, self.batch_idx_train)
                    for k in keys:
                        self.tb.add_scalar(
                            f"train/{k}_per_frame",
                            tot[k] / max(tot[k + "#frames"], 1.0),
                            self.batch_idx_train,
                        )
                    self.tb.add_scalar("train/lr", self.schedule.lr(), self.batch_idx_train)
                    self.tb.add_scalar(
                        "train/audio_sec_per_sec", tot["audio"] / elapsed, self.batch_idx_train
                    )
            if cfg.save_every_n > 0 and self.batch_idx_train % cfg.save_every_n == 0:
                self._save(f"checkpoint-{self.batch_idx_train}.pt", epoch, batch_idx + 1)
                if self.rank == 0:
                    self._prune_batch_checkpoints()
        elapsed = time.time() - t0
        self.train_seconds += elapsed
        self.train_cpu_seconds += time.process_time() - self._epoch_cpu_start
        self._epoch_cpu_start = None
        self._epoch_start = None
        if self.rank == 0:
            f = max(tot["frames"], 1.0)
            logging.info(
                f"epoch {epoch} done in {elapsed:.1f}s: train loss/frame {tot['loss'] / f:.4f}, "
                f"{tot['audio'] / max(elapsed, 1e-9):.1f} s audio/s"
            )

    @torch.no_grad()
    def validate(self, loader) -> Dict[str, float]:
        """Weighted loss per frame of each subnet on the validation set (summed over ranks)."""
        self.model.eval()
        names = [s.name for s in self.plan.subnets]
        tot = torch.zeros(len(names) + 1)
        head_weights = self._loss_weights(train=False)
        for batch in loader:
            per_subnet, frames, _ = self._compute_loss(_unwrap(self.train_module), batch, train=False)
            _, finite = self._combine(per_subnet, train=False)
            for i, name in enumerate(names):
                per_utt = sum(head_weights[k] * v for k, v in per_subnet[name].items())
                tot[i] += float(per_utt[finite].sum())
            tot[-1] += float(frames[finite].sum())
        self.model.train()
        tot = all_reduce_sum(tot)
        return {name: float(tot[i] / tot[-1].clamp(min=1.0)) for i, name in enumerate(names)}

    # ----------------------------------------------------------------- driver
    def run(self) -> None:
        cfg = self.cfg
        self._rng_to_restore = None
        self.resume()
        if cfg.world_size > 1:
            # Quantizer steps of bit-widths a step does not run (and sandwich-skipped
            # subnets' steps) get no gradient, so DDP must look for unused parameters.
            self.train_module = DDP(self.train_module, find_unused_parameters=True)
        if self.rank == 0 and cfg.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(log_dir=str(self.exp_dir / "tensorboard"))

        manifest_dir = Path(cfg.manifest_dir)
        train_cuts_all = load_cuts(manifest_dir / cfg.train_cuts)
        check_features_exist(train_cuts_all, str(manifest_dir / cfg.train_cuts))
        train_cuts, stats = filter_cuts(train_cuts_all, self.tokenizer)
        log_filter_stats(cfg.train_cuts, len(train_cuts_all), stats)
        if len(train_cuts) == 0:
            raise ValueError(f"{manifest_dir / cfg.train_cuts}: no usable training cuts after filtering")
        valid_cuts_all = load_cuts(manifest_dir / cfg.valid_cuts)
        check_features_exist(valid_cuts_all, str(manifest_dir / cfg.valid_cuts))
        valid_cuts, vstats = filter_cuts(valid_cuts_all, self.tokenizer)
        log_filter_stats(cfg.valid_cuts, len(valid_cuts_all), vstats)

        dm = AsrDataModule(
            cfg.max_duration, cfg.num_buckets, cfg.num_workers, cfg.seed, cfg.world_size, self.rank
        )
        sampler = dm.train_sampler(train_cuts)
        sorted_sampler = dm.sorted_sampler(train_cuts) if cfg.sortagrad_epochs > 0 else None
        valid_loader = dm.eval_dataloader(valid_cuts)
        num_params = sum(p.numel() for p in _unwrap(self.model).parameters())
        logging.info(f"model: {num_params / 1e6:.2f}M parameters; config {self.model_cfg.to_dict()}")
        logging.info(
            f"subnets (largest first): {[s.name for s in self.plan.subnets]}; policy "
            f"{self.plan.effective_policy()}, distill {self.plan.distill}"
        )
        if self.plan.draw_weights:
            chances = {s.name: round(self.plan.draw_probability(s.name), 3) for s in self.plan.draw_pool()}
            logging.info(f"chance of each drawn subnet per weighted draw: {chances}")

        mid_epoch_resume = self._rng_to_restore is not None and self.resume_skip > 0
        if self._rng_to_restore is not None:
            set_rng_state(self._rng_to_restore)
        for epoch in range(self.resume_epoch, cfg.num_epochs + 1):
            if not (mid_epoch_resume and epoch == self.resume_epoch):
                # Seeding per epoch makes a resume from epoch-N.pt match an uninterrupted run.
                torch.manual_seed(cfg.seed + epoch)
            self.schedule.step_epoch(epoch - 1)
            skip = self.resume_skip if epoch == self.resume_epoch else 0
            epoch_sampler = sorted_sampler if epoch <= cfg.sortagrad_epochs else sampler
            loader = dm.train_dataloader(epoch_sampler, epoch, skip)
            self.train_one_epoch(epoch, loader, valid_loader)
            if epoch == cfg.num_epochs:  # a search not finalised yet ends here
                self._finalise_compression()
            valid_losses = self.validate(valid_loader)
            valid_loss = sum(valid_losses.values()) / len(valid_losses)
            if self.rank == 0:
                per = (
                    ""
                    if len(valid_losses) == 1
                    else " (" + ", ".join(f"{k} {v:.4f}" for k, v in valid_losses.items()) + ")"
                )
                logging.info(f"epoch {epoch}: validation loss/frame {valid_loss:.4f}{per}")
                if self.tb is not None:
                    self.tb.add_scalar("valid/loss_per_frame", valid_loss, self.batch_idx_train)
                    for k, v in valid_losses.items():
                        if len(valid_losses) > 1:
                            self.tb.add_scalar(f"valid/{k}/loss_per_frame", v, self.batch_idx_train)
            improved = valid_loss < self.best_valid_loss
            self.best_valid_loss = min(self.best_valid_loss, valid_loss)
            self._save(f"epoch-{epoch}.pt", epoch + 1, 0)
            if improved and self.rank == 0:
                self._save("best-valid-loss.pt", epoch + 1, 0)
        if self.tb is not None:
            self.tb.close()
        if self.rank == 0:
            self._write_summary()
        logging.info("done")

    def _write_summary(self) -> None:
        """``train-summary.json``: cumulative training wall time (over resumes) and peak memory."""
        peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
        summary = {
            "train_seconds": round(self.train_seconds, 1),
            "train_cpu_seconds": round(self.train_cpu_seconds, 1),
            "peak_rss_mb_this_process": round(peak_rss_mb, 1),
            "batches": self.batch_idx_train,
            "subnets": [s.name for s in self.plan.subnets],
            "policy": self.plan.effective_policy(),
            "distill": self.plan.distill,
            "world_size": self.cfg.world_size,
            "threads": torch.get_num_threads(),
        }
        (self.exp_dir / "train-summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        logging.info(f"train-summary.json: {summary}")


def run_rank(rank: int, cfg: TrainConfig) -> None:
    """Entry point of one training process."""
    if cfg.world_size > 1:
        setup_dist(rank, cfg.world_size, cfg.master_port)
    setup_logger(Path(cfg.exp_dir) / "log" / "log-train", rank, cfg.world_size)
    logging.info(f"training config: {cfg.to_dict()}")
    try:
        Trainer(cfg, rank).run()
    finally:
        cleanup_dist()


def train(cfg: TrainConfig) -> None:
    """Run training on ``cfg.world_size`` processes (gloo on CPU, nccl on GPU)."""
    torch.set_num_threads(max(1, torch.get_num_threads() // cfg.world_size))
    if cfg.world_size > 1:
        torch.multiprocessing.spawn(run_rank, args=(cfg,), nprocs=cfg.world_size, join=True)
    else:
        run_rank(0, cfg)


def parse_model_overrides(pairs: Optional[List[str]]) -> Dict:
    """``["d_model=192", "num_layers=8"]`` -> dict with values typed as ``ModelConfig`` fields."""
    out: Dict = {}
    types = {k: type(v) for k, v in ModelConfig(vocab_size=1).to_dict().items()}
    for pair in pairs or []:
        key, _, value = pair.partition("=")
        if key not in types:
            raise ValueError(f"unknown model option {key!r}; valid: {sorted(types)}")
        if types[key] is bool:
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(f"model option {key} takes true/false, got {value!r}")
            out[key] = value.lower() in ("true", "1")
        else:
            out[key] = types[key](value)
    return out
