"""run_all_in_one.sh refuses flag combinations that would mix up runs, before any work."""

import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "egs/synth_digits/ASR/run_all_in_one.sh"


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--subnet-draw-weights", "d6-w1.0-b8=0.25"], "give it its own --exp-suffix"),
        (["--subnet-loss-weights", "d3-w0.5-b2=2"], "--subnet-loss-weights: these change the one pass"),
        (
            ["--subnet-policy", "largest_random", "--sandwich-k", "2"],
            "--subnet-policy largest_random --sandwich-k 2: these change",
        ),
        (
            ["--warmup-subnet", "d6-w1.0-b32", "--distill", "true"],
            "--distill true --warmup-subnet d6-w1.0-b32",
        ),
        (
            ["--train-opts", "--seed 43", "--exp-suffix", "_s43"],
            "their own --exp-suffix and --individual-suffix",
        ),
    ],
)
def test_a_one_pass_variant_without_its_own_directories_is_refused(flags, message, tmp_path):
    done = subprocess.run(
        ["bash", str(SCRIPT), "--stage", "3", *flags], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 1
    assert message in done.stderr
    assert "stage" not in done.stdout  # refused before any stage ran


def test_the_default_one_pass_needs_no_suffix(tmp_path):
    done = subprocess.run(
        ["bash", str(SCRIPT), "--stage", "3", "--stop-stage", "2", "--subnet-policy", "sandwich",
         "--sandwich-k", "1"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert "change the one pass" not in done.stderr
    assert done.returncode == 0, done.stderr  # no stage between 3 and 2: nothing to do
