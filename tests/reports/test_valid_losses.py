"""Dev losses read back from training logs, and the one-pass-minus-twin gaps."""

import json

import pytest

from allinone.reports.valid_losses import read_valid_losses, valid_loss_gaps

PREFIX = "2026-11-24 19:21:06,754 INFO [trainer.py:639] "


def write_run(exp_dir, logs, subnets=None):
    """``logs``: one list of message lines per log file, oldest first."""
    (exp_dir / "log").mkdir(parents=True)
    for k, lines in enumerate(logs):
        text = "".join(PREFIX + line + "\n" for line in lines)
        (exp_dir / "log" / f"log-train-2026-11-24-0{k}-00-00").write_text(text)
    if subnets is not None:
        (exp_dir / "train-summary.json").write_text(json.dumps({"subnets": subnets}))


def nested_line(epoch, losses):
    inner = ", ".join(f"{n} {v:.4f}" for n, v in losses.items())
    return f"epoch {epoch}: validation loss/frame {sum(losses.values()) / len(losses):.4f} ({inner})"


def test_a_resumed_epoch_keeps_its_last_value_and_other_lines_are_ignored(tmp_path):
    first = {"d2-w1.0-b32": 0.5, "d1-w0.5-b2": 0.7}
    again = {"d2-w1.0-b32": 0.4, "d1-w0.5-b2": 0.6}
    write_run(
        tmp_path / "aio",
        [
            ["epoch 1, batch 19, global 20: loss/frame 2.9369 (d2-w1.0-b32 2.9369)", nested_line(1, first)],
            [nested_line(1, again), nested_line(2, first)],
        ],
    )
    assert read_valid_losses(tmp_path / "aio") == {1: again, 2: first}


def test_gaps_are_the_one_pass_minus_its_twins_over_the_chosen_epochs(tmp_path):
    aio = {1: {"d2-w1.0-b32": 0.50, "d1-w0.5-b2": 0.70}, 2: {"d2-w1.0-b32": 0.40, "d1-w0.5-b2": 0.66}}
    write_run(tmp_path / "aio", [[nested_line(e, v) for e, v in aio.items()]])
    twins = {"d2-w1.0-b32": [0.55, 0.45], "d1-w0.5-b2": [0.60, 0.62]}
    for name, values in twins.items():
        lines = [f"epoch {e}: validation loss/frame {v:.4f}" for e, v in enumerate(values, start=1)]
        write_run(tmp_path / "ind" / name, [lines], subnets=[name])
    rows = {r["subnet"]: r for r in valid_loss_gaps(tmp_path / "aio", tmp_path / "ind", [1, 2])}
    for name in twins:
        mine = (aio[1][name] + aio[2][name]) / 2
        twin = sum(twins[name]) / 2
        assert rows[name]["all_in_one"] == pytest.approx(mine)
        assert rows[name]["individual"] == pytest.approx(twin)
        assert rows[name]["gap"] == pytest.approx(mine - twin)
    assert rows["d1-w0.5-b2"]["gap"] > 0 > rows["d2-w1.0-b32"]["gap"]
    with pytest.raises(ValueError, match=r"d2-w1.0-b32 at epoch\(s\) \[3\]"):
        valid_loss_gaps(tmp_path / "aio", tmp_path / "ind", [2, 3])


def test_unreadable_runs_are_refused_with_the_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no log-train"):
        read_valid_losses(tmp_path)
    write_run(tmp_path / "twin", [["epoch 1: validation loss/frame 0.5000"]])  # no train-summary.json
    with pytest.raises(ValueError, match="does not name its one subnet"):
        read_valid_losses(tmp_path / "twin")
