"""End to end: train.py, a SIGKILL mid-epoch, --start-batch resumption, decode.py."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.e2e.conftest import PREFIX

RECIPE = Path(__file__).resolve().parents[2] / "egs/synth_digits/ASR/conformer_transducer"
TINY_MODEL = [
    "d_model=32",
    "num_layers=2",
    "num_heads=2",
    "ffn_dim=64",
    "kernel_size=5",
    "decoder_dim=32",
    "joiner_dim=32",
]


def train_cmd(root: Path, lang: Path, exp: Path, *extra) -> list:
    return [
        sys.executable,
        str(RECIPE / "train.py"),
        "--exp-dir",
        str(exp),
        "--bpe-model",
        str(lang / "bpe.model"),
        "--manifest-dir",
        str(root / "fbank"),
        "--train-cuts",
        f"{PREFIX}_train.jsonl.gz",
        "--valid-cuts",
        f"{PREFIX}_dev.jsonl.gz",
        "--num-epochs",
        "2",
        "--max-duration",
        "6",
        "--num-buckets",
        "2",
        "--num-workers",
        "1",
        "--save-every-n",
        "1",
        "--keep-last-k",
        "0",
        "--log-interval",
        "1",
        "--average-period",
        "1",
        "--warm-step",
        "4",
        "--warmup-batches",
        "3",
        "--tensorboard",
        "false",
        "--model",
        *TINY_MODEL,
        *extra,
    ]


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def run(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def kill_when_written(cmd, target: Path) -> None:
    """Run ``cmd`` in its own session and SIGKILL all of it (spawned ranks too) once ``target`` exists."""
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(), start_new_session=True
    )
    deadline = time.time() + 240
    while not target.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert target.exists(), f"training never reached {target.name}"


def assert_same_state(a: Path, b: Path):
    sa = torch.load(a, weights_only=False)
    sb = torch.load(b, weights_only=False)
    for key in ("model", "model_avg"):
        assert sa[key].keys() == sb[key].keys()
        for name in sa[key]:
            assert torch.equal(sa[key][name], sb[key][name]), f"{key}.{name} differs"
    for x, y in zip(sa["optimizer"]["state"].values(), sb["optimizer"]["state"].values()):
        assert all(torch.equal(x[k], y[k]) for k in x)
    assert sa["batch_idx_train"] == sb["batch_idx_train"]


@pytest.fixture(scope="module")
def reference_run(tiny_corpus, tmp_path_factory):
    root, lang = tiny_corpus
    exp = tmp_path_factory.mktemp("exp_ref")
    run(train_cmd(root, lang, exp))
    return exp


def test_training_writes_icefall_style_outputs(reference_run):
    exp = reference_run
    assert (exp / "epoch-1.pt").is_file() and (exp / "epoch-2.pt").is_file()
    assert list(exp.glob("checkpoint-*.pt"))
    assert list((exp / "log").glob("log-train-*"))
    state = torch.load(exp / "epoch-2.pt", weights_only=False)
    assert {"model", "model_avg", "optimizer", "schedule", "sampler", "rng"} <= state.keys()
    log = next((exp / "log").glob("log-train-*")).read_text()
    assert "validation loss/frame" in log and "s audio/s" in log


def test_sigkill_then_start_batch_resume_is_bit_identical(tiny_corpus, reference_run, tmp_path):
    root, lang = tiny_corpus
    exp = tmp_path / "exp"
    target = exp / "checkpoint-3.pt"
    kill_when_written(train_cmd(root, lang, exp), target)
    assert not (exp / "epoch-2.pt").exists(), "killed too late to test mid-training resumption"
    sampler = torch.load(target, weights_only=False)["sampler"]
    assert (sampler["epoch"], sampler["batches_done"]) == (1, 3)  # mid-epoch: epoch 1 has 4 batches
    for stale in list(exp.glob("epoch-*.pt")) + [p for p in exp.glob("checkpoint-*.pt") if p != target]:
        stale.unlink()  # resume must rebuild everything after checkpoint-3 itself
    run(train_cmd(root, lang, exp, "--start-batch", "3"))
    assert_same_state(reference_run / "epoch-2.pt", exp / "epoch-2.pt")


def test_a_finished_run_continued_to_more_epochs_equals_a_longer_run(tiny_corpus, reference_run, tmp_path):
    """A larger --num-epochs continues a finished run exactly (the learning-rate schedule
    does not depend on it), which is how runs are compared at a later epoch."""
    root, lang = tiny_corpus
    exp = tmp_path / "exp"
    run(train_cmd(root, lang, exp, "--num-epochs", "1"))
    assert (exp / "epoch-1.pt").is_file() and not (exp / "epoch-2.pt").exists()
    run(train_cmd(root, lang, exp, "--num-epochs", "2", "--start-epoch", "2"))
    assert_same_state(reference_run / "epoch-2.pt", exp / "epoch-2.pt")


def test_a_fresh_start_over_a_run_is_refused_and_leaves_its_checkpoints(tiny_corpus, reference_run, tmp_path):
    """Without a resume flag, train.py would write epoch-1.pt and checkpoint-N.pt over the
    run already in --exp-dir; it names the flags that continue that run instead."""
    root, lang = tiny_corpus
    exp = tmp_path / "exp"
    exp.mkdir()
    kept = {name: (reference_run / name).read_bytes() for name in ("epoch-1.pt", "checkpoint-3.pt")}
    for name, data in kept.items():
        (exp / name).write_bytes(data)
    out = subprocess.run(train_cmd(root, lang, exp), capture_output=True, text=True, env=_env(), timeout=300)
    assert out.returncode != 0
    # checkpoint-3.pt is from inside epoch 1, so the run continues after epoch-1.pt
    assert "Continue that run with --start-epoch 2 (" in out.stdout + out.stderr
    assert {p.name for p in exp.glob("*.pt")} == set(kept)
    assert all((exp / name).read_bytes() == data for name, data in kept.items())


def test_resume_from_truncated_checkpoint_names_the_file(tiny_corpus, reference_run, tmp_path):
    root, lang = tiny_corpus
    exp = tmp_path / "exp"
    exp.mkdir()
    data = (reference_run / "epoch-1.pt").read_bytes()
    (exp / "epoch-1.pt").write_bytes(data[: len(data) // 3])
    out = subprocess.run(
        train_cmd(root, lang, exp, "--start-epoch", "2"),
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert out.returncode != 0
    assert "epoch-1.pt is truncated or corrupt" in out.stdout + out.stderr


def test_decode_writes_result_files(tiny_corpus, reference_run):
    root, lang = tiny_corpus
    for method in ("greedy_search", "modified_beam_search"):
        out = run(
            [
                sys.executable,
                str(RECIPE / "decode.py"),
                "--epoch",
                "2",
                "--avg",
                "1",
                "--exp-dir",
                str(reference_run),
                "--bpe-model",
                str(lang / "bpe.model"),
                "--manifest-dir",
                str(root / "fbank"),
                "--cuts-prefix",
                PREFIX,
                "--test-sets",
                "test",
                "--decoding-method",
                method,
            ]
        )
        res = reference_run / method
        assert list(res.glob("recogs-test-*.txt")) and list(res.glob("errs-test-*.txt"))
        assert list(res.glob("wer-summary-test-*.txt"))
        assert "| subnet | params (M) | stored (MB) | compression | WER test | RTF |" in out.stdout


def test_two_process_data_parallel_training(tiny_corpus, reference_run, tmp_path):
    root, lang = tiny_corpus
    exp = tmp_path / "exp"
    cmd = train_cmd(root, lang, exp, "--world-size", "2", "--master-port", "12931")
    cmd[cmd.index("--num-epochs") + 1] = "1"
    run(cmd)
    state = torch.load(exp / "epoch-1.pt", weights_only=False)
    assert state["sampler"]["world_size"] == 2
    # each rank trains on every other batch of the single-process epoch
    single = torch.load(reference_run / "epoch-1.pt", weights_only=False)["batch_idx_train"]
    assert state["batch_idx_train"] == single // 2 > 0
    # only rank 0 writes the log file; rank 1's RNG streams still go into the checkpoint
    logs = sorted((exp / "log").glob("log-train-*"))
    assert len(logs) == 1 and "done" in logs[0].read_text()
    assert len(state["rng_other_ranks"]) == 1
    assert not torch.equal(state["rng_other_ranks"][0]["torch"], state["rng"]["torch"])
