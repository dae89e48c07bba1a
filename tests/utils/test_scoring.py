"""Tests for WER computation and result files."""

import math

import pytest

from allinone.decoding.result_files import save_results
from allinone.utils.scoring import (
    WerStats,
    align_words,
    compute_wer,
    read_recogs,
    write_error_stats,
    write_recogs,
)

# Hand-counted: u1 one substitution, u2 one deletion + one insertion,
# u3 empty hypothesis (3 deletions), u4 empty reference (2 insertions), u5 exact.
RESULTS = [
    ("u2", ["the", "cat", "sat"], ["cat", "sat", "down"]),
    ("u1", ["a", "b", "c", "d"], ["a", "x", "c", "d"]),
    ("u3", ["one", "two", "three"], []),
    ("u4", [], ["oh", "no"]),
    ("u5", ["all", "good"], ["all", "good"]),
]


def test_compute_wer_worked_examples():
    stats = compute_wer(RESULTS)
    assert (stats.ins, stats.dels, stats.subs) == (3, 4, 1)
    assert stats.errors == 8
    assert stats.ref_words == 12
    assert stats.wer == pytest.approx(100 * 8 / 12)


@pytest.mark.parametrize(
    "ref, hyp, counts",
    [
        (["a", "b", "c"], ["a", "b", "c"], (0, 0, 0)),
        (["a", "b", "c"], [], (0, 3, 0)),
        ([], ["x", "y"], (2, 0, 0)),
        (["a", "b", "c"], ["x", "b"], (0, 1, 1)),
        (["a"], ["b", "a", "c"], (2, 0, 0)),
    ],
)
def test_compute_wer_single_utterance(ref, hyp, counts):
    s = compute_wer([("u", ref, hyp)])
    assert (s.ins, s.dels, s.subs) == counts
    assert s.ref_words == len(ref)


def test_empty_reference_wer():
    assert compute_wer([("u", [], [])]).wer == 0.0
    assert math.isinf(compute_wer([("u", [], ["x"])]).wer)


def test_gap_symbol_word_is_not_a_gap():
    # A real word "*" must still count as a correct match, not as an insertion/deletion.
    s = compute_wer([("u", ["*", "a"], ["*", "b"])])
    assert (s.ins, s.dels, s.subs) == (0, 0, 1)
    assert align_words(["*"], []) == [("*", None)]


def test_write_error_stats_summary_and_sections(tmp_path):
    path = tmp_path / "errs.txt"
    wer = write_error_stats(path, "test-clean", RESULTS)
    assert wer == pytest.approx(100 * 8 / 12)
    lines = path.read_text().splitlines()
    assert lines[0] == "%WER 66.67 [ 8 / 12, 3 ins, 4 del, 1 sub ]"
    text = "\n".join(lines)
    assert "u1:\ta (b->x) c d" in text
    assert "u3:\t(one->*) (two->*) (three->*)" in text
    assert "u4:\t(*->oh) (*->no)" in text
    # Utterances in id order.
    detail_ids = [ln.split(":")[0] for ln in lines if ln.startswith("u") and ":\t" in ln]
    assert detail_ids == ["u1", "u2", "u3", "u4", "u5"]
    assert "1   b -> x" in lines
    # "the" deleted, "down" inserted, both once.
    dels = lines[lines.index("DELETIONS: count ref") + 1 : lines.index("INSERTIONS: count hyp")]
    assert "1   the" in dels and "1   one" in dels
    # Per-word stats for "b": 0 correct, 1 error, once in ref, never in hyp.
    assert "b   0 1 1 0" in lines
    assert "c   1 0 1 1" in lines


def test_write_recogs_sorted(tmp_path):
    path = tmp_path / "recogs.txt"
    write_recogs(path, RESULTS)
    lines = path.read_text().splitlines()
    assert lines[0] == "u1:\tref=['a', 'b', 'c', 'd']"
    assert lines[1] == "u1:\thyp=['a', 'x', 'c', 'd']"
    assert lines[6] == "u4:\tref=[]"
    assert len(lines) == 2 * len(RESULTS)


def test_save_results_files_and_summary(tmp_path):
    res_dir = tmp_path / "res"
    perfect = [(cid, ref, list(ref)) for cid, ref, _ in RESULTS]
    wers = save_results(
        res_dir, "test-other", {"greedy_search": RESULTS, "beam_size_4": perfect}, suffix="epoch-3-avg-1"
    )
    assert wers == {"greedy_search": pytest.approx(100 * 8 / 12), "beam_size_4": 0.0}
    names = sorted(p.name for p in res_dir.iterdir())
    assert names == [
        "errs-test-other-beam_size_4-epoch-3-avg-1.txt",
        "errs-test-other-greedy_search-epoch-3-avg-1.txt",
        "recogs-test-other-beam_size_4-epoch-3-avg-1.txt",
        "recogs-test-other-greedy_search-epoch-3-avg-1.txt",
        "wer-summary-test-other-epoch-3-avg-1.txt",
    ]
    summary = (res_dir / "wer-summary-test-other-epoch-3-avg-1.txt").read_text().splitlines()
    assert summary == ["settings\tWER", "beam_size_4\t0.00", "greedy_search\t66.67"]


def test_wer_stats_fields():
    s = WerStats(ins=1, dels=2, subs=3, ref_words=12)
    assert s.errors == 6 and s.wer == pytest.approx(50.0)
    assert s.summary() == "%WER 50.00 [ 6 / 12, 1 ins, 2 del, 3 sub ]"


def test_read_recogs_round_trips_write_recogs(tmp_path):
    results = [("u2", ["A", "B"], ["A"]), ("u1", ["it's", "x:\ty"], []), ("u3", [], ["Z"])]
    write_recogs(tmp_path / "r.txt", results)
    assert read_recogs(tmp_path / "r.txt") == sorted(results)
    (tmp_path / "bad.txt").write_text("u1:\thyp=['A']\n")
    with pytest.raises(ValueError, match="bad.txt:1: hyp of u1 before its ref"):
        read_recogs(tmp_path / "bad.txt")
