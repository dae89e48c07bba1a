"""Learning-rate and loss-scale schedules."""

from typing import Dict, Tuple

import torch


class WarmupDecaySchedule:
    """Linear warm-up, then a smooth power-law decay in both batches and epochs.

    lr = base_lr * min(1, step / warmup_batches)
             * ((step^2 + B^2) / B^2)^-0.25 * ((epoch^2 + E^2) / E^2)^-0.25

    with B = ``lr_batches`` and E = ``lr_epochs``: the rate stays near ``base_lr`` for
    the first B batches / E epochs and then falls as step^-0.5 (and epoch^-0.5).

    Args:
        optimizer: optimizer whose groups' ``lr`` is set on every call (times the group's
            ``lr_scale`` when it has one).
        base_lr: peak learning rate.
        warmup_batches: linear warm-up length.
        lr_batches, lr_epochs: decay knees.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        base_lr: float,
        warmup_batches: int = 200,
        lr_batches: float = 1500.0,
        lr_epochs: float = 6.0,
    ):
        self.optimizer = optimizer
        self.base_lr = base_lr
        self.warmup_batches = warmup_batches
        self.lr_batches = lr_batches
        self.lr_epochs = lr_epochs
        self.batch = 0
        self.epoch = 0
        self._apply()

    def lr(self) -> float:
        warm = min(1.0, (self.batch + 1) / max(1, self.warmup_batches))
        b = ((self.batch**2 + self.lr_batches**2) / self.lr_batches**2) ** -0.25
        e = ((self.epoch**2 + self.lr_epochs**2) / self.lr_epochs**2) ** -0.25
        return self.base_lr * warm * b * e

    def _apply(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr() * group.get("lr_scale", 1.0)

    def step_batch(self, batch: int) -> None:
        """Set the rate for global batch index ``batch``."""
        self.batch = batch
        self._apply()

    def step_epoch(self, epoch: int) -> None:
        """Set the rate for (0-based completed) ``epoch``."""
        self.epoch = epoch
        self._apply()

    def state_dict(self) -> Dict[str, float]:
        return {"batch": self.batch, "epoch": self.epoch}

    def load_state_dict(self, state: Dict[str, float]) -> None:
        self.batch, self.epoch = state["batch"], state["epoch"]
        self._apply()


def transducer_loss_scales(step: int, warm_step: int, simple_loss_scale: float) -> Tuple[float, float]:
    """Weights of the simple and pruned losses during warm-up.

    The pruned loss relies on ranges chosen by the simple loss, which are meaningless
    at initialisation; so training starts on the simple loss alone (weight 1, pruned
    weight 0.1) and moves linearly to (``simple_loss_scale``, 1) over ``warm_step`` batches.

    Returns:
        (simple_scale, pruned_scale).
    """
    if step >= warm_step:
        return simple_loss_scale, 1.0
    frac = step / warm_step
    return 1.0 - frac * (1.0 - simple_loss_scale), 0.1 + 0.9 * frac
