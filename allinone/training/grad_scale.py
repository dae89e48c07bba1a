"""The fp16 gradient scaler and the schedule that keeps its scale healthy.

``torch.amp.GradScaler`` halves the scale whenever a step's gradients overflow and skips
that step. Started at 1.0 (the gradients of these losses are small) and left alone, its
own doubling every 2000 clean steps recovers slowly after a burst of overflows; so, as
k2-based recipes do, the scale is also nudged up on a schedule while it is small, and a
scale that keeps collapsing stops the run with an error instead of training on skipped
steps.
"""

import logging

import torch

# The scale starts here; growth is checked every CHECK_EVERY batches.
INIT_SCALE = 1.0
CHECK_EVERY = 100
# Below this the scale is doubled at every check; below RARE_LIMIT every RARE_EVERY batches.
FAST_LIMIT = 8.0
RARE_LIMIT = 32.0
RARE_EVERY = 400
WARN_BELOW = 0.01
FAIL_BELOW = 1e-5


class GradScaleCollapsed(RuntimeError):
    """The fp16 gradient scale fell below ``FAIL_BELOW``: the gradients keep overflowing."""


def make_grad_scaler(device: torch.device, enabled: bool) -> torch.amp.GradScaler:
    """A scaler for ``--use-fp16`` (disabled: a pass-through, bit-identical to no scaler)."""
    return torch.amp.GradScaler(device.type, init_scale=INIT_SCALE, enabled=enabled)


def nudge_grad_scale(scaler: torch.amp.GradScaler, batch_idx_train: int) -> float:
    """Grow a small scale on schedule; warn when it is tiny and raise when it has collapsed.

    Call after ``scaler.update()``. Returns the current scale (1.0 when disabled).

    Raises:
        GradScaleCollapsed: naming the batch and the scale.
    """
    if not scaler.is_enabled() or batch_idx_train % CHECK_EVERY != 0:
        return scaler.get_scale() if scaler.is_enabled() else 1.0
    scale = scaler.get_scale()
    if scale < FAST_LIMIT or (scale < RARE_LIMIT and batch_idx_train % RARE_EVERY == 0):
        scaler.update(scale * 2.0)
    if scale < FAIL_BELOW:
        raise GradScaleCollapsed(
            f"fp16 gradient scale {scale:.2e} at batch {batch_idx_train}: the gradients overflow at every "
            "step. Resume from the last checkpoint with --use-bf16 true (or without --use-fp16), or "
            "with a lower --base-lr"
        )
    if scale < WARN_BELOW:
        logging.warning(f"fp16 gradient scale is small: {scale:.2e} at batch {batch_idx_train}")
    return scale
