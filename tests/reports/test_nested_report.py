"""Labels of the all-in-one comparison report: which system a significant p-value favours."""

import pytest

from allinone.reports.nested_comparison import check_same_recipe, format_report, recipe_differences
from allinone.utils.checkpoint import save_checkpoint_atomic


def _row(name, aio, twin, better):
    return {
        "subnet": name,
        "params": 1e6,
        "stored_mb": 1.0,
        "compression": 1.0,
        "aio_wer": {"test": aio},
        "individual_wer": {"test": twin},
        "aio_vs_individual": {"test": {"p": 0.01, "better": better, "segments": 9}},
        "aio_lossless": True,
        "individual_lossless": True,
        "individual_seconds": 10.0,
    }


def _report(rows, repeats):
    return {
        "method": "greedy_search",
        "epoch": 1,
        "alpha": 0.05,
        "baseline": "individually trained a",
        "rows": rows,
        "aio_train_seconds": 5.0,
        "individual_train_seconds_sum": 20.0,
        "speedup": 4.0,
        "subnets_significantly_worse": [
            r["subnet"] for r in rows if r["aio_vs_individual"]["test"]["better"] == "B"
        ],
        "largest_lossless_aio": None,
        "largest_lossless_individual": None,
        "repeats": repeats,
    }


def test_verdicts_name_the_system_with_fewer_errors():
    # mapsswe(aio, twin).better == "B": the twin (second system) has fewer errors
    text = format_report(_report([_row("a", 6.0, 4.0, "B"), _row("b", 3.0, 5.0, "A")], []))
    row_a = next(line for line in text.splitlines() if line.startswith("| a |"))
    row_b = next(line for line in text.splitlines() if line.startswith("| b |"))
    assert "(AIO worse)" in row_a and "(AIO better)" in row_b
    assert "worse than their twin: a" in text
    assert "repeat" not in text  # no repeat table without repeats


def test_repeat_table_labels_follow_the_argument_order():
    repeats = [
        {  # repeat_vs_individual = mapsswe(repeat, twin); aio_vs_repeat = mapsswe(aio, repeat)
            "subnet": "a",
            "root": "/x/exp_individual_seed43",
            "repeat_wer": {"test": 7.0},
            "repeat_vs_individual": {"test": {"p": 0.001, "better": "B", "segments": 9}},
            "aio_vs_repeat": {"test": {"p": 0.02, "better": "A", "segments": 9}},
        }
    ]
    text = format_report(_report([_row("a", 6.0, 4.0, "B")], repeats))
    line = next(ln for ln in text.splitlines() if ln.startswith("| a | exp_individual_seed43 |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[2:] == ["6.00", "4.00", "7.00", "0.001 (repeat worse)", "0.020 (AIO better)"]


def _run_dir(tmp_path, name, **overrides):
    cfg = {"base_lr": 1e-3, "lr_epochs": 6.0, "model": {"num_layers": 6}, "seed": 42, "subnets": "a"}
    cfg.update(overrides)
    d = tmp_path / name
    d.mkdir()
    save_checkpoint_atomic({"model": {}, "train_config": cfg}, d / "epoch-3.pt")
    return d


def test_twins_of_another_recipe_are_refused_and_per_run_settings_are_not(tmp_path):
    aio = _run_dir(tmp_path, "aio", subnets="a,b,c")
    same = _run_dir(tmp_path, "same", seed=43, subnets="b")  # seed and grid are per run
    other = _run_dir(tmp_path, "other", base_lr=3e-3, model={"num_layers": 4})
    assert recipe_differences(aio, same, 3) == {}
    assert recipe_differences(aio, other, 3) == {
        "base_lr": (1e-3, 3e-3),
        "model": ({"num_layers": 6}, {"num_layers": 4}),
    }
    check_same_recipe(aio, [same], 3)
    with pytest.raises(ValueError, match=r"other was trained with another recipe .*base_lr 0.001 vs 0.003"):
        check_same_recipe(aio, [same, other], 3)
