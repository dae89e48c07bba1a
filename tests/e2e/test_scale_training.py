"""Training as it runs at scale, on CPU: torchrun, a killed two-process run, fp16 with its scaler.

torchrun and ``--world-size 2`` start the same two gloo processes (one thread each), so
they must train the same weights; a two-process run killed mid-epoch and resumed with
``--start-batch`` must end where an uninterrupted one does (every rank restores its own
RNG streams); an fp16 run resumed from a batch checkpoint must end bit-identically too,
which needs the gradient scaler's state in the checkpoint.
"""

import subprocess
import sys

import pytest
import torch

from tests.e2e.test_recipe import RECIPE, _env, assert_same_state, kill_when_written, run, train_cmd


def _two_process_cmd(root, lang, exp, *extra):
    return train_cmd(root, lang, exp, "--world-size", "2", "--master-port", "12947", *extra)


@pytest.fixture(scope="module")
def spawned_run(tiny_corpus, tmp_path_factory):
    root, lang = tiny_corpus
    exp = tmp_path_factory.mktemp("exp_spawned")
    run(_two_process_cmd(root, lang, exp))
    return exp


def test_torchrun_trains_what_spawned_processes_train(tiny_corpus, spawned_run, tmp_path):
    root, lang = tiny_corpus
    exp = tmp_path / "exp"
    cmd = train_cmd(root, lang, exp)
    script = cmd.index(str(RECIPE / "train.py"))
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    run(torchrun + cmd[script:])
    state = torch.load(exp / "epoch-2.pt", weights_only=False)
    assert state["sampler"]["world_size"] == 2 and state["train_config"]["world_size"] == 2
    assert_same_state(spawned_run / "epoch-2.pt", exp / "epoch-2.pt")


def test_a_killed_two_process_run_resumes_bit_identically(tiny_corpus, spawned_run, tmp_path):
    root, lang = tiny_corpus
    exp = tmp_path / "exp"
    target = exp / "checkpoint-1.pt"
    kill_when_written(_two_process_cmd(root, lang, exp), target)
    sampler = torch.load(target, weights_only=False)["sampler"]
    assert (sampler["epoch"], sampler["batches_done"]) == (1, 1)  # mid-epoch: 2 batches per rank
    for stale in list(exp.glob("epoch-*.pt")) + [p for p in exp.glob("checkpoint-*.pt") if p != target]:
        stale.unlink()
    run(_two_process_cmd(root, lang, exp, "--start-batch", "1"))
    assert_same_state(spawned_run / "epoch-2.pt", exp / "epoch-2.pt")


def test_an_fp16_run_resumes_bit_identically_with_its_grad_scaler(tiny_corpus, tmp_path):
    root, lang = tiny_corpus
    ref, exp = tmp_path / "ref", tmp_path / "exp"
    run(train_cmd(root, lang, ref, "--use-fp16", "true"))
    record = torch.load(ref / "checkpoint-3.pt", weights_only=False)
    assert record["grad_scaler"] is not None and record["grad_scaler"]["scale"] > 0
    assert record["train_config"]["use_fp16"] is True
    exp.mkdir()
    (exp / "checkpoint-3.pt").write_bytes((ref / "checkpoint-3.pt").read_bytes())
    run(train_cmd(root, lang, exp, "--use-fp16", "true", "--start-batch", "3"))
    assert_same_state(ref / "epoch-2.pt", exp / "epoch-2.pt")
    final = torch.load(exp / "epoch-2.pt", weights_only=False)
    assert final["grad_scaler"] == torch.load(ref / "epoch-2.pt", weights_only=False)["grad_scaler"]


def test_fp16_and_bf16_together_are_refused(tiny_corpus, tmp_path):
    root, lang = tiny_corpus
    cmd = train_cmd(root, lang, tmp_path / "exp", "--use-fp16", "true", "--use-bf16", "true")
    out = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=120)
    assert out.returncode != 0 and "--use-fp16 and --use-bf16 exclude each other" in out.stderr


def test_a_nested_mixed_precision_search_with_distillation_trains_under_ddp(tiny_corpus, tmp_path):
    # Subnets that skip layers, bit-widths a step does not run and the search's logits all
    # leave parameters without gradient in some steps: DDP must look for them every step.
    root, lang = tiny_corpus
    exp = tmp_path / "exp"
    cmd = _two_process_cmd(
        root, lang, exp, "--num-epochs", "1", "--subnets", "d2-w1.0-b32,d2-w1.0-bmix,d1-w0.5-b4",
        "--distill", "true", "--mp-target-bits", "4", "--mp-anneal-batches", "1",
        "--model", "mp_candidates=2,4,8",
    )  # fmt: skip
    run(cmd)
    state = torch.load(exp / "epoch-1.pt", weights_only=False)
    assert state["subnets"][0] == "d2-w1.0-b32" and len(state["subnets"]) == 3
    finalised = [v for k, v in state["model"].items() if k.endswith(".mp_bits")]
    assert finalised and all(int(b) in (2, 4, 8) for b in finalised)
