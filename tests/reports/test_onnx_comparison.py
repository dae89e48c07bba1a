"""The deployment table: sizes from export-onnx.py's report, WER, agreement and p against torch."""

import json

from allinone.decoding.result_files import save_results
from allinone.reports.onnx_comparison import agreement, compare_onnx, onnx_table
from tests.reports.test_criterion import BAD, OK, REFS, _run


def _onnx_decoding(res_dir, subnet, variant, hyps, seconds=0.5):
    results = [(u, REFS[u].split(), h.split()) for u, h in zip(REFS, hyps)]
    save_results(res_dir, "test", {"greedy_search": results}, f"{subnet}-{variant}")
    summary = {"test": {"wer": 0.0, "audio_seconds": 10.0, "decode_seconds": seconds, "rtf": seconds / 10}}
    (res_dir / f"onnx-summary-greedy_search-{subnet}-{variant}.json").write_text(
        json.dumps({"test_sets": summary})
    )


def test_agreement_counts_identical_word_sequences():
    a = [("u1", ["a"], ["x", "y"]), ("u2", ["a"], ["z"]), ("u3", ["a"], [])]
    b = [("u1", ["a"], ["x", "y"]), ("u2", ["a"], ["z", "z"]), ("u3", ["a"], [])]
    assert agreement(a, b) == 2 / 3


def test_table_rows_torch_then_each_decoded_variant(tmp_path):
    exp = _run(tmp_path / "exp", 42, {"big": OK})
    onnx_dir = exp / "onnx"
    onnx_dir.mkdir()
    sizes = {"aio_bytes": 2e6, "fp32_bytes": 4e6, "int8_bytes": 1.5e6, "int8-codes_bytes": 1.2e6}
    (onnx_dir / "big-onnx.json").write_text(json.dumps(sizes))
    res = onnx_dir / "sherpa-onnx-greedy_search"
    _onnx_decoding(res, "big", "fp32", OK)
    _onnx_decoding(res, "big", "int8", BAD, seconds=0.2)  # int8-codes not decoded: no row
    rows = compare_onnx(exp, 1, onnx_dir, ["big"], ["test"], "greedy_search", res, "greedy_search")
    assert [r.system for r in rows] == ["torch (.aio)", "sherpa-onnx fp32", "sherpa-onnx int8"]
    torch_row, fp32, int8 = rows
    assert torch_row.bytes == 2e6 and fp32.bytes == 4e6 and int8.bytes == 1.5e6
    assert fp32.agreement["test"] == 1.0 and fp32.wer["test"] == 0.0 and fp32.p_value["test"] == 1.0
    assert int8.agreement["test"] == 0.0 and int8.wer["test"] == 25.0 and int8.rtf == 0.02
    # one more error in every segment (zero variance): MAPSSWE's p is 0, and int8 the worse
    assert int8.p_value["test"] == 0.0 and int8.worse["test"] and not fp32.worse["test"]
    table = onnx_table(rows, ["test"])
    assert "| big | sherpa-onnx int8 | 1.500 | 25.00 | 0.0% | 0.000 (worse) | 0.0200 |" in table
