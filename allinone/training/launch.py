"""Start a training run: one process, or ``--world-size`` processes spawned on this machine."""

import logging
from pathlib import Path

import torch

from allinone.training.config import TrainConfig
from allinone.training.trainer import Trainer
from allinone.utils.dist import cleanup_dist, setup_dist
from allinone.utils.log import setup_logger


def run_rank(rank: int, cfg: TrainConfig) -> None:
    """Entry point of one training process."""
    world_size = cfg.run.world_size
    if world_size > 1:
        setup_dist(rank, world_size, cfg.run.master_port)
    setup_logger(Path(cfg.run.exp_dir) / "log" / "log-train", rank, world_size)
    logging.info(f"training config: {cfg.to_flat_dict()}")
    try:
        Trainer(cfg, rank).run()
    finally:
        cleanup_dist()


def train(cfg: TrainConfig) -> None:
    """Run training on ``cfg.run.world_size`` processes (gloo on CPU, nccl on GPU)."""
    torch.set_num_threads(max(1, torch.get_num_threads() // cfg.run.world_size))
    if cfg.run.world_size > 1:
        torch.multiprocessing.spawn(run_rank, args=(cfg,), nprocs=cfg.run.world_size, join=True)
    else:
        run_rank(0, cfg)
