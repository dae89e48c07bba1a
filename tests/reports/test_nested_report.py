"""Labels of the all-in-one comparison report: which system a significant p-value favours."""

from allinone.reports.nested_comparison import format_report


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
