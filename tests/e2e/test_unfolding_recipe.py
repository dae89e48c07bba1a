"""End to end: unfolding training, decoding per logical depth, step memory and the comparison."""

import json
import subprocess
import sys
from pathlib import Path

import torch

from tests.e2e.test_all_in_one import decode_cmd, one_epoch
from tests.e2e.test_recipe import RECIPE, _env, run, train_cmd

REPO = Path(__file__).resolve().parents[2]
# The tiny model has 2 blocks: a seed of 2 unfolded to logical depths 4 and 3.
GRID = ["d4-w1.0-b32-urep", "d3-w1.0-b32-urep", "d2-w1.0-b32"]
PLAIN = {"d4-w1.0-b32-urep": "d4-w1.0-b32", "d3-w1.0-b32-urep": "d3-w1.0-b32", "d2-w1.0-b32": "d2-w1.0-b32"}


def test_unfolding_trains_decodes_and_compares_with_plain_models(tiny_corpus, tmp_path):
    root, lang = tiny_corpus
    exp = tmp_path / "unfold"
    flags = [
        "--subnets", ",".join(GRID), "--subnet-policy", "sandwich", "--sandwich-k", "1",
        "--distill", "true", "--distill-start-batch", "2", "--student-label-scale", "1.0",
        "--warmup-subnet", "d2-w1.0-b32", "--warmup-subnet-batches", "1",
        "--distill-scale", "0.5", "--subnet-loss-weights", "d2-w1.0-b32=0.3", "--unfold-relax", "true",
    ]  # fmt: skip
    run(one_epoch(train_cmd(root, lang, exp, *flags)))
    state = torch.load(exp / "epoch-1.pt", weights_only=False)
    assert state["subnets"] == GRID  # deepest first (sizes tie), the seed last
    assert state["model_config"]["unfold_relax"] == 1
    assert "encoder.unfold_gain" in state["model"]
    log = next((exp / "log").glob("log-train-*")).read_text()
    first, later = log.split("global 2:")[0], log.split("global 2:")[1]
    assert "/kl" not in first and "d2-w1.0-b32/kl" in later  # KL only from --distill-start-batch
    warmup_line = first.split("global 1:")[1].splitlines()[0]
    assert "(d2-w1.0-b32 " in warmup_line and "urep" not in warmup_line  # the seed alone
    assert "d4-w1.0-b32-urep" in later.splitlines()[0]

    # a warm-up subnet outside a grid with per-subnet BatchNorm statistics is refused up front
    bad = subprocess.run(
        train_cmd(root, lang, tmp_path / "bad", *flags[:-4], "--warmup-subnet", "d1-w1.0-b32"),
        capture_output=True, text=True, env=_env(), timeout=300,
    )  # fmt: skip
    assert bad.returncode != 0 and "--warmup-subnet d1-w1.0-b32 is not in the grid" in bad.stderr

    out = run(decode_cmd(root, lang, exp))
    for name in GRID:
        assert f"| {name} |" in out.stdout

    plain_root = tmp_path / "plain"
    for twin in PLAIN.values():
        depth = twin.split("-")[0][1:]
        d = plain_root / twin
        # the deeper plain twins warm up on their bottom 2 layers, like the one pass on its seed
        warmup = ["--warmup-subnet", "d2-w1.0-b32", "--warmup-subnet-batches", "1"] if depth != "2" else []
        run(one_epoch(train_cmd(root, lang, d, "--model", f"num_layers={depth}", *warmup)))
        run(decode_cmd(root, lang, d))

    memory = tmp_path / "memory.jsonl"
    bench = [
        sys.executable, str(RECIPE / "benchmark_memory.py"), "--json-out", str(memory),
        "--bpe-model", str(lang / "bpe.model"), "--cuts", str(root / "fbank/tiny_cuts_train.jsonl.gz"),
        "--max-duration", "6", "--num-batches", "1", "--model", "d_model=32", "num_heads=2",
        "ffn_dim=64", "num_layers=2", "kernel_size=5",
    ]  # fmt: skip
    run(bench + ["--subnets", "d4-w1.0-b32-urep"])
    run(bench + ["--subnets", "d4-w1.0-b32", "--model", "num_layers=4"])
    records = [json.loads(line) for line in memory.read_text().splitlines()]
    assert [r["num_layers"] for r in records] == [2, 4]
    assert records[0]["params"] < records[1]["params"]  # 2 physical blocks against 4

    cmp_dir = tmp_path / "cmp"
    out = run(
        [
            sys.executable,
            str(REPO / "local/compare_unfolding.py"),
            "--unfold-dir",
            str(exp),
            "--plain-root",
            str(plain_root),
            "--decoding-method",
            "greedy_search",
            "--epoch",
            "1",
            "--memory-file",
            str(memory),
            "--grid",
            ",".join(GRID),
            "--out-dir",
            str(cmp_dir),
        ]  # fmt: skip
    )
    report = json.loads((cmp_dir / "comparison.json").read_text())
    rows = {r["subnet"]: r for r in report["rows"]}
    assert [r["logical_depth"] for r in report["rows"]] == [4, 3, 2]
    deepest = rows["d4-w1.0-b32-urep"]
    assert deepest["schedule"] == [0, 0, 1, 1] and deepest["plain"] == "d4-w1.0-b32"
    # 2 shared blocks (+ the relaxation gains) against 4 plain blocks
    assert 0.3 < deepest["fewer_encoder_params"] < 0.5
    assert rows["d2-w1.0-b32"]["fewer_encoder_params"] == 0.0
    assert deepest["train_peak_mb"] is not None and deepest["plain_train_peak_mb"] is not None
    assert 0.0 <= deepest["vs_plain"]["test"]["p"] <= 1.0
    assert "fewer" in (cmp_dir / "comparison.md").read_text()


def test_unfolded_narrow_quantized_subnet_trains_decodes_and_exports(tiny_corpus, tmp_path):
    """Unfolding combined with the all-in-one axes: 2 blocks unfolded to 4, FFN width 0.5, 4-bit."""
    from tests.e2e.test_compression_recipe import _export_and_decode

    root, lang = tiny_corpus
    exp = tmp_path / "combined"
    combined = "d4-w0.5-b4-urep"
    grid = f"{combined},d2-w1.0-b32"
    run(one_epoch(train_cmd(root, lang, exp, "--subnets", grid, "--subnet-policy", "all")))
    state = torch.load(exp / "epoch-1.pt", weights_only=False)
    assert sorted(state["subnets"]) == sorted(grid.split(","))
    log = next((exp / "log").glob("log-train-*")).read_text()
    steps = [line for line in log.splitlines() if ", global " in line]  # training lines only
    assert steps and all(f" {combined} " in line or f"({combined} " in line for line in steps)

    out = run(decode_cmd(root, lang, exp, combined))
    assert f"| {combined} |" in out.stdout
    info = _export_and_decode(root, lang, exp, combined)
    assert info["average_bits"] == 4.0
