"""End to end: compression runs from a float model, export, packed decoding, the table."""

import json
import subprocess
import sys
from pathlib import Path

import torch

from allinone.checkpoint.weights import float_weights
from tests.e2e.test_all_in_one import decode_cmd, one_epoch
from tests.e2e.test_recipe import RECIPE, _env, run, train_cmd

REPO = Path(__file__).resolve().parents[2]


def _compress(root, lang, exp, float_ckpt, *flags_extra):
    ckpt = str(float_ckpt)
    flags = [
        "--init-from",
        ckpt,
        "--teacher-checkpoint",
        ckpt,
        "--distill",
        "true",
        "--student-label-scale",
        "1.0",
    ]
    return run(one_epoch(train_cmd(root, lang, exp, *flags, *flags_extra)))


def _export_and_decode(root, lang, exp, subnet):
    out = run(
        [sys.executable, str(RECIPE / "export.py"), "--exp-dir", str(exp), "--epoch", "1", "--subnet", subnet]
    )
    assert "reloaded encoder and heads max |diff|" in out.stdout
    info = json.loads((exp / f"{subnet}.json").read_text())
    # The header (~3 KB) is 2-3% of this toy model; tests/quant/test_export.py holds the 2% bound.
    assert abs(info["file_vs_accounting"]) < 0.05 and info["max_abs_diff"] <= 1e-5
    packed = decode_cmd(root, lang, exp)
    packed[packed.index("--epoch") : packed.index("--epoch") + 2] = [
        "--packed-model",
        str(exp / f"{subnet}.aio"),
    ]
    run(packed)
    return info


def test_quantizers_train_export_decode_and_tabulate(tiny_corpus, tmp_path):
    root, lang = tiny_corpus
    float_dir = tmp_path / "float"
    run(one_epoch(train_cmd(root, lang, float_dir)))
    run(decode_cmd(root, lang, float_dir))
    ckpt = float_dir / "epoch-1.pt"

    uniform = tmp_path / "lsq-b4"
    _compress(root, lang, uniform, ckpt, "--subnets", "d2-w1.0-b4", "--model", "quant_granularity=group",
              "quant_group_size=16")  # fmt: skip
    run(decode_cmd(root, lang, uniform))  # the checkpoint itself, for the packed-file equality below
    info = _export_and_decode(root, lang, uniform, "d2-w1.0-b4")
    assert info["average_bits"] == 4.0
    res = uniform / "greedy_search"
    ckpt_recogs = next(res.glob("recogs-test-*-d2-w1.0-b4-epoch-1-*.txt")).read_text()
    packed_recogs = next(res.glob("recogs-test-*-d2-w1.0-b4-packed.txt")).read_text()
    assert ckpt_recogs == packed_recogs  # the packed file decodes exactly like the checkpoint
    kept = decode_cmd(root, lang, uniform)
    kept[kept.index("--epoch") : kept.index("--epoch") + 2] = [
        "--packed-model",
        str(uniform / "d2-w1.0-b4.aio"),
    ]
    run(kept + ["--keep-codes", "true"])  # the weights stay packed in memory
    assert next(res.glob("recogs-test-*-d2-w1.0-b4-packed-codes.txt")).read_text() == packed_recogs
    (float_row,) = json.loads(next(res.glob("subnet-summary-*-packed.json")).read_text())
    (codes_row,) = json.loads(next(res.glob("subnet-summary-*-packed-codes.json")).read_text())
    assert codes_row["weights_mb"] < float_row["weights_mb"] and codes_row["peak_rss_mb"] > 0

    search = tmp_path / "mp1"
    _compress(root, lang, search, ckpt, "--subnets", "d2-w1.0-bmix", "--model", "mp_candidates=2,3,4,6,8",
              "--mp-target-bits", "3", "--mp-anneal-batches", "1")  # fmt: skip
    log = next((search / "log").glob("log-train-*")).read_text()
    assert "expected_bits" in log and "mixed precision: average" in log
    # the search ends after --mp-anneal-batches; the rest of the epoch trains at the fixed map
    steps = [line for line in log.splitlines() if " global " in line]
    assert "expected_bits" in steps[0] and len(steps) > 1
    assert not any("expected_bits" in line for line in steps[1:])
    bit_map = json.loads((search / "bit-map.json").read_text())
    assert set(bit_map["layers"].values()) <= {2, 3, 4, 6, 8}
    assert abs(bit_map["average_bits"] - 3.0) < 0.1  # finalised under the budget
    for kind in ("model", "model_avg"):  # the last epoch's checkpoint holds the finalised map
        saved = torch.load(search / "epoch-1.pt", map_location="cpu", weights_only=False)[kind]
        fixed_bits = {k[: -len(".mp_bits")]: int(v) for k, v in saved.items() if k.endswith(".mp_bits")}
        assert fixed_bits == bit_map["layers"]

    # The independent two-stage baseline: a search over the frozen float weights, then the
    # float model quantized at that map and retrained.
    frozen = tmp_path / "mp2-search"
    _compress(root, lang, frozen, ckpt, "--subnets", "d2-w1.0-bmix", "--model", "mp_candidates=2,3,4,6,8",
              "--mp-target-bits", "3", "--mp-anneal-batches", "1", "--freeze-weights", "true")  # fmt: skip
    float_state, _ = float_weights(ckpt, "epoch-mean")
    searched = torch.load(frozen / "epoch-1.pt", weights_only=False)["model"]
    weights = [k for k in float_state if k.endswith((".weight", ".bias"))]
    assert weights and all(torch.equal(searched[k], float_state[k]) for k in weights)  # never updated
    bit_map = json.loads((frozen / "bit-map.json").read_text())
    retrain = tmp_path / "mp2"
    _compress(root, lang, retrain, ckpt, "--subnets", "d2-w1.0-bmix", "--model", "mp_candidates=2,3,4,6,8",
              "--bit-map", str(frozen / "bit-map.json"))  # fmt: skip
    state = torch.load(retrain / "epoch-1.pt", weights_only=False)
    fixed = {k[: -len(".mp_bits")]: int(v) for k, v in state["model"].items() if k.endswith(".mp_bits")}
    assert fixed == bit_map["layers"]  # the two-stage run kept the searched map
    info = _export_and_decode(root, lang, retrain, "d2-w1.0-bmix")
    assert info["bit_map"] == bit_map["layers"]

    gq = tmp_path / "gq-b2"
    _compress(root, lang, gq, ckpt, "--subnets", "d2-w1.0-b2", "--model", "quantizer=gq",
              "--gq-anneal-batches", "2", "--reorder-ffn-units", "weight-norm")  # fmt: skip
    gq_log = next((gq / "log").glob("log-train-*")).read_text()
    assert "FFN hidden units of 4 FFNs ordered by weight-norm" in gq_log
    _export_and_decode(root, lang, gq, "d2-w1.0-b2")

    ptq = tmp_path / "ptq"
    run(
        [
            sys.executable,
            str(RECIPE / "quantize_ptq.py"),
            "--float-checkpoint",
            str(ckpt),
            "--exp-dir",
            str(ptq),
        ]
    )
    _export_and_decode(root, lang, ptq, "d2-w1.0-b8")

    out_dir = tmp_path / "cmp"
    run([sys.executable, str(REPO / "local/compare_quantizers.py"), "--float-dir", str(float_dir),
         "--float-epoch", "1", "--decoding-method", "greedy_search", "--out-dir", str(out_dir),
         "--run", f"uniform 4-bit={uniform}", "--run", f"GQ 2-bit={gq}", "--run", f"int8={ptq}",
         "--run", f"two-stage 3={retrain}", "--search", f"two-stage 3={frozen}"])  # fmt: skip
    report = json.loads((out_dir / "comparison.json").read_text())
    rows = {r["method"]: r for r in report["rows"]}
    seconds = lambda d: torch.load(d / "epoch-1.pt", weights_only=False)["train_seconds"]  # noqa: E731
    assert abs(rows["two-stage 3"]["compression_seconds"] - seconds(retrain) - seconds(frozen)) < 1e-6
    assert 0 < rows["uniform 4-bit"]["compression_cpu_seconds"]
    assert (
        rows["GQ 2-bit"]["compression"] > rows["uniform 4-bit"]["compression"] > rows["int8"]["compression"]
    )
    assert "Per-layer bits of two-stage 3" in (out_dir / "comparison.md").read_text()


def test_bad_compression_inputs_fail_with_clear_messages(tiny_corpus, tmp_path):
    root, lang = tiny_corpus
    float_dir = tmp_path / "float"
    run(one_epoch(train_cmd(root, lang, float_dir)))
    bad_map = tmp_path / "map.json"
    bad_map.write_text('{"layers": {"encoder.nothing": 3}}')
    for flags, message in [
        (["--subnets", "d2-w1.0-bmix", "--model", "mp_candidates=2,4", "--bit-map", str(bad_map)],
         "map.json does not match the model"),
        (["--subnets", "d2-w1.0-b4", "--mp-target-bits", "3"], "--mp-target-bits needs mixed-precision"),
        (["--subnets", "d2-w1.0-b4", "--init-from", str(tmp_path / "none.pt")], "none.pt does not exist"),
    ]:  # fmt: skip
        out = subprocess.run(
            train_cmd(root, lang, tmp_path / "x", *flags), capture_output=True, text=True, env=_env()
        )
        assert out.returncode != 0 and message in out.stderr, out.stderr[-1500:]
    damaged = tmp_path / "damaged.aio"
    damaged.write_bytes(b"AIOPACK\x01" + b"\x00" * 20)
    cmd = decode_cmd(root, lang, tmp_path / "x")
    cmd[cmd.index("--epoch") : cmd.index("--epoch") + 2] = ["--packed-model", str(damaged)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=_env())
    assert out.returncode != 0 and "damaged.aio" in out.stderr
