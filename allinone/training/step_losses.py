"""The loss of one training (or validation) step: subnets run, heads weighted, bad utterances masked."""

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn

from allinone.data.augment import SpecAugmentConfig, spec_augment
from allinone.data.batch import AsrBatch, unpack_batch
from allinone.data.tokenizer import BpeTokenizer
from allinone.subnet import full_subnet
from allinone.training.config import TrainConfig
from allinone.training.nested import NestedPlan, combine_subnet_losses
from allinone.training.schedule import transducer_loss_scales
from allinone.utils.dist import all_reduce_sum

PerSubnet = Dict[str, Dict[str, torch.Tensor]]


def global_frame_loss(per_utt: torch.Tensor, frames: torch.Tensor, finite: torch.Tensor, world_size: int):
    """A step's loss to back-propagate: the utterances' summed loss over the encoder frames of
    the global batch (every rank's), times ``world_size``.

    DDP averages gradients over ranks, so ``world_size`` processes that each back-propagate
    this get the gradient one process would get from the whole global batch; dividing by
    frames makes gradient clipping independent of the batch size.

    Args:
        per_utt: (N,) weighted loss per utterance of this rank (non-finite ones zeroed).
        frames: (N,) encoder frames per utterance; finite: (N,) utterances that count.
        world_size: number of data-parallel processes.
    """
    num_frames = all_reduce_sum(frames[finite].sum().float()).clamp(min=1.0)
    return per_utt.sum() / num_frames * world_size


@dataclass
class StepLosses:
    """What one step computed.

    Attributes:
        per_subnet: {subnet name: {loss name: (N,)}}.
        frames: (N,) encoder frames per utterance.
        batch: the unpacked batch.
        labels: N token-id lists.
    """

    per_subnet: PerSubnet
    frames: torch.Tensor
    batch: AsrBatch
    labels: List[List[int]]


class LossAssembler:
    """Runs the subnets a step needs on a batch and weights their heads' losses.

    Args:
        cfg: the run's config (loss weights, pruning, augmentation, seed).
        plan: the nested plan (which subnets a step runs, distillation).
        tokenizer: turns transcripts into labels.
        teacher: a frozen external teacher (every subnet is then a student), or None.
        device: where the model runs; batches are moved there after augmentation (which
            draws its masks from the CPU generator, the stream a checkpoint saves).
    """

    def __init__(
        self,
        cfg: TrainConfig,
        plan: NestedPlan,
        tokenizer: BpeTokenizer,
        teacher: Optional[nn.Module],
        device: Optional[torch.device] = None,
    ):
        self.cfg = cfg
        self.plan = plan
        self.tokenizer = tokenizer
        self.teacher = teacher
        self.device = device or torch.device("cpu")

    def _loss_kwargs(self) -> Dict:
        loss = self.cfg.loss
        return dict(prune_range=loss.prune_range, am_scale=loss.am_scale, lm_scale=loss.lm_scale)

    def compute(
        self, module: nn.Module, raw_batch: Dict, step: int, train: bool, annealing=None
    ) -> StepLosses:
        """Per-subnet losses of a lhotse batch.

        Training runs the subnets the plan selects for ``step`` (teacher first); validation
        runs the whole grid without distillation or augmentation.
        """
        batch = unpack_batch(raw_batch)
        labels = self.tokenizer.encode_batch(batch.texts, batch.cut_ids)
        features = batch.features
        if train and self.cfg.data.spec_augment and not self.cfg.raw_audio:
            features = spec_augment(features, batch.feature_lens, SpecAugmentConfig())
        features = features.to(self.device, non_blocking=True)
        feature_lens = batch.feature_lens.to(self.device)
        subnets = self.plan.select(step, self.cfg.run.seed) if train else self.plan.subnets
        distill = train and self.plan.distills_at(step)
        targets = None
        if distill and self.teacher is not None:
            with torch.no_grad():
                _, targets = self.teacher(
                    features,
                    feature_lens,
                    labels,
                    subnet=full_subnet(self.teacher.config.num_layers),
                    return_targets=True,
                    **self._loss_kwargs(),
                )
        per_subnet = module(
            features,
            feature_lens,
            labels,
            subnets=subnets,
            distill=distill,
            teacher_targets=targets,
            annealing=annealing,
            students=self.plan.distill_students or None,
            **self._loss_kwargs(),
        )
        # Loss per encoder frame: the model's own frame rate (waveform encoders count samples in).
        inner = getattr(module, "module", module)  # under DistributedDataParallel
        model = getattr(inner, "model", inner)
        return StepLosses(per_subnet, model.encoder.output_lengths(feature_lens), batch, labels)

    def head_weights(self, step: Optional[int]) -> Dict[str, float]:
        """Weight of each head's loss at ``step`` (None: validation, i.e. after warm-up)."""
        loss = self.cfg.loss
        at = loss.warm_step if step is None else step
        s_scale, p_scale = transducer_loss_scales(at, loss.warm_step, loss.simple_loss_scale)
        return {"simple": s_scale, "pruned": p_scale, "ctc": loss.ctc_loss_scale}

    def combine(self, per_subnet: PerSubnet, step: Optional[int]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Weighted per-utterance total (N,) with non-finite utterances zeroed, and the finite mask (N,)."""
        finite = torch.stack(
            [torch.isfinite(v.detach()) for losses in per_subnet.values() for v in losses.values()]
        ).all(0)
        # With an external teacher every subnet is a student.
        teacher_name = None if self.teacher is not None else self.plan.teacher.name
        total = combine_subnet_losses(per_subnet, self.head_weights(step), self.plan, teacher_name)
        return torch.where(finite, total, torch.zeros_like(total)), finite

    def breakdown(self, per_subnet: PerSubnet, finite: torch.Tensor, step: int) -> Dict[str, float]:
        """Summed losses to log: per head for one subnet; per subnet (label loss weighted as at
        ``step``, KL) for a grid."""
        if len(self.plan.subnets) == 1:
            (losses,) = per_subnet.values()
            return {k: float(v.detach()[finite].sum()) for k, v in losses.items()}
        weights = self.head_weights(step)
        out = {}
        for name, losses in per_subnet.items():
            label = sum(weights[k] * v.detach() for k, v in losses.items() if not k.startswith("kl"))
            out[name] = float(label[finite].sum())
            kl = [v.detach() for k, v in losses.items() if k.startswith("kl")]
            if kl:
                out[name + "/kl"] = float(sum(kl)[finite].sum())
        return out

    def validation_sums(self, per_subnet: PerSubnet, finite: torch.Tensor) -> Dict[str, float]:
        """Weighted loss summed over the finite utterances, per subnet (validation)."""
        weights = self.head_weights(None)
        return {
            name: float(sum(weights[k] * v for k, v in losses.items())[finite].sum())
            for name, losses in per_subnet.items()
        }
