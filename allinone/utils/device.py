"""Where a run computes and in which precision: ``--device`` and ``--use-fp16`` / ``--use-bf16``.

Autocast runs matrix products and convolutions in half precision; parameters, the
optimizer state and everything this repository keeps float32 on purpose (the transducer
and CTC losses, quantizer step sizes, GQ centroids, bit-width logits) stay float32.
"""

import contextlib
from typing import Optional

import torch

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """The device of ``--device name`` for the process with ``local_rank`` on its machine.

    ``auto`` is ``cuda:<local_rank>`` when CUDA is available, else the CPU.

    Raises:
        ValueError: for an unknown name, or ``cuda`` on a machine where torch sees no GPU.
    """
    if name not in DEVICES:
        raise ValueError(f"--device {name!r}: choose from {DEVICES}")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError("--device cuda: torch sees no CUDA device here (torch.cuda.is_available() is False)")
    if local_rank >= torch.cuda.device_count():
        raise ValueError(
            f"local rank {local_rank} has no GPU: this machine has {torch.cuda.device_count()} "
            "(start at most that many processes per machine)"
        )
    return torch.device("cuda", local_rank)


def amp_dtype(use_fp16: bool, use_bf16: bool) -> Optional[torch.dtype]:
    """The autocast dtype of ``--use-fp16`` / ``--use-bf16`` (None: float32 throughout)."""
    if use_fp16 and use_bf16:
        raise ValueError("--use-fp16 and --use-bf16 exclude each other: choose one")
    if use_fp16:
        return torch.float16
    if use_bf16:
        return torch.bfloat16
    return None


def autocast(device: torch.device, dtype: Optional[torch.dtype]):
    """``torch.autocast`` on ``device`` in ``dtype``; a no-op context for float32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def float32_region(device_type: str):
    """A region where autocast is off, so what runs inside computes in float32 (the losses,
    the quantizers); its inputs still have to be cast with ``.float()``."""
    return torch.autocast(device_type=device_type, enabled=False)
