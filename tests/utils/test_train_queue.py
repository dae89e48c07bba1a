"""The shell helpers recipe scripts use to resume trainings and skip finished decodes."""

import os
import subprocess
from pathlib import Path

HELPERS = Path(__file__).resolve().parents[2] / "utils/train_queue.sh"


def _bash(script: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", f". {HELPERS}; {script}"], cwd=cwd, capture_output=True, text=True)


def test_resume_flag_names_the_epoch_after_the_newest_checkpoint(tmp_path):
    exp = tmp_path / "exp"
    exp.mkdir()
    assert _bash("resume_flag exp", tmp_path).stdout == ""
    for k in (1, 2, 10):  # numeric, not lexical, order: 10 is the newest
        (exp / f"epoch-{k}.pt").touch()
    assert _bash("resume_flag exp", tmp_path).stdout.strip() == "--start-epoch 11"
    assert _bash("resume_flag missing", tmp_path).returncode == 0


def test_resume_flag_continues_mid_epoch_from_a_checkpoint_newer_than_every_epoch(tmp_path):
    exp = tmp_path / "exp"
    exp.mkdir()
    for k in (9, 10):  # killed in epoch 1: checkpoints only, the numerically newest wins
        (exp / f"checkpoint-{k}.pt").touch()
    (exp / "checkpoint-avg.pt").touch()  # not a checkpoint-N.pt
    assert _bash("resume_flag exp", tmp_path).stdout.strip() == "--start-batch 10"
    (exp / "epoch-2.pt").touch()
    os.utime(exp / "checkpoint-10.pt", (1_000, 1_000))
    os.utime(exp / "epoch-2.pt", (2_000, 2_000))  # epoch 2 ended after the last checkpoint
    assert _bash("resume_flag exp", tmp_path).stdout.strip() == "--start-epoch 3"
    os.utime(exp / "checkpoint-10.pt", (3_000, 3_000))  # then epoch 3 was killed
    assert _bash("resume_flag exp", tmp_path).stdout.strip() == "--start-batch 10"


def test_decoded_matches_only_the_summary_of_that_epoch_or_tag(tmp_path):
    out = tmp_path / "exp/modified_beam_search"
    out.mkdir(parents=True)
    (out / "subnet-summary-modified_beam_search_beam_4-epoch-8-avg-1-use-averaged-model.json").touch()
    (out / "subnet-summary-modified_beam_search_beam_4-epoch-8-avg-1-use-averaged-model.md").touch()
    tag = "epoch-{}-avg-1-use-averaged-model"
    assert _bash(f"decoded exp modified_beam_search {tag.format(8)}", tmp_path).returncode == 0
    assert _bash(f"decoded exp modified_beam_search {tag.format(18)}", tmp_path).returncode != 0
    assert _bash(f"decoded exp greedy_search {tag.format(8)}", tmp_path).returncode != 0
    assert _bash("decoded exp modified_beam_search packed", tmp_path).returncode != 0
    (out / "subnet-summary-modified_beam_search_beam_4-packed.json").touch()
    assert _bash("decoded exp modified_beam_search packed", tmp_path).returncode == 0


def test_resume_flag_follows_an_experiment_directory_that_is_a_symlink(tmp_path):
    # Experiment directories are often links to a larger disk; a resume that missed the
    # checkpoints behind the link would start over and overwrite them.
    real = tmp_path / "big_disk/exp"
    real.mkdir(parents=True)
    (real / "epoch-5.pt").touch()
    (tmp_path / "exp").symlink_to(real)
    assert _bash("resume_flag exp", tmp_path).stdout.strip() == "--start-epoch 6"
