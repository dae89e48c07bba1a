"""Process groups for data-parallel training: spawned on one machine, or started by torchrun.

Two ways to start N processes:

- ``--world-size N``: ``train.py`` spawns N processes on this machine; they meet at
  127.0.0.1:``--master-port``.
- ``torchrun`` (one or several machines): torchrun starts the processes and sets ``RANK``,
  ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``;
  the group is joined through ``env://``.

The backend follows the device: nccl for CUDA, gloo for the CPU.
"""

import os
from dataclasses import dataclass
from typing import Any, List, Optional

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistEnv:
    """This process's place in a torchrun job.

    Attributes:
        rank: global rank; world_size: processes in the job (all machines).
        local_rank: rank on this machine (its GPU index); local_world_size: processes on this machine.
    """

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int


def torchrun_env() -> Optional[DistEnv]:
    """The job torchrun started this process in, or None when torchrun did not start it.

    Raises:
        ValueError: when only some of torchrun's variables are set (naming the missing ones).
    """
    names = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
    present = [n for n in names if n in os.environ]
    if not present:
        return None
    missing = [n for n in names if n not in os.environ]
    if missing:
        raise ValueError(f"torchrun environment incomplete: {present} set but {missing} missing")
    world_size = int(os.environ["WORLD_SIZE"])
    return DistEnv(
        rank=int(os.environ["RANK"]),
        world_size=world_size,
        local_rank=int(os.environ["LOCAL_RANK"]),
        local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", world_size)),
    )


def backend_for(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def setup_dist(
    rank: int,
    world_size: int,
    master_port: int = 12354,
    device: Optional[torch.device] = None,
    from_env: bool = False,
) -> None:
    """Join the process group as ``rank`` of ``world_size``.

    Args:
        master_port: rendezvous port of a spawned job on this machine (torchrun sets its own).
        device: this process's device; picks the backend (default: the CPU, gloo).
        from_env: the job was started by torchrun (``env://`` rendezvous).
    """
    backend = backend_for(device or torch.device("cpu"))
    if not from_env:
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(master_port))
    kwargs = {"device_id": device} if device is not None and device.type == "cuda" else {}
    dist.init_process_group(backend, init_method="env://", rank=rank, world_size=world_size, **kwargs)


def cleanup_dist() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over ranks (identity without a process group); returned on ``t``'s device.

    nccl reduces CUDA tensors only, so under nccl a CPU tensor makes the trip through the GPU.
    """
    if not is_distributed():
        return t
    on = t.device
    work = t.clone()
    if dist.get_backend() == "nccl" and on.type != "cuda":
        work = work.to(torch.device("cuda", torch.cuda.current_device()))
    dist.all_reduce(work)
    return work.to(on)


def gather_objects(obj: Any) -> List[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` without a process group)."""
    if not is_distributed():
        return [obj]
    out: List[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out
