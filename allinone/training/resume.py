"""Which train.py flags continue the run already in an experiment directory.

A run leaves ``epoch-K.pt`` at the end of each epoch and ``checkpoint-N.pt`` every
``--save-every-n`` batches (N counts batches over the whole run). The newest checkpoint
continues the run from further on than the newest epoch file only when it was written in
the epoch after it, which the epoch file's own batch count tells (file times do not: a
copy of the directory reorders them).

Usable from the shell (``utils/train_queue.sh`` ``resume_flag``)::

    python3 -m allinone.training.resume conformer_transducer/exp   # "--start-epoch 4"
"""

import argparse
import re
from pathlib import Path
from typing import List

from allinone.checkpoint.io import load_checkpoint


def numbered(exp_dir: Path, prefix: str) -> List[int]:
    """The sorted N of the ``<prefix>-<N>.pt`` files in ``exp_dir`` (none if it is missing)."""
    found = (re.fullmatch(rf"{prefix}-(\d+)\.pt", p.name) for p in Path(exp_dir).glob(f"{prefix}-*.pt"))
    return sorted(int(m.group(1)) for m in found if m)


def continuation_flags(exp_dir: Path) -> List[str]:
    """``["--start-batch", "N"]`` for a newest ``checkpoint-N.pt`` written after the newest
    ``epoch-K.pt`` (a run stopped mid-epoch), else ``["--start-epoch", "K+1"]``, else ``[]``
    (nothing to continue).

    Raises:
        CheckpointError: naming the newest epoch file when it is truncated or corrupt.
    """
    exp_dir = Path(exp_dir)
    epochs, batches = numbered(exp_dir, "epoch"), numbered(exp_dir, "checkpoint")
    if batches and (not epochs or batches[-1] > _batches_at_end_of(exp_dir / f"epoch-{epochs[-1]}.pt")):
        return ["--start-batch", str(batches[-1])]
    if epochs:
        return ["--start-epoch", str(epochs[-1] + 1)]
    return []


def _batches_at_end_of(epoch_file: Path) -> int:
    """The run's batch count when ``epoch_file`` was written."""
    return int(load_checkpoint(epoch_file)["batch_idx_train"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("exp_dir", type=Path)
    print(" ".join(continuation_flags(parser.parse_args().exp_dir)))


if __name__ == "__main__":
    main()
