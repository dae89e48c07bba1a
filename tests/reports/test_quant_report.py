"""The quantizer table with two seeds pooled: pooled verdicts against the pooled float
model, per-seed verdicts, the seed-vs-seed noise floor, on synthetic decodings."""

import json
from pathlib import Path

import pytest

from allinone.checkpoint.record import CheckpointRecord, write_record
from allinone.decoding.subnet_report import SubnetRow, write_subnet_summary
from allinone.reports.quant_comparison import compare_quantizers, format_quant_report
from allinone.utils.scoring import compute_wer, write_recogs

# 20 utterances of 4 words: enough segments for the matched-pairs test to flag a system
# that deletes a word in every utterance
REFS = {f"u{i:02d}": "one two three four" for i in range(20)}
OK = ["one two three four"] * 20
BAD = ["one two three"] * 20
ONE_SLIP = ["one two three"] + ["one two three four"] * 19


def _decoded(d: Path, seed: int, hyps, packed: bool, bits: float = 32.0, ptq_of: Path = None) -> Path:
    """An exp dir as train.py + (export.py +) decode.py leave it, decoded on 'test'; with
    ``ptq_of``, as quantize_ptq.py leaves it (no training, made from that float model)."""
    res = d / "greedy_search"
    res.mkdir(parents=True)
    suffix = "packed" if packed else "epoch-1-avg-1"
    record = CheckpointRecord(
        kind="ptq" if ptq_of else "train", model={}, model_config={}, subnets=[],
        train_config={} if ptq_of else {"seed": seed}, train_seconds=100.0 + seed,
        train_cpu_seconds=50.0 + seed, source=str(ptq_of / "epoch-1.pt") if ptq_of else "",
    )  # fmt: skip
    write_record(record, d / "epoch-1.pt")
    name = "d2-w1.0-b32" if not packed else f"d2-w1.0-b{int(bits)}"
    results = [(u, REFS[u].split(), h.split()) for u, h in zip(REFS, hyps)]
    write_recogs(res / f"recogs-test-greedy_search-{name}-{suffix}.txt", results)
    row = SubnetRow(name, 5, 10.0 * bits / 32, 32 / bits, {"test": compute_wer(results).wer}, 0.1)
    write_subnet_summary(res, f"greedy_search-{suffix}", [row])
    if packed:  # and decoded again with its codes kept in memory
        kept = SubnetRow(name, 5, row.stored_bytes, row.compression, row.wer, 0.2,
                         weights_mb=bits / 8, peak_rss_mb=300.0 + seed)  # fmt: skip
        write_subnet_summary(res, f"greedy_search-{suffix}-codes", [kept])
        info = {"file_bytes": 1e6 * bits / 32, "accounted_bytes": 1e6 * bits / 32, "average_bits": bits}
        (d / f"{name}.json").write_text(json.dumps(info))
    return d


@pytest.fixture
def two_seeds(tmp_path):
    floats = [_decoded(tmp_path / "f42", 42, OK, False), _decoded(tmp_path / "f43", 43, OK, False)]
    runs = {
        # worse under both seeds
        "uniform 1-bit": [
            _decoded(tmp_path / "q42/b1", 42, BAD, True, 1),
            _decoded(tmp_path / "q43/b1", 43, BAD, True, 1),
        ],
        # one slip under one seed: neither worse pooled nor per seed
        "uniform 4-bit": [
            _decoded(tmp_path / "q42/b4", 42, ONE_SLIP, True, 4),
            _decoded(tmp_path / "q43/b4", 43, OK, True, 4),
        ],
        # worse under seed 43 only
        "GQ 2-bit": [
            _decoded(tmp_path / "q42/g2", 42, OK, True, 2),
            _decoded(tmp_path / "q43/g2", 43, BAD, True, 2),
        ],
    }
    runs["int8 post-training"] = [
        _decoded(tmp_path / "q42/ptq", 0, OK, True, 8, ptq_of=floats[0]),
        _decoded(tmp_path / "q43/ptq", 0, OK, True, 8, ptq_of=floats[1]),
    ]
    return floats, runs


def test_two_seeds_pool_per_row_and_measure_the_seed_noise_floor(two_seeds):
    floats, runs = two_seeds
    report = compare_quantizers(floats, 1, runs, "greedy_search")
    rows = {r["method"]: r for r in report["rows"]}
    assert report["seeds"] == 2
    assert not rows["uniform 1-bit"]["lossless"]
    assert rows["uniform 1-bit"]["worse_under_every_seed"] == ["test"]
    assert rows["uniform 4-bit"]["lossless"]
    assert rows["uniform 4-bit"]["wer"]["test"] == pytest.approx(100 * 1 / 160)  # the seeds' words pooled
    gq = rows["GQ 2-bit"]
    assert [v["test"]["better"] for v in gq["vs_float_per_seed"]] == ["same", "B"]
    assert gq["worse_under_every_seed"] == []
    # means over the seeds: 100 + seed seconds of training
    assert rows["uniform 4-bit"]["compression_seconds"] == pytest.approx(142.5)
    # the floor: seed 0 against seed 1 of the float model and of each row; only GQ 2-bit differs
    floor = report["noise_floor"]
    assert floor["pairs"] == 5 and floor["count"] == 1
    assert floor["flagged"][0][:3] == ["GQ 2-bit", "test", "b worse"]
    text = format_quant_report(report)
    assert "1 of 5 pairs flagged" in text and "Worse than the float model under every seed" in text
    assert report["best_lossless_uniform"]["method"] == "uniform 4-bit"
    assert rows["GQ 2-bit"]["kept_codes"] == {
        "seeds": 2, "rtf_float_weights": 0.1, "rtf": 0.2, "weights_mb": 0.25, "peak_rss_mb": 342.5
    }  # fmt: skip
    assert report["float"]["memory"] is None  # the float decodings recorded no memory
    assert "| GQ 2-bit | 0.1000 | 0.2000 | 0.25 | 342.50 |" in text


def test_runs_to_pool_must_differ_in_seed_and_match_the_float_models(two_seeds, tmp_path):
    floats, runs = two_seeds
    same = _decoded(tmp_path / "q42b/b1", 42, BAD, True, 1)
    with pytest.raises(ValueError, match="share a seed"):
        compare_quantizers(floats, 1, {"uniform 1-bit": [runs["uniform 1-bit"][0], same]}, "greedy_search")
    ptq = runs["int8 post-training"][0]  # made from seed 42's float model twice
    with pytest.raises(ValueError, match="share a seed"):
        compare_quantizers(
            floats, 1, {"int8": [ptq, _decoded(tmp_path / "p", 0, OK, True, 8, floats[0])]}, "greedy_search"
        )
    with pytest.raises(ValueError, match="1 runs for 2 float models"):
        compare_quantizers(floats, 1, {"uniform 1-bit": runs["uniform 1-bit"][:1]}, "greedy_search")


def test_one_seed_keeps_per_seed_mapsswe_and_no_floor(two_seeds):
    floats, runs = two_seeds
    report = compare_quantizers(floats[:1], 1, {k: v[:1] for k, v in runs.items()}, "greedy_search")
    assert report["noise_floor"] is None
    assert not {r["method"]: r for r in report["rows"]}["uniform 1-bit"]["lossless"]
    assert "cannot be applied" in format_quant_report(report)
