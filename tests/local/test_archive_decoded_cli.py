"""local/archive_decoded.py: run dirs archived below --out-root by their path under the recipe."""

import json
import subprocess
import sys
from pathlib import Path

from allinone.decoding.subnet_report import SubnetRow, write_subnet_summary
from allinone.utils.checkpoint import save_checkpoint_atomic
from allinone.utils.scoring import read_recogs, write_recogs

SCRIPT = Path(__file__).resolve().parents[2] / "local" / "archive_decoded.py"


def _run(recipe_dir: Path, rel: str, decoded: bool) -> Path:
    d = recipe_dir / rel
    d.mkdir(parents=True)
    cfg = {"seed": 43, "model": {"num_layers": 6}}
    save_checkpoint_atomic({"model": {}, "train_config": cfg, "train_seconds": 5.0}, d / "epoch-3.pt")
    if decoded:
        res = d / "greedy_search"
        res.mkdir()
        results = [("u1", ["one", "two"], ["one"]), ("u2", ["three"], ["three"])]
        write_recogs(res / "recogs-test-greedy_search-d6-w1.0-b2-epoch-3-avg-1.txt", results)
        row = SubnetRow("d6-w1.0-b2", 5, 10.0, 2.0, {"test": 33.3}, 0.1)
        write_subnet_summary(res, "greedy_search-epoch-3-avg-1", [row])
    return d


def _archive(cwd: Path, *run_dirs: str):
    cmd = [sys.executable, str(SCRIPT), "--epoch", "3", "--decoding-method", "greedy_search"]
    cmd += ["--out-root", "recipe/decoded", *run_dirs]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)


def test_decoded_runs_are_archived_under_their_exp_name_and_undecoded_ones_skipped(tmp_path):
    _run(tmp_path, "recipe/exp_ind_seed43/d6-w1.0-b2", decoded=True)
    _run(tmp_path, "recipe/exp_ind_seed43/d6-w1.0-b4", decoded=False)
    out = _archive(tmp_path, "recipe/exp_ind_seed43/d6-w1.0-b2/", "recipe/exp_ind_seed43/d6-w1.0-b4")
    assert out.returncode == 0, out.stderr
    kept = tmp_path / "recipe" / "decoded" / "exp_ind_seed43" / "d6-w1.0-b2"
    assert json.loads((kept / "run-record-epoch-3.json").read_text())["train_config"]["seed"] == 43
    (gz,) = (kept / "greedy_search").glob("recogs-*.txt.gz")
    assert read_recogs(gz) == [("u1", ["one", "two"], ["one"]), ("u2", ["three"], ["three"])]
    assert "skipped:" in out.stderr and "d6-w1.0-b4/greedy_search: nothing decoded from epoch 3" in out.stderr
    assert not (tmp_path / "recipe" / "decoded" / "exp_ind_seed43" / "d6-w1.0-b4").exists()


def test_nothing_to_archive_is_an_error(tmp_path):
    _run(tmp_path, "recipe/exp_x", decoded=False)
    out = _archive(tmp_path, "recipe/exp_x")
    assert out.returncode != 0 and "nothing archived" in out.stderr


def test_run_dirs_that_would_share_an_archive_or_lie_outside_the_base_are_refused(tmp_path):
    a = _run(tmp_path, "recipe/exp_ind_seed42/d6-w1.0-b2", decoded=True)
    b = _run(tmp_path, "recipe/exp_ind_seed43/d6-w1.0-b2", decoded=True)
    out = _archive(tmp_path, str(a), str(b), "--base", str(a.parent))  # b is not below the base
    assert out.returncode != 0 and "exp_ind_seed43/d6-w1.0-b2 is not below --base" in out.stderr
    out = _archive(tmp_path, "recipe/exp_ind_seed42/d6-w1.0-b2", "recipe/exp_ind_seed42/d6-w1.0-b2/")
    assert out.returncode != 0 and "would both be archived to" in out.stderr
    assert not (tmp_path / "recipe" / "decoded").exists()  # refused before anything was written
    (tmp_path / "recipe" / "exp_link").symlink_to("exp_ind_seed43")
    out = _archive(tmp_path, "recipe/exp_ind_seed42/d6-w1.0-b2", "recipe/exp_link/d6-w1.0-b2")
    assert out.returncode == 0, out.stderr
    kept = sorted(
        p.relative_to(tmp_path / "recipe" / "decoded").parts[0]
        for p in (tmp_path / "recipe" / "decoded").iterdir()
    )
    assert kept == ["exp_ind_seed42", "exp_link"]  # a symlinked dir keeps the name it was given
