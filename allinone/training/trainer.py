"""The transducer training loop: resumable, data-parallel, robust to bad batches.

The loop's collaborators each do one job: ``LossAssembler`` (the loss of a step),
``Compression`` (float start, teacher, quantizer annealing, bit budget),
``checkpointing`` (what a record holds and when a resume may use it), ``BadBatchGuard``
and ``EpochProgress`` (logging).
"""

import copy
import json
import logging
import math
import resource
import time
from pathlib import Path
from typing import Dict, List, Optional

import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP

from allinone.checkpoint.averaging import update_running_average
from allinone.checkpoint.io import get_rng_state, set_rng_state
from allinone.checkpoint.record import CheckpointRecord, SamplerPosition, read_record
from allinone.data.datamodule import (
    AsrDataModule,
    FilterStats,
    load_channel_copies,
    load_musan,
    load_training_cuts,
    log_filter_stats,
    sampler_settings,
)
from allinone.data.tokenizer import BpeTokenizer
from allinone.deploy.accounting import subnet_footprint
from allinone.nn.build import build_model
from allinone.subnet import SubnetError
from allinone.training.bad_batches import BadBatchGuard, TooManyBadBatches
from allinone.training.checkpointing import CheckpointWriter, check_resumable, plan_signature, resume_path
from allinone.training.compression import Compression
from allinone.training.config import TrainConfig
from allinone.training.grad_scale import make_grad_scaler, nudge_grad_scale
from allinone.training.nested import NestedLoss, NestedPlan, order_by_size, parse_subnet_weights
from allinone.training.param_groups import describe_groups, parameter_groups
from allinone.training.progress import EpochProgress, log_validation
from allinone.training.schedule import WarmupDecaySchedule
from allinone.training.step_losses import LossAssembler, global_frame_loss
from allinone.unfold import statistics_keys
from allinone.utils.device import amp_dtype, autocast
from allinone.utils.dist import all_reduce_sum, gather_objects

__all__ = ["Trainer", "TooManyBadBatches"]


# Seed offset between ranks: far apart, so no rank's epoch seeds meet another's.
RANK_SEED_STRIDE = 1_000_003


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, DDP) else model


class Trainer:
    """Runs ``TrainConfig`` on one process of a (possibly data-parallel) job."""

    def __init__(self, cfg: TrainConfig, rank: int = 0, device: Optional[torch.device] = None):
        self.cfg = cfg
        self.rank = rank
        self.device = device or torch.device("cpu")
        self.amp_dtype = amp_dtype(cfg.run.use_fp16, cfg.run.use_bf16)
        self.exp_dir = Path(cfg.run.exp_dir)
        self.tokenizer = BpeTokenizer(cfg.data.bpe_model)
        self._check_warmup()
        torch.manual_seed(cfg.run.seed)
        self.model = build_model(
            cfg.model_for(self.tokenizer.vocab_size, self.tokenizer.blank_id),
            cfg.grid,
            unfold_relax=cfg.nested.unfold_relax,
            loss_backend=cfg.loss.loss_backend,
        )
        self.model_cfg = self.model.config
        self.plan = self._plan()
        self.compression = Compression(cfg.compression, self.model)
        if self.compression.teacher is not None and not cfg.nested.distill:
            raise ValueError(
                "--teacher-checkpoint needs --distill true (the teacher only provides KL targets)"
            )
        if self.compression.teacher is not None:
            self.compression.teacher.to(self.device)
        self.losses = LossAssembler(cfg, self.plan, self.tokenizer, self.compression.teacher, self.device)
        self.train_module: nn.Module = NestedLoss(self.model)
        self.bad_batches = BadBatchGuard(self.exp_dir, rank, cfg.run.max_consecutive_bad_batches)
        self.writer = CheckpointWriter(self.exp_dir, rank, cfg.run.keep_last_k)
        # Training-loop wall and CPU time of finished epochs (validation excluded); CPU time
        # stays comparable across runs that shared the machine, where wall time does not.
        self.train_seconds = 0.0
        self.train_cpu_seconds = 0.0
        self._epoch_clock: Optional[tuple] = None  # (wall, cpu) start of the running epoch
        # The running average stays on the CPU (it is only read when saving), the live model
        # moves to the run's device before the optimizer is built on its parameters.
        self.model_avg = copy.deepcopy(self.model) if rank == 0 else None
        self.model.to(self.device)
        self.scaler = make_grad_scaler(self.device, enabled=cfg.run.use_fp16)
        self.optimizer = torch.optim.AdamW(
            self._param_groups(), lr=cfg.optim.base_lr, betas=(0.9, 0.98), weight_decay=cfg.optim.weight_decay
        )
        o = cfg.optim
        self.schedule = WarmupDecaySchedule(
            self.optimizer, o.base_lr, o.warmup_batches, o.lr_batches, o.lr_epochs
        )
        self.batch_idx_train = 0
        self.best_valid_loss = math.inf
        self.tb = None
        self.resume_epoch = cfg.run.start_epoch
        self.resume_skip = 0
        self._rng_to_restore = None
        self._saved_sampler_settings: Optional[Dict] = None
        self.train_sampler = None
        self.train_filter_stats = FilterStats()

    def _plan(self) -> NestedPlan:
        n = self.cfg.nested
        # Largest first by stored size, then by logical depth (unfolded subnets tie on size).
        sizes = {s.name: (subnet_footprint(self.model, s).stored_bits, s.depth) for s in self.cfg.grid}
        return NestedPlan(
            subnets=tuple(order_by_size(list(self.cfg.grid), lambda s: sizes[s.name])),
            policy=n.subnet_policy,
            sandwich_k=n.sandwich_k,
            loss_weights=parse_subnet_weights(n.subnet_loss_weights),
            draw_weights=parse_subnet_weights(n.subnet_draw_weights),
            distill=n.distill,
            distill_scale=n.distill_scale,
            student_label_scale=n.student_label_scale,
            distill_start=n.distill_start_batch,
            warmup=(self.cfg.warmup,) if self.cfg.warmup is not None else (),
            warmup_batches=n.warmup_subnet_batches,
            distill_students=self.cfg.distill_students,
        )

    def _check_warmup(self) -> None:
        """A warm-up subnet outside the grid has no BatchNorm statistics of its own to train."""
        sub, grid = self.cfg.warmup, self.cfg.grid
        names = {s.name for s in grid}
        if sub is not None and sub.name not in names and statistics_keys(grid, self.cfg.model.num_layers):
            raise SubnetError(
                f"--warmup-subnet {sub.name} is not in the grid ({', '.join(sorted(names))}), and this "
                "model keeps BatchNorm statistics per grid subnet: warm up one of them"
            )

    def _param_groups(self) -> List[Dict]:
        o = self.cfg.optim
        groups = parameter_groups(self.model, o.weight_decay, o.quantizer_weight_decay, o.mp_lr_scale)
        logging.info(f"optimizer groups: {describe_groups(groups)}")
        return groups

    # ----------------------------------------------------------------- checkpoints
    def _signature(self) -> Dict:
        return plan_signature(self.plan, self.compression.cfg, self.cfg.optim.mp_lr_scale)

    def _seconds_so_far(self) -> tuple:
        """(wall, cpu) training seconds, counting the part of a running epoch already done."""
        if self._epoch_clock is None:
            return self.train_seconds, self.train_cpu_seconds
        wall, cpu = self._epoch_clock
        return self.train_seconds + time.time() - wall, self.train_cpu_seconds + time.process_time() - cpu

    def _record(self, epoch: int, batches_done: int, rng_states: List[Dict]) -> CheckpointRecord:
        wall, cpu = self._seconds_so_far()
        cfg = self.cfg
        return CheckpointRecord(
            kind="train",
            model=_unwrap(self.model).state_dict(),
            model_avg=self.model_avg.state_dict() if self.model_avg is not None else None,
            model_config=self.model_cfg.to_dict(),
            subnets=[s.name for s in self.plan.subnets],
            batch_idx_train=self.batch_idx_train,
            average_period=cfg.optim.average_period,
            optimizer=self.optimizer.state_dict(),
            schedule=self.schedule.state_dict(),
            rng=rng_states[0],
            rng_other_ranks=rng_states[1:] or None,
            grad_scaler=self.scaler.state_dict() if self.scaler.is_enabled() else None,
            sampler=SamplerPosition(
                epoch,
                batches_done,
                cfg.run.seed,
                cfg.run.world_size,
                cfg.data.max_duration,
                sampler_settings(self.train_sampler) if self.train_sampler is not None else None,
            ),
            best_valid_loss=self.best_valid_loss,
            train_seconds=wall,
            train_cpu_seconds=cpu,
            nested_plan=self._signature(),
            train_config=cfg.to_flat_dict(),
            annealing=self.compression.annealing_at(self.batch_idx_train).to_dict(),
        )

    def _save(self, name: str, epoch: int, batches_done: int) -> None:
        """Write a record on rank 0; every rank calls it (each rank's RNG streams go in)."""
        rng_states = gather_objects(get_rng_state())
        if self.rank == 0:
            self.writer.save(name, self._record(epoch, batches_done, rng_states))

    def resume(self) -> None:
        """Load the checkpoint named by ``--start-batch`` or ``--start-epoch``, if any."""
        path = resume_path(self.cfg)
        if path is None:
            return
        rec = read_record(path)
        check_resumable(rec, self.cfg, self.model_cfg, self._signature())
        _unwrap(self.model).load_state_dict(rec.model)
        if self.model_avg is not None and rec.model_avg is not None:
            self.model_avg.load_state_dict(rec.model_avg)
        self.optimizer.load_state_dict(rec.optimizer)
        if rec.grad_scaler is not None and self.scaler.is_enabled():
            self.scaler.load_state_dict(rec.grad_scaler)
        self.schedule.load_state_dict(rec.schedule)
        self.batch_idx_train = rec.batch_idx_train
        self.best_valid_loss = rec.best_valid_loss
        self.train_seconds, self.train_cpu_seconds = rec.train_seconds or 0.0, rec.train_cpu_seconds or 0.0
        self.resume_epoch, self.resume_skip = rec.sampler.epoch, rec.sampler.batches_done
        if self.cfg.run.start_batch > 0 and self.cfg.run.start_epoch not in (1, self.resume_epoch):
            logging.warning(
                f"--start-epoch {self.cfg.run.start_epoch} ignored: {path} is in epoch {self.resume_epoch}"
            )
        # Restored just before the first step (see ``run``): building the data pipeline
        # may draw random numbers, which must not shift the saved streams.
        self._rng_to_restore = rec.rng
        if self.rank > 0:
            if rec.rng_other_ranks is not None and len(rec.rng_other_ranks) >= self.rank:
                self._rng_to_restore = rec.rng_other_ranks[self.rank - 1]
            else:
                logging.warning(
                    f"{path} holds rank 0's RNG streams only; rank {self.rank} continues with them"
                )
        self._saved_sampler_settings = rec.sampler.sampler_state
        logging.info(
            f"resumed from {path}: epoch {self.resume_epoch}, {self.resume_skip} batches of it done, "
            f"global batch {self.batch_idx_train}"
        )

    # ----------------------------------------------------------------- steps
    def _finalise_compression(self) -> None:
        """Fix a mixed-precision search's bit map in the live and the averaged model."""
        models = [_unwrap(self.model)] + ([self.model_avg] if self.model_avg is not None else [])
        self.compression.finalise(models, self.exp_dir if self.rank == 0 else None)

    def _train_step(self, batch: Dict, epoch: int) -> tuple:
        """One optimizer step on ``batch``.

        Returns:
            (``StepLosses``, per-utterance total (N,), finite mask (N,), extra values to log).
        """
        cfg = self.cfg
        self.batch_idx_train += 1
        step = self.batch_idx_train
        self.schedule.step_batch(step)
        annealing = self.compression.annealing_at(step)
        with autocast(self.device, self.amp_dtype):
            out = self.losses.compute(self.train_module, batch, step, train=True, annealing=annealing)
        per_utt, finite = self.losses.combine(out.per_subnet, step)
        self.bad_batches.check(finite, out.batch, out.labels, step, epoch)
        loss = global_frame_loss(per_utt, out.frames, finite, cfg.run.world_size)
        extra, extra_logs = self.compression.extra_loss(_unwrap(self.model))
        if extra is not None:
            loss = loss + extra
        self.optimizer.zero_grad(set_to_none=True)
        # Without --use-fp16 the scaler is a pass-through: plain backward and step.
        self.scaler.scale(loss).backward()
        if cfg.optim.clip_grad_norm > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), cfg.optim.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        grad_scale = nudge_grad_scale(self.scaler, step)
        if self.scaler.is_enabled():
            extra_logs = {**extra_logs, "grad_scale": grad_scale}
        if self.model_avg is not None and step % cfg.optim.average_period == 0:
            update_running_average(self.model_avg, _unwrap(self.model), step, cfg.optim.average_period)
        if self.compression.finalises_after(step):
            self._finalise_compression()
        return out, per_utt, finite, extra_logs

    def train_one_epoch(self, epoch: int, loader) -> None:
        cfg = self.cfg
        self.model.train()
        skip = self.resume_skip if epoch == self.resume_epoch else 0
        progress = EpochProgress()
        filter_before = FilterStats(**vars(self.train_filter_stats))
        self._epoch_clock = (progress.start, time.process_time())
        for batch_idx, batch in enumerate(loader, start=skip):
            if cfg.data.max_batches_per_epoch and batch_idx >= cfg.data.max_batches_per_epoch:
                break
            out, per_utt, finite, extra_logs = self._train_step(batch, epoch)
            progress.add(
                float(per_utt.detach().sum()),
                float(out.frames[finite].sum()),
                sum(out.batch.durations),  # seconds of audio: lens count samples for waveform models
                self.losses.breakdown(out.per_subnet, finite, self.batch_idx_train),
            )
            if self.rank == 0 and self.batch_idx_train % cfg.run.log_interval == 0:
                progress.log(epoch, batch_idx, self.batch_idx_train, self.schedule.lr(), extra_logs, self.tb)
            if cfg.run.save_every_n > 0 and self.batch_idx_train % cfg.run.save_every_n == 0:
                self._save(f"checkpoint-{self.batch_idx_train}.pt", epoch, batch_idx + 1)
        self.train_seconds, self.train_cpu_seconds = self._seconds_so_far()
        self._epoch_clock = None
        if self.rank == 0:
            # The training cuts are filtered as they stream past, so the counts are one pass's.
            log_filter_stats(
                f"{cfg.data.train_cuts} (epoch {epoch})", self.train_filter_stats.since(filter_before)
            )
            logging.info(
                f"epoch {epoch} done in {progress.elapsed():.1f}s: "
                f"train loss/frame {progress.loss_per_frame():.4f}, "
                f"{progress.audio_rate():.1f} s audio/s"
            )

    @torch.no_grad()
    def validate(self, loader) -> Dict[str, float]:
        """Weighted loss per frame of each subnet on the validation set (summed over ranks)."""
        self.model.eval()
        names = [s.name for s in self.plan.subnets]
        tot = torch.zeros(len(names) + 1)
        for batch in loader:
            with autocast(self.device, self.amp_dtype):
                out = self.losses.compute(
                    _unwrap(self.train_module), batch, self.batch_idx_train, train=False
                )
            _, finite = self.losses.combine(out.per_subnet, None)
            sums = self.losses.validation_sums(out.per_subnet, finite)
            for i, name in enumerate(names):
                tot[i] += sums[name]
            tot[-1] += float(out.frames[finite].sum())
        self.model.train()
        tot = all_reduce_sum(tot)
        return {name: float(tot[i] / tot[-1].clamp(min=1.0)) for i, name in enumerate(names)}

    # ----------------------------------------------------------------- driver
    def _data(self):
        """(data module, training sampler, sorted sampler or None, validation loader)."""
        cfg = self.cfg
        d = cfg.data
        train_cuts, self.train_filter_stats = load_training_cuts(
            d.manifest_dir, d.train_cuts, self.tokenizer, on_the_fly_feats=d.on_the_fly_feats or cfg.raw_audio
        )
        valid_cuts, _ = load_training_cuts(
            d.manifest_dir,
            d.valid_cuts,
            self.tokenizer,
            allow_empty=True,
            on_the_fly_feats=d.on_the_fly_feats or cfg.raw_audio,
        )
        copies, copy_names = load_channel_copies(d.manifest_dir, d.train_cuts, d.channel_copy_kinds)
        dm = AsrDataModule(
            d.max_duration,
            d.num_buckets,
            d.num_workers,
            cfg.run.seed,
            cfg.run.world_size,
            self.rank,
            on_the_fly_feats=d.on_the_fly_feats,
            perturb_speed=d.perturb_speed,
            musan=load_musan(d.musan_cuts) if d.enable_musan else None,
            raw_audio=cfg.raw_audio,
            channel_copies=copies,
            channel_copy_prob=d.channel_copy_prob,
            channel_copy_names=copy_names,
        )
        sorted_sampler = dm.sorted_sampler(train_cuts) if d.sortagrad_epochs > 0 else None
        self.train_sampler = dm.train_sampler(train_cuts)
        self._check_sampler_settings()
        return dm, self.train_sampler, sorted_sampler, dm.eval_dataloader(valid_cuts.to_eager())

    def _check_sampler_settings(self) -> None:
        """A resumed run's sampler must order the data as the checkpoint's did."""
        saved, now = self._saved_sampler_settings, sampler_settings(self.train_sampler)
        if saved is None:
            return
        changed = {k: (saved[k], now.get(k)) for k in saved if saved[k] != now.get(k)}
        if changed:
            what = ", ".join(f"{k} {a!r} (now {b!r})" for k, (a, b) in changed.items())
            raise ValueError(f"the checkpoint's training sampler had {what}: resume with the same data flags")

    def _log_start(self) -> None:
        num_params = sum(p.numel() for p in _unwrap(self.model).parameters())
        logging.info(f"model: {num_params / 1e6:.2f}M parameters; config {self.model_cfg.to_dict()}")
        precision = {None: "float32", torch.float16: "float16 autocast", torch.bfloat16: "bfloat16 autocast"}
        logging.info(f"device {self.device}, {precision[self.amp_dtype]}")
        logging.info(
            f"subnets (largest first): {[s.name for s in self.plan.subnets]}; policy "
            f"{self.plan.effective_policy()}, distill {self.plan.distill}"
        )
        if self.plan.draw_weights:
            chances = {s.name: round(self.plan.draw_probability(s.name), 3) for s in self.plan.draw_pool()}
            logging.info(f"chance of each drawn subnet per weighted draw: {chances}")

    def _end_epoch(self, epoch: int, valid_loader) -> None:
        if epoch == self.cfg.run.num_epochs:  # a search not finalised yet ends here
            self._finalise_compression()
        valid_losses = self.validate(valid_loader)
        valid_loss = sum(valid_losses.values()) / len(valid_losses)
        if self.rank == 0:
            log_validation(epoch, valid_losses, self.batch_idx_train, self.tb)
        improved = valid_loss < self.best_valid_loss
        self.best_valid_loss = min(self.best_valid_loss, valid_loss)
        self._save(f"epoch-{epoch}.pt", epoch + 1, 0)
        if improved:
            self._save("best-valid-loss.pt", epoch + 1, 0)

    def run(self) -> None:
        cfg = self.cfg
        self.resume()
        if cfg.run.world_size > 1:
            # Quantizer steps of bit-widths a step does not run (and sandwich-skipped
            # subnets' steps) get no gradient, so DDP must look for unused parameters.
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.train_module = DDP(self.train_module, device_ids=device_ids, find_unused_parameters=True)
        if self.rank == 0 and cfg.run.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(log_dir=str(self.exp_dir / "tensorboard"))
        dm, sampler, sorted_sampler, valid_loader = self._data()
        self._log_start()
        mid_epoch_resume = self._rng_to_restore is not None and self.resume_skip > 0
        if self._rng_to_restore is not None:
            set_rng_state(self._rng_to_restore)
        for epoch in range(self.resume_epoch, cfg.run.num_epochs + 1):
            if not (mid_epoch_resume and epoch == self.resume_epoch):
                # Seeding per epoch makes a resume from epoch-N.pt match an uninterrupted run;
                # the other ranks get their own streams (their SpecAugment masks differ).
                torch.manual_seed(cfg.run.seed + epoch + RANK_SEED_STRIDE * self.rank)
            self.schedule.step_epoch(epoch - 1)
            skip = self.resume_skip if epoch == self.resume_epoch else 0
            epoch_sampler = sorted_sampler if epoch <= cfg.data.sortagrad_epochs else sampler
            self.train_one_epoch(epoch, dm.train_dataloader(epoch_sampler, epoch, skip))
            self._end_epoch(epoch, valid_loader)
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
            "world_size": self.cfg.run.world_size,
            "threads": torch.get_num_threads(),
        }
        (self.exp_dir / "train-summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        logging.info(f"train-summary.json: {summary}")
