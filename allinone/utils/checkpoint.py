"""Atomic, resumable checkpoints.

A checkpoint is written to a temporary file in the destination directory, flushed to
disk and renamed over the target, so a run killed at any moment leaves either the old
file or the new one, never a torn one. Loading reports truncated or corrupt files by path.
"""

import os
import random
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, Dict, List, Optional

import numpy as np
import torch


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, truncated or corrupt."""


def write_atomic(path, write: Callable[[BinaryIO], None]) -> Path:
    """Create ``path`` through ``write(f)`` on a temporary file, then fsync and rename.

    A crash or an exception in ``write`` leaves the previous ``path`` (if any) untouched
    and no temporary file behind.

    Args:
        path: destination file.
        write: fills the open binary file it is given.
    Returns:
        The destination path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    # Make the rename itself durable.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def save_checkpoint_atomic(state: Dict[str, Any], path) -> Path:
    """Write ``state`` (anything ``torch.save`` accepts) to ``path`` atomically; returns the path."""
    return write_atomic(path, lambda f: torch.save(state, f))


def load_checkpoint(path, map_location="cpu") -> Dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint_atomic``.

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
    """Every random generator a training step draws from (torch, numpy, python)."""
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def set_rng_state(state: Dict[str, Any]) -> None:
    """Restore the generators captured by ``get_rng_state``."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def average_state_dicts(paths: List[Path]) -> Dict[str, torch.Tensor]:
    """Element-wise mean of the ``model`` weights of several checkpoints.

    Integer buffers are taken from the last checkpoint unchanged.
    """
    if not paths:
        raise CheckpointError("no checkpoints to average")
    avg: Optional[Dict[str, torch.Tensor]] = None
    for p in paths:
        sd = load_checkpoint(p)["model"]
        if avg is None:
            avg = {k: v.clone().double() if v.is_floating_point() else v.clone() for k, v in sd.items()}
            continue
        for k, v in sd.items():
            if v.is_floating_point():
                avg[k] += v.double()
            else:
                avg[k] = v.clone()
    for k, v in avg.items():
        if v.is_floating_point():
            avg[k] = (v / len(paths)).float()
    return avg
