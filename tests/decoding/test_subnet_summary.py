"""decode.py's per-checkpoint subnet summary: decoding more later adds to it."""

from allinone.decoding.subnet_report import SubnetRow, read_subnet_summary, write_subnet_summary


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
