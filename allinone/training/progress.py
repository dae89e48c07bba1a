"""Running loss totals of an epoch, for the log lines and tensorboard."""

import logging
import time
from typing import Dict, Optional


class EpochProgress:
    """Loss and frame totals since the start of an epoch, per logged key.

    Each key keeps its own frame count, so a subnet a sandwich step did not run is
    averaged over the steps that ran it.
    """

    def __init__(self) -> None:
        self.start = time.time()
        self.loss = 0.0
        self.frames = 0.0
        self.audio_seconds = 0.0
        self.per_key: Dict[str, float] = {}
        self.key_frames: Dict[str, float] = {}

    def add(self, loss: float, frames: float, audio_seconds: float, breakdown: Dict[str, float]) -> None:
        self.loss += loss
        self.frames += frames
        self.audio_seconds += audio_seconds
        for key, value in breakdown.items():
            self.per_key[key] = self.per_key.get(key, 0.0) + value
            self.key_frames[key] = self.key_frames.get(key, 0.0) + frames

    def elapsed(self) -> float:
        return max(time.time() - self.start, 1e-9)

    def loss_per_frame(self) -> float:
        return self.loss / max(self.frames, 1.0)

    def key_losses(self) -> Dict[str, float]:
        return {k: v / max(self.key_frames[k], 1.0) for k, v in self.per_key.items()}

    def audio_rate(self) -> float:
        """Seconds of audio trained per second of wall time."""
        return self.audio_seconds / self.elapsed()

    def log(
        self, epoch: int, batch_idx: int, step: int, lr: float, extras: Dict[str, float], tb=None
    ) -> None:
        """One log line (and tensorboard scalars when ``tb`` is given)."""
        parts = ", ".join(f"{k} {v:.4f}" for k, v in self.key_losses().items())
        more = "".join(f", {k} {v:.4f}" for k, v in extras.items())
        logging.info(
            f"epoch {epoch}, batch {batch_idx}, global {step}: loss/frame {self.loss_per_frame():.4f} "
            f"({parts}){more}, lr {lr:.2e}, {self.audio_rate():.1f} s audio/s"
        )
        if tb is None:
            return
        tb.add_scalar("train/loss_per_frame", self.loss_per_frame(), step)
        for k, v in self.key_losses().items():
            tb.add_scalar(f"train/{k}_per_frame", v, step)
        tb.add_scalar("train/lr", lr, step)
        tb.add_scalar("train/audio_sec_per_sec", self.audio_rate(), step)


def log_validation(epoch: int, losses: Dict[str, float], step: int, tb: Optional[object] = None) -> None:
    """Log the per-subnet validation losses and their mean (what "best" is judged on)."""
    mean = sum(losses.values()) / len(losses)
    per = "" if len(losses) == 1 else " (" + ", ".join(f"{k} {v:.4f}" for k, v in losses.items()) + ")"
    logging.info(f"epoch {epoch}: validation loss/frame {mean:.4f}{per}")
    if tb is not None:
        tb.add_scalar("valid/loss_per_frame", mean, step)
        if len(losses) > 1:
            for k, v in losses.items():
                tb.add_scalar(f"valid/{k}/loss_per_frame", v, step)
