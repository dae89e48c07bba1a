"""The decided criterion: pooled worse pairs against the twin-vs-twin noise floor, and the
claim's verdict line, on synthetic decodings of two seeds."""

import subprocess
import sys
from pathlib import Path

import pytest

from allinone.checkpoint.record import CheckpointRecord, write_record
from allinone.decoding.subnet_report import SubnetRow, write_subnet_summary
from allinone.reports.criterion import claim_verdict
from allinone.reports.nested_comparison import compare, format_report, twin_noise_floor
from allinone.utils.scoring import compute_wer, write_recogs

REFS = {"u1": "one two three four", "u2": "five six seven eight", "u3": "nine zero one two"}
OK = list(REFS.values())
BAD = ["one two three", "five six seven", "nine zero one"]  # one deletion per utterance
GRID = {"big": 1.0, "small": 8.0}


def _run(d: Path, seed: int, hyps: dict) -> Path:
    """An exp dir as train.py + decode.py leave it, decoding each subnet of ``hyps`` on 'test'."""
    res = d / "greedy_search"
    res.mkdir(parents=True)
    cfg = {"base_lr": 1e-3, "model": {"num_layers": 2}, "seed": seed}
    record = CheckpointRecord(
        kind="train",
        model={},
        model_config={},
        subnets=[],
        train_config=cfg,
        train_seconds=10.0,
        train_cpu_seconds=10.0,
    )
    write_record(record, d / "epoch-1.pt")
    rows = []
    for sub, hyp in hyps.items():
        results = [(u, REFS[u].split(), h.split()) for u, h in zip(REFS, hyp)]
        write_recogs(res / f"recogs-test-greedy_search-{sub}-epoch-1-avg-1.txt", results)
        rows.append(SubnetRow(sub, 5, 10.0 / GRID[sub], GRID[sub], {"test": compute_wer(results).wer}, 0.1))
    write_subnet_summary(res, "greedy_search-epoch-1-avg-1", rows)
    return d


def _twins(root: Path, seed: int, hyps: dict) -> Path:
    for sub, hyp in hyps.items():
        _run(root / sub, seed, {sub: hyp})
    return root


def _grids(tmp_path, aio43_small, twins43_big):
    """Seed 42: the one pass's small subnet deletes a word per utterance, its twins are exact.
    Seed 43: the one pass's small subnet as given, its big twin as given."""
    aio42 = _run(tmp_path / "aio42", 42, {"big": OK, "small": BAD})
    aio43 = _run(tmp_path / "aio43", 43, {"big": OK, "small": aio43_small})
    ind42 = _twins(tmp_path / "ind42", 42, {"big": OK, "small": OK})
    ind43 = _twins(tmp_path / "ind43", 43, {"big": twins43_big, "small": OK})
    return [(aio42, ind42), (aio43, ind43)]


def test_the_claim_holds_when_worse_pairs_stay_within_the_noise_floor(tmp_path):
    report = compare(_grids(tmp_path, aio43_small=OK, twins43_big=BAD), "greedy_search", 1)
    # pooled, small is worse (its seed-42 deletions); the twins disagree on big
    assert report["worse_pairs"] == [["small", "test"]]
    assert report["per_run_worse_pairs"] == [[["small", "test"]], []]
    floor = report["noise_floor"]
    assert (floor["count"], floor["pairs"]) == (1, 2)
    assert floor["flagged"][0][:3] == ["big", "test", "b worse"]
    assert report["claim"]["holds"] is True
    text = format_report(report)
    assert "No subnet worse than its twin: holds (1 worse pairs pooled <= noise floor 1 of 2" in text
    assert "Noise floor (twins against twins of the identical recipe" in text
    assert "1 of 2 pairs flagged by the same test: big test (ind43 worse, p 0.000)" in text
    assert "- Worse (subnet, test set) pairs: 1 of 2: small test" in text


def test_a_pair_worse_under_every_seed_fails_the_claim_within_the_noise_floor(tmp_path):
    # the only change against the test above: seed 43's one pass loses on small as well
    report = compare(_grids(tmp_path, aio43_small=BAD, twins43_big=BAD), "greedy_search", 1)
    assert report["worse_pairs"] == [["small", "test"]] and report["noise_floor"]["count"] == 1
    assert report["claim"]["holds"] is False
    assert report["claim"]["worse_under_every_seed"] == [["small", "test"]]
    assert "No subnet worse than its twin: fails (" in format_report(report)
    assert "worse under every seed: small test" in report["claim"]["line"]


def test_more_worse_pairs_than_the_noise_floor_fail_the_claim(tmp_path):
    # twins that agree give a noise floor of 0, so the one worse pair is too many
    report = compare(_grids(tmp_path, aio43_small=OK, twins43_big=OK), "greedy_search", 1)
    assert report["noise_floor"]["count"] == 0 and report["claim"]["holds"] is False
    assert "1 worse pairs pooled > noise floor 0 of 2" in report["claim"]["line"]


def test_one_seed_gives_per_seed_verdicts_and_no_decided_claim(tmp_path):
    runs = _grids(tmp_path, aio43_small=OK, twins43_big=BAD)
    single = compare(runs[:1], "greedy_search", 1)
    assert single["worse_pairs"] == [["small", "test"]] and single["noise_floor"] is None
    assert single["claim"]["holds"] is None and "not decided" in single["claim"]["line"]
    # a noise floor can be measured beside a single seed; the claim still needs two
    with_floor = compare(runs[:1], "greedy_search", 1, noise_floor_roots=(runs[0][1], runs[1][1]))
    assert with_floor["noise_floor"]["count"] == 1 and with_floor["claim"]["holds"] is None


def test_the_noise_floor_needs_two_trainings_of_one_recipe(tmp_path):
    runs = _grids(tmp_path, aio43_small=OK, twins43_big=BAD)
    same_seed = _twins(tmp_path / "ind42b", 42, {"big": OK, "small": OK})
    with pytest.raises(ValueError, match="twins of big in the noise floor share a seed"):
        twin_noise_floor((runs[0][1], same_seed), ["big", "small"], "greedy_search", 1, 0.05)
    other = _twins(tmp_path / "ind44", 44, {"big": OK})
    with pytest.raises(FileNotFoundError, match="epoch-1.pt missing"):
        twin_noise_floor((runs[0][1], other), ["big", "small"], "greedy_search", 1, 0.05)


def test_claim_verdict_reads_pairs_from_json_lists_and_wants_two_seeds():
    floor = {"count": 2, "pairs": 20, "flagged": []}
    worse = [["a", "t1"], ["b", "t2"]]
    assert claim_verdict(worse, [[["a", "t1"]], [["b", "t2"]]], floor)["holds"] is True
    assert claim_verdict(worse, [[["a", "t1"]], [["a", "t1"], ["b", "t2"]]], floor)["holds"] is False
    assert claim_verdict(worse + [["c", "t1"]], [[], []], floor)["holds"] is False
    assert claim_verdict(worse, [[["a", "t1"]]], floor)["holds"] is None
    assert claim_verdict(worse, [[], []], None)["holds"] is None


def test_cli_wants_the_noise_floor_roots_in_a_pair(tmp_path):
    script = Path(__file__).resolve().parents[2] / "local" / "compare_all_in_one.py"
    args = ["--all-in-one-dir", "a1", "--individual-root", "r1", "--noise-floor-root", "r1"]
    out = subprocess.run(
        [sys.executable, str(script), *args, "--epoch", "1", "--out-dir", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and "--noise-floor-root is given twice or not at all, got 1" in out.stderr


def test_quantizer_and_unfolding_tables_say_their_verdicts_are_per_seed():
    from allinone.reports.criterion import SINGLE_SEED_NOTE
    from allinone.reports.quant_comparison import format_quant_report
    from allinone.reports.unfold_comparison import format_unfold_report

    vs = {"test": {"p": 0.5, "better": "same", "segments": 3}}
    quant = {
        "alpha": 0.05,
        "float": {"wer": {"test": 2.0}, "mb": 13.0},
        "rows": [
            {"method": "uniform 4-bit", "average_bits": 4.0, "bit_map": None, "stored_mb": 2.3,
             "compression": 5.6, "wer": {"test": 2.1}, "vs_float": vs, "lossless": True,
             "compression_seconds": 10.0, "compression_cpu_seconds": 9.0},
        ],
        "best_lossless_uniform": None,
        "best_lossless_one_stage": None,
    }  # fmt: skip
    assert SINGLE_SEED_NOTE in format_quant_report(quant)
    row = {
        "subnet": "d12", "logical_depth": 12, "encoder_params": 3e6, "plain_encoder_params": 6e6,
        "fewer_encoder_params": 0.5, "stored_mb": 13.0, "plain_stored_mb": 25.0, "train_peak_mb": None,
        "plain_train_peak_mb": None, "rtf": 0.01, "plain_rtf": 0.01, "wer": {"test": 5.0},
        "plain_wer": {"test": 11.0}, "vs_plain": vs,
    }  # fmt: skip
    unfold = {
        "rows": [row], "physical_blocks": 6, "alpha": 0.05, "method": "greedy_search", "epoch": 8,
        "significantly_worse": [], "deepest": "d12", "deepest_significantly_worse": False,
        "deepest_fewer_encoder_params": 0.5, "unfold_train_seconds": 1.0, "plain_train_seconds_sum": 2.0,
        "one_pass_train_peak_mb": None,
    }  # fmt: skip
    assert SINGLE_SEED_NOTE in format_unfold_report(unfold)
