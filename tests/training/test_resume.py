"""The flags that continue a run, read from its checkpoints' contents, not file times."""

import os

import pytest
import torch

from allinone.checkpoint.io import CheckpointError
from allinone.training.resume import continuation_flags, numbered


def _checkpoint(path, batches: int) -> None:
    torch.save({"model": {}, "batch_idx_train": batches}, path)


def test_numbered_sorts_numerically_and_ignores_other_names(tmp_path):
    for name in (
        "epoch-10.pt",
        "epoch-2.pt",
        "epoch-1.pt",
        "epoch-3-avg-2.pt",
        "epoch-x.pt",
        "epoch-4.pt.tmp",
    ):
        (tmp_path / name).touch()
    assert numbered(tmp_path, "epoch") == [1, 2, 10]
    assert numbered(tmp_path / "missing", "epoch") == []


def test_a_fresh_directory_has_nothing_to_continue(tmp_path):
    assert continuation_flags(tmp_path) == []
    assert continuation_flags(tmp_path / "missing") == []


def test_a_run_killed_in_its_first_epoch_continues_from_its_newest_checkpoint(tmp_path):
    for n in (9, 10):
        _checkpoint(tmp_path / f"checkpoint-{n}.pt", n)
    assert continuation_flags(tmp_path) == ["--start-batch", "10"]


def test_the_epoch_file_decides_whether_the_newest_checkpoint_is_further_on(tmp_path):
    _checkpoint(tmp_path / "epoch-2.pt", batches=20)
    _checkpoint(tmp_path / "checkpoint-18.pt", batches=18)  # written inside epoch 2
    # Copied in the other order, the checkpoint is the newer file; its content still says
    # it is older than the epoch's end.
    os.utime(tmp_path / "epoch-2.pt", (1_000, 1_000))
    os.utime(tmp_path / "checkpoint-18.pt", (2_000, 2_000))
    assert continuation_flags(tmp_path) == ["--start-epoch", "3"]
    _checkpoint(tmp_path / "checkpoint-25.pt", batches=25)  # then epoch 3 was killed
    os.utime(tmp_path / "checkpoint-25.pt", (500, 500))
    assert continuation_flags(tmp_path) == ["--start-batch", "25"]


def test_a_corrupt_newest_epoch_file_is_named(tmp_path):
    (tmp_path / "epoch-3.pt").write_bytes(b"not a checkpoint")
    _checkpoint(tmp_path / "checkpoint-40.pt", batches=40)
    with pytest.raises(CheckpointError, match="epoch-3.pt"):
        continuation_flags(tmp_path)
