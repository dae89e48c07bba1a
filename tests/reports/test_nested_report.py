"""The all-in-one comparison: verdict labels, the same-recipe check, pooling runs of several seeds."""

import subprocess
import sys
from pathlib import Path

import pytest

from allinone.reports.nested_comparison import (
    DecodedSubnet,
    check_same_recipe,
    format_report,
    pool_runs,
    recipe_differences,
)
from allinone.utils.checkpoint import save_checkpoint_atomic
from allinone.utils.scoring import compute_wer
from allinone.utils.significance import mapsswe


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


def _decoded(name, hyps, compression=1.0):
    """One subnet decoded on three 4-word utterances of the set 'test'."""
    refs = {"u1": "one two three four", "u2": "five six seven eight", "u3": "nine zero one two"}
    results = [(u, refs[u].split(), h.split()) for u, h in zip(refs, hyps)]
    return DecodedSubnet(
        name, 10.0, compression, 5, 0.1, {"test": compute_wer(results).wer}, {"test": results}
    )


def test_pooled_runs_pair_run_i_with_run_i_and_count_every_word():
    ok = ["one two three four", "five six seven eight", "nine zero one two"]
    bad = ["one two three", "five six seven", "nine zero one"]  # one deletion per utterance
    a_runs = [{"s": _decoded("s", ok)}, {"s": _decoded("s", bad)}]
    b_runs = [{"s": _decoded("s", bad)}, {"s": _decoded("s", bad)}]
    a, b = pool_runs(a_runs)["s"], pool_runs(b_runs)["s"]
    assert abs(a.wer["test"] - 100 * 3 / 24) < 1e-9 and abs(b.wer["test"] - 100 * 6 / 24) < 1e-9
    assert [u for u, _, _ in a.results["test"]][2:4] == ["run0/u3", "run1/u1"]
    # run 0: A has no error where B has one (Z = -1, three segments); run 1: both err alike (Z = 0)
    r = mapsswe(a.results["test"], b.results["test"])
    assert (r.num_segments, r.errors_a, r.errors_b, r.mean_diff) == (6, 3, 6, -0.5)
    # with B's runs swapped the pairs cancel: run 0 Z = -1 three times, run 1 Z = +1 three times
    swapped = pool_runs([{"s": _decoded("s", bad)}, {"s": _decoded("s", ok)}])["s"]
    r = mapsswe(a.results["test"], swapped.results["test"])
    assert r.mean_diff == 0.0 and r.better == "same"
    with pytest.raises(ValueError, match="run 1 decoded subnets"):
        pool_runs([{"s": _decoded("s", ok)}, {"t": _decoded("t", ok)}])


def test_report_lists_each_runs_own_verdict_when_pooled():
    report = _report([_row("a", 6.0, 4.0, "B")], [])
    report["runs"] = [["x/aio_s42", "x/ind"], ["x/aio_s43", "x/ind_s43"]]
    report["per_run_significantly_worse"] = [["a"], []]
    text = format_report(report)
    assert "Pooled over 2 runs" in text
    assert "Run aio_s42 against ind alone: significantly worse: a" in text
    assert "Run aio_s43 against ind_s43 alone: significantly worse: none" in text


def test_cli_wants_one_root_of_twins_per_one_pass_run(tmp_path):
    script = Path(__file__).resolve().parents[2] / "local" / "compare_all_in_one.py"
    args = ["--all-in-one-dir", "a1", "--all-in-one-dir", "a2", "--individual-root", "r1"]
    out = subprocess.run(
        [sys.executable, str(script), *args, "--epoch", "1", "--out-dir", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and "2 --all-in-one-dir but 1 --individual-root" in out.stderr
