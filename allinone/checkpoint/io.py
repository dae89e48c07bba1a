"""Checkpoint files: atomic writes and reads that name the damaged file.

A checkpoint is written to a temporary file in the destination directory, flushed to
disk and renamed over the target, so a run killed at any moment leaves either the old
file or the new one, never a torn one. Loading reports truncated or corrupt files by path.
"""

import random
from pathlib import Path
from typing import Any, Dict

import numpy as np
import torch

from allinone.utils.atomic import write_atomic


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, truncated or corrupt."""


def save_checkpoint_atomic(state: Dict[str, Any], path) -> Path:
    """Write ``state`` (anything ``torch.save`` accepts) to ``path`` atomically; returns the path."""
    return write_atomic(path, lambda f: torch.save(state, f))


def load_checkpoint(path, map_location="cpu") -> Dict[str, Any]:
    """The raw dict of a checkpoint file (``read_record`` gives it typed).

    Raises:
        CheckpointError: naming ``path`` when it is missing, truncated or not a checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # torch raises several types for damaged zip archives
        raise CheckpointError(
            f"checkpoint {path} is truncated or corrupt ({type(e).__name__}: {e}); "
            "delete it and resume from an earlier one"
        ) from e
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"checkpoint {path} holds no model state (keys: {list(state)[:8]})")
    return state


def get_rng_state() -> Dict[str, Any]:
    """Every random generator a training step draws from (torch, numpy, python, and the
    current CUDA device's when CUDA is in use)."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    """Restore the generators captured by ``get_rng_state``."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
