"""--device and --use-fp16/--use-bf16 resolve to what they say, or fail naming the flag."""

import pytest
import torch

from allinone.utils.device import amp_dtype, autocast, resolve_device
from allinone.utils.dist import DistEnv, torchrun_env


def test_cpu_and_auto_resolve_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto", local_rank=3) == torch.device("cpu")
    with pytest.raises(ValueError, match="--device cuda: torch sees no CUDA device"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="choose from"):
        resolve_device("tpu")


def test_auto_takes_the_gpu_of_the_local_rank(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto", local_rank=1) == torch.device("cuda", 1)
    with pytest.raises(ValueError, match="local rank 2 has no GPU"):
        resolve_device("cuda", local_rank=2)


def test_amp_flags():
    assert amp_dtype(False, False) is None
    assert amp_dtype(True, False) is torch.float16 and amp_dtype(False, True) is torch.bfloat16
    with pytest.raises(ValueError, match="exclude each other"):
        amp_dtype(True, True)


def test_autocast_runs_matmuls_in_half_precision_and_float32_is_untouched():
    a = torch.randn(4, 4)
    with autocast(torch.device("cpu"), torch.bfloat16):
        assert (a @ a).dtype is torch.bfloat16
    with autocast(torch.device("cpu"), None):
        assert (a @ a).dtype is torch.float32


def test_torchrun_environment(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert torchrun_env() is None
    monkeypatch.setenv("RANK", "5")
    with pytest.raises(ValueError, match=r"missing"):
        torchrun_env()
    monkeypatch.setenv("WORLD_SIZE", "16")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    assert torchrun_env() == DistEnv(rank=5, world_size=16, local_rank=1, local_world_size=8)
