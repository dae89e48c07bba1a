"""Logging set-up shared by the recipe scripts."""

import logging
import sys
from datetime import datetime
from pathlib import Path


def setup_logger(log_prefix, rank: int = 0, world_size: int = 1, level: int = logging.INFO) -> Path:
    """Log to the console and to ``<log_prefix>-<date-time>[-rank]``.

    Args:
        log_prefix: e.g. ``exp_dir/log/log-train``.
        rank, world_size: with several processes each writes its own file and tags its lines.
    Returns:
        The log file path.
    """
    stamp = datetime.now().strftime("%Y-%m-%d-%H-%M-%S")
    path = Path(f"{log_prefix}-{stamp}" + (f"-{rank}" if world_size > 1 else ""))
    path.parent.mkdir(parents=True, exist_ok=True)
    tag = f"[rank {rank}] " if world_size > 1 else ""
    fmt = f"%(asctime)s %(levelname)s [%(filename)s:%(lineno)d] {tag}%(message)s"
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.setLevel(level)
    for handler in (logging.FileHandler(path), logging.StreamHandler(sys.stdout)):
        handler.setFormatter(logging.Formatter(fmt))
        root.addHandler(handler)
    return path


def setup_script_logging(level: int = logging.INFO) -> None:
    """Console logging for the data-preparation scripts, in the training log's format."""
    logging.basicConfig(format="%(asctime)s %(levelname)s [%(filename)s:%(lineno)d] %(message)s", level=level)
