"""Start a training run: one process, or ``--world-size`` processes spawned on this machine.

Each process uses its share of the machine's cores (``threads_per_process``), set inside
that process: a spawned child starts with torch's default of one thread per core, so
without it every rank runs as many compute threads as the machine has cores, and on a
CPU-only machine the ranks' busy-waiting threads then fight over the same cores.
"""

import logging
from pathlib import Path

import torch

from allinone.training.config import TrainConfig
from allinone.training.trainer import Trainer
from allinone.utils.dist import cleanup_dist, setup_dist
from allinone.utils.log import setup_logger


def threads_per_process(world_size: int, cores: int) -> int:
    """Compute threads of each of ``world_size`` processes sharing ``cores`` cores (at least 1)."""
    return max(1, cores // max(1, world_size))


def run_rank(rank: int, cfg: TrainConfig, threads: int) -> None:
    """Entry point of one training process, computing with ``threads`` threads."""
    torch.set_num_threads(threads)
    world_size = cfg.run.world_size
    if world_size > 1:
        setup_dist(rank, world_size, cfg.run.master_port)
    setup_logger(Path(cfg.run.exp_dir) / "log" / "log-train", rank, world_size)
    logging.info(f"training config: {cfg.to_flat_dict()}")
    logging.info(f"rank {rank} of {world_size}: {torch.get_num_threads()} compute threads")
    try:
        Trainer(cfg, rank).run()
    finally:
        cleanup_dist()


def train(cfg: TrainConfig) -> None:
    """Run training on ``cfg.run.world_size`` processes (gloo on CPU, nccl on GPU)."""
    # torch's own count: the cores, or OMP_NUM_THREADS when the user set it.
    threads = threads_per_process(cfg.run.world_size, torch.get_num_threads())
    if cfg.run.world_size > 1:
        torch.multiprocessing.spawn(run_rank, args=(cfg, threads), nprocs=cfg.run.world_size, join=True)
    else:
        run_rank(0, cfg, threads)
