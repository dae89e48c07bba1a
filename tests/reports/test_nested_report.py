"""The all-in-one comparison: verdict labels, the same-recipe check, pooling runs of several seeds."""

import subprocess
import sys
from pathlib import Path

import pytest

from allinone.checkpoint.io import save_checkpoint_atomic
from allinone.checkpoint.record import CheckpointRecord, write_record
from allinone.decoding.subnet_report import SubnetRow, write_subnet_summary
from allinone.reports.decodings import DecodedSubnet, mapsswe_per_set, pool_runs
from allinone.reports.nested_comparison import compare, format_report
from allinone.reports.run_records import check_same_recipe, recipe_differences, train_seconds
from allinone.utils.scoring import compute_wer, write_recogs
from allinone.utils.significance import matched_pairs_over_runs


def _write_run_record(path, train_config, seconds=0.0):
    """The part of a training checkpoint the reports read."""
    record = CheckpointRecord(
        kind="train",
        model={},
        model_config={},
        subnets=[],
        train_config=train_config,
        train_seconds=seconds,
        train_cpu_seconds=seconds,
    )
    write_record(record, path)


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
    _write_run_record(d / "epoch-3.pt", cfg)
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


def test_a_run_that_lists_default_model_values_has_the_recipe_of_one_that_does_not(tmp_path):
    listed = _run_dir(tmp_path, "listed", model={"num_layers": 6, "d_model": 144, "dropout": 0.0})
    (tmp_path / "n").mkdir()
    unlisted = _run_dir(tmp_path / "n", "d6-w1.0-b32", model={"dropout": 0.0})
    assert recipe_differences(listed, unlisted, 3) == {}
    heads = _run_dir(tmp_path, "heads", model={"num_layers": 6, "dropout": 0.0, "quantize_heads": True})
    check_same_recipe(heads, [unlisted], 3)  # a float twin, in either way of writing its model
    assert set(recipe_differences(heads, unlisted, 3)) == {"model"}


def test_only_a_float_twin_may_differ_in_quantize_heads_alone(tmp_path):
    heads = {"num_layers": 6, "quantize_heads": True}
    aio = _run_dir(tmp_path, "aio", subnets="a,b", model=heads)
    float_twin = _run_dir(tmp_path, "d6-w1.0-b32", subnets="d6-w1.0-b32")  # model without the key
    check_same_recipe(aio, [float_twin], 3)
    (tmp_path / "q").mkdir()
    quant_twin = _run_dir(tmp_path / "q", "d6-w1.0-b2", subnets="d6-w1.0-b2")
    with pytest.raises(ValueError, match="quantize_heads"):
        check_same_recipe(aio, [quant_twin], 3)
    (tmp_path / "o").mkdir()
    other = _run_dir(tmp_path / "o", "d6-w1.0-b32", base_lr=3e-3)  # float, but another learning rate
    with pytest.raises(ValueError, match="base_lr"):
        check_same_recipe(aio, [other], 3)
    (tmp_path / "l").mkdir()
    layers = _run_dir(tmp_path / "l", "d6-w1.0-b32", model={"num_layers": 4})  # heads and layers differ
    with pytest.raises(ValueError, match="num_layers"):
        check_same_recipe(aio, [layers], 3)


def _decoded(name, hyps, compression=1.0):
    """One subnet decoded on three 4-word utterances of the set 'test'."""
    refs = {"u1": "one two three four", "u2": "five six seven eight", "u3": "nine zero one two"}
    results = [(u, refs[u].split(), h.split()) for u, h in zip(refs, hyps)]
    return DecodedSubnet(
        name, 10.0, compression, 5, 0.1, {"test": compute_wer(results).wer}, {"test": results}
    )


def test_pooled_runs_count_every_word_and_test_utterance_by_utterance():
    ok = ["one two three four", "five six seven eight", "nine zero one two"]
    bad = ["one two three", "five six seven", "nine zero one"]  # one deletion per utterance
    a_runs = [{"s": _decoded("s", ok)}, {"s": _decoded("s", bad)}]
    b_runs = [{"s": _decoded("s", bad)}, {"s": _decoded("s", bad)}]
    a, b = pool_runs(a_runs)["s"], pool_runs(b_runs)["s"]
    assert abs(a.wer["test"] - 100 * 3 / 24) < 1e-9 and abs(b.wer["test"] - 100 * 6 / 24) < 1e-9
    # each utterance is one unit: Z_u = (0 + 1) - (1 + 1) = -1 for all three
    t = mapsswe_per_set(a, b, 0.05)["test"]
    assert (t["segments"], t["p"], t["better"]) == (3, 0.0, "A")
    runs_a, runs_b = ([r["s"].results["test"] for r in runs] for runs in (a_runs, b_runs))
    expected = matched_pairs_over_runs(runs_a, runs_b)
    assert t["p"] == expected.p_value
    # the order of the runs does not matter, only which systems were pooled
    c_runs = [{"s": _decoded("s", bad)}, {"s": _decoded("s", ok)}]
    c, c_swapped = pool_runs(c_runs)["s"], pool_runs(c_runs[::-1])["s"]
    assert mapsswe_per_set(a, c_swapped, 0.05) == mapsswe_per_set(a, c, 0.05)
    assert mapsswe_per_set(a, c, 0.05)["test"]["better"] == "same"  # 3 errors each in all
    with pytest.raises(ValueError, match="pooled system against a single run"):
        mapsswe_per_set(a, b_runs[0]["s"], 0.05)
    with pytest.raises(ValueError, match="run 1 decoded subnets"):
        pool_runs([{"s": _decoded("s", ok)}, {"t": _decoded("t", ok)}])
    # the same subnets listed in another order pool in run 0's order
    two = [{"s": _decoded("s", ok), "t": _decoded("t", ok)}, {"t": _decoded("t", ok), "s": _decoded("s", ok)}]
    assert list(pool_runs(two)) == ["s", "t"]


def test_report_lists_each_runs_own_verdict_when_pooled():
    report = _report([_row("a", 6.0, 4.0, "B")], [])
    report["runs"] = [["x/aio_s42", "x/ind"], ["x/aio_s43", "x/ind_s43"]]
    report["per_run_significantly_worse"] = [["a"], []]
    text = format_report(report)
    assert "Pooled over 2 training runs" in text and "matched_pairs_over_runs" in text
    assert "Run x/aio_s42 against x/ind alone: significantly worse: a" in text
    assert "Run x/aio_s43 against x/ind_s43 alone: significantly worse: none" in text


def test_cli_wants_one_root_of_twins_per_one_pass_run(tmp_path):
    script = Path(__file__).resolve().parents[2] / "local" / "compare_all_in_one.py"
    args = ["--all-in-one-dir", "a1", "--all-in-one-dir", "a2", "--individual-root", "r1"]
    out = subprocess.run(
        [sys.executable, str(script), *args, "--epoch", "1", "--out-dir", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and "2 --all-in-one-dir but 1 --individual-root" in out.stderr


def _fake_run(tmp_path, name, subnets, seed, hyps, seconds, **recipe):
    """An exp dir as train.py + decode.py leave it: epoch-1.pt, summary, recogs on 'test'."""
    d = tmp_path / name
    res = d / "greedy_search"
    res.mkdir(parents=True)
    cfg = {"base_lr": 1e-3, "model": {"num_layers": 2}, "seed": seed, **recipe}
    _write_run_record(d / "epoch-1.pt", cfg, seconds)
    rows = []
    for sub, compression in subnets:
        dec = _decoded(sub, hyps, compression)
        write_recogs(res / f"recogs-test-greedy_search-{sub}-epoch-1-avg-1.txt", dec.results["test"])
        rows.append(SubnetRow(sub, dec.params, dec.stored_bytes, compression, dec.wer, dec.rtf))
    write_subnet_summary(res, "greedy_search-epoch-1-avg-1", rows)
    return d


def test_compare_pools_seeds_sums_times_and_refuses_runs_that_cannot_be_pooled(tmp_path):
    ok = ["one two three four", "five six seven eight", "nine zero one two"]
    bad = ["one two three", "five six seven", "nine zero one"]
    grid = [("big", 1.0), ("small", 8.0)]

    def twins(root, seed, hyps, seconds, **recipe):
        for sub, c in grid:
            _fake_run(tmp_path / root, sub, [(sub, c)], seed, hyps, seconds, **recipe)
        return tmp_path / root

    aio1 = _fake_run(tmp_path, "aio1", grid, 42, bad, 10.0)
    aio2 = _fake_run(tmp_path, "aio2", grid, 43, ok, 12.0)
    ind1, ind2 = twins("ind1", 42, ok, 7.0), twins("ind2", 43, ok, 9.0)
    report = compare([(aio1, ind1), (aio2, ind2)], "greedy_search", 1)
    assert report["aio_train_seconds"] == 22.0 and report["individual_train_seconds_sum"] == 2 * (7.0 + 9.0)
    assert report["per_run_significantly_worse"] == [["big", "small"], []]
    big = report["rows"][0]
    assert abs(big["aio_wer"]["test"] - 100 * 3 / 24) < 1e-9 and big["individual_wer"]["test"] == 0.0
    assert big["aio_vs_individual"]["test"]["segments"] == 3  # utterances, not runs x segments
    single = compare([(aio2, ind2)], "greedy_search", 1)
    assert single["per_run_significantly_worse"] is None and single["subnets_significantly_worse"] == []

    with pytest.raises(ValueError, match="the same --all-in-one-dir is given twice"):
        compare([(aio1, ind1), (aio1, ind2)], "greedy_search", 1)
    with pytest.raises(ValueError, match="one-pass runs to pool share a seed"):
        compare([(aio1, ind1), (_fake_run(tmp_path, "aio3", grid, 42, ok, 1.0), ind2)], "greedy_search", 1)
    with pytest.raises(ValueError, match="twins of big to pool share a seed"):
        compare([(aio1, ind1), (aio2, twins("ind3", 42, ok, 1.0))], "greedy_search", 1)
    aio_lr = _fake_run(tmp_path, "aio_lr", grid, 44, ok, 1.0, base_lr=3e-3)
    with pytest.raises(ValueError, match="aio_lr was trained with another recipe"):
        compare([(aio1, ind1), (aio_lr, twins("ind4", 44, ok, 1.0, base_lr=3e-3))], "greedy_search", 1)


def test_part_of_the_grid_keeps_the_float_reference_and_gives_no_time_ratio(tmp_path):
    ok = ["one two three four", "five six seven eight", "nine zero one two"]
    grid = [("big", 1.0), ("mid", 4.0), ("small", 8.0)]
    aio = _fake_run(tmp_path, "aio", grid, 42, ok, 10.0)
    for sub, c in grid[:2]:  # the twin of "small" is not trained yet
        _fake_run(tmp_path / "ind", sub, [(sub, c)], 42, ok, 7.0)
    with pytest.raises(FileNotFoundError):
        compare([(aio, tmp_path / "ind")], "greedy_search", 1)
    report = compare([(aio, tmp_path / "ind")], "greedy_search", 1, subnets=["mid"])
    assert [r["subnet"] for r in report["rows"]] == ["big", "mid"]
    assert report["omitted_subnets"] == ["small"]
    assert report["speedup"] is None and report["cpu_speedup"] is None
    text = format_report(report)
    assert "Part of the grid only: small left out" in text and "Training wall time" not in text
    # the one pass's "small" is judged against the float twin all the same
    assert report["omitted_aio_lossless"] == {"small": True}
    assert report["largest_lossless_aio"]["subnet"] == "small"
    assert report["largest_lossless_individual"]["subnet"] == "mid"
    assert "left-out one-pass subnets: small yes" in text
    assert "individual (among the compared twins) mid at 4.00x" in text
    aio43 = _fake_run(tmp_path, "aio43", grid[:2], 43, ok, 10.0)  # decoded without "small"
    for sub, c in grid[:2]:
        _fake_run(tmp_path / "ind43", sub, [(sub, c)], 43, ok, 7.0)
    with pytest.raises(ValueError, match="must have decoded the same subnets"):
        compare([(aio, tmp_path / "ind"), (aio43, tmp_path / "ind43")], "greedy_search", 1, subnets=["mid"])
    with pytest.raises(ValueError, match=r"has no decoded subnet \['tiny'\]"):
        compare([(aio, tmp_path / "ind")], "greedy_search", 1, subnets=["tiny"])


def test_runs_from_before_an_option_existed_have_its_old_value(tmp_path):
    old = _run_dir(tmp_path, "old")  # no init_from / teacher_checkpoint / unfold_relax
    new = _run_dir(tmp_path, "new", init_from="", teacher_checkpoint="", unfold_relax=False)
    assert recipe_differences(old, new, 3) == {}
    relaxed = _run_dir(tmp_path, "relaxed", unfold_relax=True)
    assert recipe_differences(old, relaxed, 3) == {"unfold_relax": (False, True)}


def test_a_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"epoch-2.pt missing"):
        train_seconds(tmp_path, 2)
    save_checkpoint_atomic({"model": {}, "model_config": {}}, tmp_path / "epoch-2.pt")  # format 0
    with pytest.raises(ValueError, match=r"epoch-2.pt records no train_seconds"):
        train_seconds(tmp_path, 2)
