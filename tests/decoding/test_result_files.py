import pytest

from allinone.decoding.result_files import (
    decoding_key,
    recogs_files,
    result_dir,
    result_suffix,
    subnet_suffix,
    summary_files,
    summary_tag,
)
from allinone.decoding.runner import DECODING_METHODS


@pytest.mark.parametrize(
    "method, expected",
    [
        ("greedy_search", "greedy_search"),
        ("modified_beam_search", "modified_beam_search_beam_4"),
        ("ctc-greedy-search", "ctc-greedy-search"),
        ("ctc-decoding", "ctc-decoding_beam_20"),
        ("hl", "hl_beam_20"),
        ("1best", "1best_beam_20_lm_scale_1"),
    ],
)
def test_decoding_key_defaults(method, expected):
    assert decoding_key(method, 4, 20.0, 1.0) == expected


def test_decoding_key_formats_numbers_short():
    assert decoding_key("modified_beam_search", beam_size=8) == "modified_beam_search_beam_8"
    assert decoding_key("1best", search_beam=12.5, ngram_lm_scale=0.6) == "1best_beam_12.5_lm_scale_0.6"


def test_every_decoding_method_has_a_key():
    for method in DECODING_METHODS:
        assert decoding_key(method)


def test_decoding_key_rejects_unknown_method():
    with pytest.raises(ValueError, match="fast_beam"):
        decoding_key("fast_beam")


def test_result_suffix():
    assert result_suffix(10, 1, True) == "epoch-10-avg-1-use-averaged-model"
    assert result_suffix(3, 2, False) == "epoch-3-avg-2"
    assert result_suffix(None) == "packed"
    assert result_suffix(10, 1, True, 0.5) == "epoch-10-avg-1-use-averaged-model-blank-penalty-0.5"
    assert result_suffix(None, blank_penalty=2.0) == "packed-blank-penalty-2"


def test_result_dir(tmp_path):
    assert result_dir(tmp_path, "greedy_search", False) == tmp_path / "greedy_search"
    assert result_dir(str(tmp_path), "1best", True) == tmp_path / "1best-bn-calibrated"


def test_globs_find_one_epoch_of_a_run(tmp_path):
    key = decoding_key("greedy_search")
    names = []
    for suffix in (result_suffix(1, 1, True), result_suffix(2, 1, True), result_suffix(None)):
        names.append(f"subnet-summary-{summary_tag(key, suffix)}.json")
        names.append(f"recogs-test-{key}-{subnet_suffix('d2-w1.0-b4', suffix)}.txt")
    names.append(f"recogs-test-{key}-{subnet_suffix('d2-w1.0-b4', result_suffix(1, 2, False))}.txt")
    for name in names:
        (tmp_path / name).write_text("")
    assert [p.name for p in summary_files(tmp_path, 1)] == [
        "subnet-summary-greedy_search-epoch-1-avg-1-use-averaged-model.json"
    ]
    assert [p.name for p in summary_files(tmp_path, None)] == ["subnet-summary-greedy_search-packed.json"]
    assert [p.name for p in recogs_files(tmp_path, "test", "d2-w1.0-b4", 1)] == [
        "recogs-test-greedy_search-d2-w1.0-b4-epoch-1-avg-1-use-averaged-model.txt",
        "recogs-test-greedy_search-d2-w1.0-b4-epoch-1-avg-2.txt",
    ]
    assert recogs_files(tmp_path, "test", "d6-w1.0-b4", 1) == []
    assert [p.name for p in recogs_files(tmp_path, "test", "d2-w1.0-b4", None)] == [
        "recogs-test-greedy_search-d2-w1.0-b4-packed.txt"
    ]


def test_the_reports_read_plain_decodings_beside_a_blank_penalty_run(tmp_path):
    from allinone.decoding.result_files import recogs_files, summary_files

    for suffix in ("epoch-3-avg-1-use-averaged-model", "epoch-3-avg-1-use-averaged-model-blank-penalty-0.5"):
        (tmp_path / f"subnet-summary-greedy_search-{suffix}.json").write_text("{}")
        (tmp_path / f"recogs-test-greedy_search-d6-w1.0-b32-{suffix}.txt").write_text("")
    assert [p.name for p in summary_files(tmp_path, 3)] == [
        "subnet-summary-greedy_search-epoch-3-avg-1-use-averaged-model.json"
    ]
    assert [p.name for p in recogs_files(tmp_path, "test", "d6-w1.0-b32", 3)] == [
        "recogs-test-greedy_search-d6-w1.0-b32-epoch-3-avg-1-use-averaged-model.txt"
    ]
