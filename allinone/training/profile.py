"""Where a transducer training step spends its time (wall clock, on the CPU or a GPU)."""

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import torch

from allinone.nn.model import Transducer
from allinone.utils.device import autocast


@dataclass
class StepTimes:
    """Accumulated seconds per part of the step, and the audio they covered."""

    audio_seconds: float = 0.0
    parts: Dict[str, float] = field(default_factory=dict)
    device: torch.device = torch.device("cpu")

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # GPU work is queued: wait for it before reading the clock

    @contextmanager
    def timed(self, name: str):
        self._sync()
        t0 = time.perf_counter()
        yield
        self._sync()
        self.parts[name] = self.parts.get(name, 0.0) + time.perf_counter() - t0


def profile_steps(
    model: Transducer,
    optimizer: torch.optim.Optimizer,
    batches: List[tuple],
    prune_range: int = 5,
    lm_scale: float = 0.25,
    am_scale: float = 0.0,
    dtype: Optional[torch.dtype] = None,
) -> StepTimes:
    """Time full training steps, then the transducer loss alone on the same batches.

    Args:
        model: the model, in train mode.
        optimizer: its optimizer (stepped, so pass a throw-away copy).
        batches: ``(features (N, T, F), feature_lens (N,), labels)`` tuples, on the model's device.
        dtype: autocast dtype of the step (None: float32); float16 steps go through a
            gradient scaler as in training.
    Returns:
        ``StepTimes`` with parts
        ``step``: forward + backward + optimizer step;
        ``loss_subgraph``: decoder, joiner and loss functions, forward + backward, on a
        detached encoder output;
        ``simple_loss``: trivial-joiner projections, smoothed simple loss with occupation
        gradients and prune ranges, forward + backward;
        ``pruned_loss``: pruning, joiner on the pruned lattice and the pruned loss,
        forward + backward.
    """
    device = next(model.parameters()).device
    out = StepTimes(device=device)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype is torch.float16)
    for features, feature_lens, labels in batches:
        out.audio_seconds += float(feature_lens.sum()) * 0.01

        with out.timed("step"):
            with autocast(device, dtype):
                losses = model(features, feature_lens, labels, prune_range, am_scale, lm_scale)
            optimizer.zero_grad()
            loss = (0.5 * losses["simple"] + losses["pruned"] + 0.2 * losses.get("ctc", 0.0)).sum()
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()

        with torch.no_grad(), autocast(device, dtype):
            enc, enc_lens = model.encode(features, feature_lens)
        enc.requires_grad_(True)
        with out.timed("loss_subgraph"):
            with autocast(device, dtype):
                simple, pruned = model.transducer_loss(enc, enc_lens, labels, prune_range, am_scale, lm_scale)
            (0.5 * simple + pruned).sum().backward()

        # The two loss stages alone, on a fixed encoder output and decoder output.
        enc = enc.detach().requires_grad_(True)
        with torch.no_grad():
            symbols, boundary, dec = model.lattice_inputs(enc_lens, labels)
        dec.requires_grad_(True)
        with out.timed("simple_loss"):
            with autocast(device, dtype):
                simple, ranges = model.simple_loss_and_ranges(
                    enc, dec, symbols, boundary, prune_range, am_scale, lm_scale
                )
            (0.5 * simple).sum().backward()
        with out.timed("pruned_loss"):
            with autocast(device, dtype):
                pruned = model.pruned_loss(enc, dec, symbols, boundary, ranges)
            pruned.sum().backward()
    return out
