"""Logging set-up shared by the recipe scripts."""

import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import List, Optional


def setup_logger(log_prefix, rank: int = 0, world_size: int = 1, level: int = logging.INFO) -> Optional[Path]:
    """Log to the console and, on rank 0, to ``<log_prefix>-<date-time>``.

    Args:
        log_prefix: e.g. ``exp_dir/log/log-train``.
        rank, world_size: with several processes only rank 0 writes the log file; the other
            ranks print their warnings and errors to the console, tagged with their rank.
    Returns:
        The log file path (None on ranks > 0).
    """
    tag = f"[rank {rank}] " if world_size > 1 else ""
    fmt = logging.Formatter(f"%(asctime)s %(levelname)s [%(filename)s:%(lineno)d] {tag}%(message)s")
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handlers: List[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    path = None
    if rank == 0:
        stamp = datetime.now().strftime("%Y-%m-%d-%H-%M-%S")
        path = Path(f"{log_prefix}-{stamp}")
        path.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(path))
    root.setLevel(level if rank == 0 else logging.WARNING)
    for handler in handlers:
        handler.setFormatter(fmt)
        root.addHandler(handler)
    return path


def setup_script_logging(level: int = logging.INFO) -> None:
    """Console logging for the data-preparation scripts, in the training log's format."""
    logging.basicConfig(format="%(asctime)s %(levelname)s [%(filename)s:%(lineno)d] %(message)s", level=level)
