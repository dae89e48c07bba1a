"""The shell helpers recipe scripts use to resume trainings and skip finished decodes."""

import subprocess
from pathlib import Path

import torch

HELPERS = Path(__file__).resolve().parents[2] / "utils/train_queue.sh"


def _bash(script: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", f". {HELPERS}; {script}"], cwd=cwd, capture_output=True, text=True)


def _checkpoint(path: Path, batches: int) -> None:
    torch.save({"model": {}, "batch_idx_train": batches}, path)


def test_resume_flag_prints_the_flags_that_continue_the_run(tmp_path):
    # allinone/training/resume.py decides (tests/training/test_resume.py); this checks the
    # shell side: the words printed, a directory that is a link, a missing directory.
    real = tmp_path / "big_disk/exp"  # exp dirs are often links to a larger disk
    real.mkdir(parents=True)
    (tmp_path / "exp").symlink_to(real)
    assert _bash("resume_flag exp", tmp_path).stdout == "\n"
    _checkpoint(real / "epoch-5.pt", batches=50)
    assert _bash("resume_flag exp", tmp_path).stdout.strip() == "--start-epoch 6"
    _checkpoint(real / "checkpoint-60.pt", batches=60)
    assert _bash("resume_flag exp", tmp_path).stdout.strip() == "--start-batch 60"
    missing = _bash("resume_flag missing", tmp_path)
    assert missing.returncode == 0 and missing.stdout.strip() == ""


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
