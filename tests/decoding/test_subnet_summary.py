"""decode.py's per-checkpoint subnet summary: decoding more later adds to it."""

from allinone.decoding.subnet_report import (
    SubnetRow,
    merge_subnet_rows,
    read_subnet_summary,
    write_subnet_summary,
)


def _row(name, wer, rtf=0.1):
    return SubnetRow(name, params=10, stored_bytes=40.0, compression=1.0, wer=wer, rtf=rtf)


def test_a_later_split_or_subnet_is_merged_not_overwritten(tmp_path):
    tag = "greedy_search-epoch-3-avg-1"
    write_subnet_summary(tmp_path, tag, [_row("a", {"test": 5.0}), _row("b", {"test": 7.0})])
    # a second run decodes another split of "b", and a subnet not decoded before
    path = write_subnet_summary(tmp_path, tag, [_row("b", {"dev": 6.0}, rtf=0.3), _row("c", {"dev": 9.0})])
    rows = {r.subnet: r for r in read_subnet_summary(path)}
    assert list(rows) == ["a", "b", "c"]
    assert rows["a"].wer == {"test": 5.0}
    assert rows["b"].wer == {"test": 7.0, "dev": 6.0} and rows["b"].rtf == 0.3
    assert rows["c"].wer == {"dev": 9.0}
    table = (tmp_path / f"subnet-summary-{tag}.md").read_text()
    assert "| WER test | WER dev |" in table and "| b |" in table


def test_decoding_a_split_again_takes_the_new_wer(tmp_path):
    tag = "t"
    write_subnet_summary(tmp_path, tag, [_row("a", {"test": 5.0, "dev": 4.0})])
    path = write_subnet_summary(tmp_path, tag, [_row("a", {"test": 3.0})])
    assert read_subnet_summary(path)[0].wer == {"test": 3.0, "dev": 4.0}


def _timed(name, times):
    """A row decoded on the sets in ``times`` (test set -> (WER, decode s, audio s))."""
    row = SubnetRow(name, params=10, stored_bytes=40.0, compression=1.0)
    for t, (wer, dec, audio) in times.items():
        row.add_test_set(t, wer, dec, audio)
    return row


def test_merged_rtf_covers_every_split_and_rows_keep_the_grid_order(tmp_path):
    grid = ["big", "mid", "small"]
    write_subnet_summary(tmp_path, "t", [_timed("small", {"test": (9.0, 2.0, 100.0)})], order=grid)
    path = write_subnet_summary(
        tmp_path,
        "t",
        [_timed("big", {"test": (5.0, 1.0, 100.0)}), _timed("small", {"dev": (8.0, 6.0, 100.0)})],
        order=grid,
    )
    rows = read_subnet_summary(path)
    assert [r.subnet for r in rows] == ["big", "small"]
    small = rows[1]
    assert small.wer == {"test": 9.0, "dev": 8.0}
    assert abs(small.rtf - (2.0 + 6.0) / 200.0) < 1e-12  # both splits, not the last run's alone
    # a summary written before per-split times existed: the new run's RTF is taken as is
    legacy = SubnetRow("big", 10, 40.0, 1.0, {"test": 5.0}, rtf=0.5)
    (merged,) = merge_subnet_rows([legacy], [_timed("big", {"dev": (4.0, 3.0, 100.0)})])
    assert merged.wer == {"test": 5.0, "dev": 4.0} and merged.rtf == 0.03 and merged.decode_seconds == {}


def test_rows_follow_the_grid_from_the_first_write_and_thread_counts_are_not_mixed(tmp_path):
    rows = [_timed("small", {}), _timed("big", {})]
    path = write_subnet_summary(tmp_path, "t", rows, order=["big", "small"])
    assert [r.subnet for r in read_subnet_summary(path)] == ["big", "small"]
    one = _timed("big", {"test": (5.0, 1.0, 100.0)})
    two = _timed("big", {"dev": (4.0, 1.0, 100.0)})
    two.threads = 2
    (merged,) = merge_subnet_rows([one], [two])
    assert merged.rtf == two.rtf and merged.decode_seconds == {} and merged.threads == 2
