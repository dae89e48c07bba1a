"""What the fake-layout recipe tests share: a copy of a recipe beside the shared scripts, and
a command run there whose failure shows the command's own output."""

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, Optional, Sequence

REPO = Path(__file__).resolve().parents[2]

# A model small enough for one training step and a decode in a test.
TINY_MODEL = ["d_model=32", "num_layers=2", "num_heads=2", "ffn_dim=64", "kernel_size=3", "decoder_dim=32",
              "joiner_dim=32", "dropout=0.0"]  # fmt: skip


def copy_recipe(root: Path, corpus: str) -> Path:
    """``egs/<corpus>/ASR`` copied under ``root`` with ``local/`` and ``utils/`` linked beside it,
    as prepare.sh finds them in a checkout; returns the copied recipe directory."""
    work = root / "egs" / corpus / "ASR"
    shutil.copytree(REPO / "egs" / corpus / "ASR", work)
    for shared in ("local", "utils"):
        (root / shared).symlink_to(REPO / shared)
    return work


def run(cmd: Sequence[str], cwd: Path, env: Optional[Dict[str, str]] = None, timeout: int = 400):
    """Run ``cmd`` in ``cwd`` with one compute thread; assert it succeeds."""
    env = {**(env or os.environ), "OMP_NUM_THREADS": "1"}
    out = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, env=env, timeout=timeout)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def train_one_step(work: Path, exp: Path, bpe_model: str, *extra: str, env=None) -> None:
    """One training batch of the tiny model with the recipe's train.py."""
    run([sys.executable, "conformer_transducer/train.py", "--num-epochs", "1",
         "--max-batches-per-epoch", "1", "--max-duration", "20", "--num-buckets", "2",
         "--num-workers", "0", "--tensorboard", "false", "--exp-dir", str(exp),
         "--bpe-model", bpe_model, *extra, "--model", *TINY_MODEL], work, env)  # fmt: skip


def decode(work: Path, exp: Path, lang_dir: str, method: str, env=None) -> None:
    """The recipe's decode.py on its default test sets with ``method``."""
    run([sys.executable, "conformer_transducer/decode.py", "--epoch", "1", "--avg", "1",
         "--exp-dir", str(exp), "--bpe-model", f"{lang_dir}/bpe.model", "--lang-dir", lang_dir,
         "--decoding-method", method], work, env)  # fmt: skip
