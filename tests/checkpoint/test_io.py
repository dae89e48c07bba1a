import pytest
import torch

from allinone.checkpoint import io as ck


def test_round_trip(tmp_path):
    state = {"model": {"w": torch.randn(3, 4)}, "step": 7}
    path = ck.save_checkpoint_atomic(state, tmp_path / "epoch-1.pt")
    loaded = ck.load_checkpoint(path)
    assert loaded["step"] == 7 and torch.equal(loaded["model"]["w"], state["model"]["w"])
    assert [p.name for p in tmp_path.iterdir()] == ["epoch-1.pt"]  # no temporary left behind


def test_truncated_checkpoint_is_reported_with_its_path(tmp_path):
    path = ck.save_checkpoint_atomic({"model": {"w": torch.randn(100, 100)}}, tmp_path / "checkpoint-5.pt")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ck.CheckpointError, match="checkpoint-5.pt is truncated or corrupt"):
        ck.load_checkpoint(path)
    with pytest.raises(ck.CheckpointError, match="does not exist"):
        ck.load_checkpoint(tmp_path / "nope.pt")


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = ck.save_checkpoint_atomic({"model": {"w": torch.zeros(2)}, "v": 1}, tmp_path / "epoch-1.pt")

    def boom(obj, f):
        f.write(b"partial")
        raise KeyboardInterrupt  # as if the process were interrupted mid-write

    monkeypatch.setattr(ck.torch, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        ck.save_checkpoint_atomic({"model": {}, "v": 2}, path)
    monkeypatch.undo()
    assert ck.load_checkpoint(path)["v"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["epoch-1.pt"]


def test_rng_state_round_trip():
    import random

    import numpy as np

    state = ck.get_rng_state()
    a = (torch.rand(3), np.random.rand(), random.random())
    ck.set_rng_state(state)
    b = (torch.rand(3), np.random.rand(), random.random())
    assert torch.equal(a[0], b[0]) and a[1:] == b[1:]
