"""Start a training run: one process, ``--world-size`` processes spawned here, or under torchrun.

- One process: ``train.py ...``.
- N processes on this machine: ``train.py --world-size N ...`` (spawned; rendezvous on
  127.0.0.1:``--master-port``).
- torchrun, on one or several machines: ``torchrun --nproc-per-node G [--nnodes M
  --node-rank R --rdzv-backend c10d --rdzv-endpoint HOST:PORT] train.py ...``; the job's
  size and each process's rank come from torchrun's environment (``allinone.utils.dist``).

Each process computes on ``--device`` (the GPU of its local rank for CUDA) and uses its
share of the machine's cores (``threads_per_process``), set inside that process: a
spawned child starts with torch's default of one thread per core, so without it every
rank runs as many compute threads as the machine has cores, and on a CPU-only machine
the ranks' busy-waiting threads then fight over the same cores.
"""

import logging
from dataclasses import replace
from pathlib import Path

import torch

from allinone.training.config import TrainConfig
from allinone.training.trainer import Trainer
from allinone.utils.device import resolve_device
from allinone.utils.dist import cleanup_dist, setup_dist, torchrun_env
from allinone.utils.log import setup_logger


def threads_per_process(world_size: int, cores: int) -> int:
    """Compute threads of each of ``world_size`` processes sharing ``cores`` cores (at least 1)."""
    return max(1, cores // max(1, world_size))


def run_rank(
    rank: int, cfg: TrainConfig, threads: int, local_rank: int = None, from_env: bool = False
) -> None:
    """Entry point of one training process, computing with ``threads`` threads.

    Args:
        rank: global rank; local_rank: rank on this machine (default: ``rank``).
        from_env: started by torchrun (the process group meets through its environment).
    """
    torch.set_num_threads(threads)
    local_rank = rank if local_rank is None else local_rank
    world_size = cfg.run.world_size
    device = resolve_device(cfg.run.device, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world_size > 1:
        setup_dist(rank, world_size, cfg.run.master_port, device=device, from_env=from_env)
    setup_logger(Path(cfg.run.exp_dir) / "log" / "log-train", rank, world_size)
    logging.info(f"training config: {cfg.to_flat_dict()}")
    logging.info(f"rank {rank} of {world_size} on {device}: {torch.get_num_threads()} compute threads")
    try:
        Trainer(cfg, rank, device).run()
    finally:
        cleanup_dist()


def train(cfg: TrainConfig) -> None:
    """Run training: under torchrun when it started this process, else ``cfg.run.world_size``
    processes on this machine (gloo on CPU, nccl on GPU)."""
    # torch's own count: the cores, or OMP_NUM_THREADS when the user (or torchrun) set it.
    cores = torch.get_num_threads()
    env = torchrun_env()
    if env is not None:
        if cfg.run.world_size not in (1, env.world_size):
            raise ValueError(
                f"--world-size {cfg.run.world_size} under torchrun, whose job has WORLD_SIZE "
                f"{env.world_size}: leave --world-size out (torchrun's --nproc-per-node/--nnodes set it)"
            )
        cfg = replace(cfg, run=replace(cfg.run, world_size=env.world_size))
        run_rank(env.rank, cfg, threads_per_process(env.local_world_size, cores), env.local_rank, True)
        return
    threads = threads_per_process(cfg.run.world_size, cores)
    if cfg.run.world_size > 1:
        torch.multiprocessing.spawn(run_rank, args=(cfg, threads), nprocs=cfg.run.world_size, join=True)
    else:
        run_rank(0, cfg, threads)
