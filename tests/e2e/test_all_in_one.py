"""End to end: nested training, per-subnet decoding and the comparison with individual twins."""

import json
import subprocess
import sys
from pathlib import Path

import torch

from tests.e2e.conftest import PREFIX
from tests.e2e.test_recipe import RECIPE, _env, run, train_cmd

REPO = Path(__file__).resolve().parents[2]
GRID = ["d2-w1.0-b32", "d1-w0.5-b4", "d2-w0.5-b2"]


def decode_cmd(root: Path, lang: Path, exp: Path, subnets: str = "all") -> list:
    return [
        sys.executable, str(RECIPE / "decode.py"), "--epoch", "1", "--avg", "1", "--exp-dir", str(exp),
        "--bpe-model", str(lang / "bpe.model"), "--manifest-dir", str(root / "fbank"),
        "--cuts-prefix", PREFIX,
        "--test-sets", "test", "--decoding-method", "greedy_search", "--subnets", subnets,
    ]  # fmt: skip


def one_epoch(cmd: list) -> list:
    cmd[cmd.index("--num-epochs") + 1] = "1"
    return cmd


def test_all_in_one_train_decode_and_compare(tiny_corpus, tmp_path):
    root, lang = tiny_corpus
    aio = tmp_path / "aio"
    out = run(
        one_epoch(
            train_cmd(
                root,
                lang,
                aio,
                "--subnets",
                ",".join(GRID),
                "--subnet-policy",
                "sandwich",
                "--sandwich-k",
                "1",
                "--distill",
                "true",
            )  # fmt: skip
        )
    )
    state = torch.load(aio / "epoch-1.pt", weights_only=False)
    assert state["subnets"][0] == "d2-w1.0-b32" and sorted(state["subnets"]) == sorted(GRID)
    log = next((aio / "log").glob("log-train-*")).read_text()
    assert "d1-w0.5-b4/kl" in log and "validation loss/frame" in log and "d2-w0.5-b2 " in log
    summary = json.loads((aio / "train-summary.json").read_text())
    assert summary["train_seconds"] > 0 and summary["policy"] == "sandwich"

    for name in GRID:
        run(one_epoch(train_cmd(root, lang, tmp_path / "ind" / name, "--subnets", name)))
        run(decode_cmd(root, lang, tmp_path / "ind" / name))
    # one twin trained again with another seed: the run-to-run spread table
    repeat = tmp_path / "ind_seed7" / GRID[1]
    run(one_epoch(train_cmd(root, lang, repeat, "--subnets", GRID[1], "--seed", "7")))
    run(decode_cmd(root, lang, repeat))
    out = run(decode_cmd(root, lang, aio))
    assert "| subnet | params (M) | stored (MB) | compression | WER test | RTF |" in out.stdout
    res = aio / "greedy_search"
    for name in GRID:
        assert list(res.glob(f"recogs-test-greedy_search-{name}-epoch-1-*.txt"))
    # Recomputed BatchNorm statistics: results of their own, the plain ones left as they were.
    plain = {p.name: p.read_bytes() for p in res.glob("recogs-*")}
    cmd = decode_cmd(root, lang, aio) + ["--bn-calibration-batches", "2"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=300)
    assert out.returncode != 0 and "lower --bn-calibration-max-duration" in out.stderr  # 60 s > the corpus
    run(cmd + ["--bn-calibration-max-duration", "3"])
    calibrated = aio / "greedy_search-bn-calibrated"
    for name in GRID:
        assert list(calibrated.glob(f"recogs-test-greedy_search-{name}-epoch-1-*.txt"))
    assert {p.name: p.read_bytes() for p in res.glob("recogs-*")} == plain
    log = "".join(p.read_text() for p in calibrated.glob("log-decode*"))  # the failed run's too
    assert all(f"{name}: BatchNorm statistics recomputed on 2 batches" in log for name in GRID)

    cmp_dir = tmp_path / "cmp"
    out = run(
        [
            sys.executable,
            str(REPO / "local/compare_all_in_one.py"),
            "--all-in-one-dir",
            str(aio),
            "--individual-root",
            str(tmp_path / "ind"),
            "--decoding-method",
            "greedy_search",
            "--epoch",
            "1",
            "--out-dir",
            str(cmp_dir),
            "--repeat-individual-root",
            str(tmp_path / "ind_seed7"),
        ]  # fmt: skip
    )
    report = json.loads((cmp_dir / "comparison.json").read_text())
    assert [r["subnet"] for r in report["rows"]] == state["subnets"]
    (rep,) = report["repeats"]  # only the subnet trained again
    assert rep["subnet"] == GRID[1] and 0.0 <= rep["repeat_vs_individual"]["test"]["p"] <= 1.0
    assert 0.0 <= rep["aio_vs_repeat"]["test"]["p"] <= 1.0
    assert "test repeat vs twin p" in (cmp_dir / "comparison.md").read_text()
    ckpts = [tmp_path / "ind" / n / "epoch-1.pt" for n in GRID]
    seconds = [torch.load(p, weights_only=False)["train_seconds"] for p in ckpts]
    aio_seconds = state["train_seconds"]
    assert abs(summary["train_seconds"] - aio_seconds) < 0.06  # the summary rounds to 0.1 s
    assert abs(report["individual_train_seconds_sum"] - sum(seconds)) < 1e-6
    assert abs(report["speedup"] - sum(seconds) / aio_seconds) < 1e-6
    for r in report["rows"]:
        assert 0.0 <= r["aio_vs_individual"]["test"]["p"] <= 1.0
    full = report["rows"][0]
    assert full["compression"] == 1.0 and full["individual_lossless"]  # the baseline against itself
    assert (cmp_dir / "wer_vs_size.png").stat().st_size > 1000
    assert "Training wall time" in (cmp_dir / "comparison.md").read_text()


def test_unknown_subnet_lists_the_valid_ones_and_impossible_grids_fail_first(tiny_corpus, tmp_path):
    root, lang = tiny_corpus
    exp = tmp_path / "exp"
    run(one_epoch(train_cmd(root, lang, exp, "--subnets", "d2-w1.0-b32,d1-w1.0-b8")))
    bad = subprocess.run(
        decode_cmd(root, lang, exp, "d1-w0.5-b8"), capture_output=True, text=True, env=_env()
    )
    assert bad.returncode != 0
    assert "unknown subnets ['d1-w0.5-b8']; this checkpoint holds: d2-w1.0-b32, d1-w1.0-b8" in bad.stderr
    # a blank penalty ends the suffix of every result file, so none replaces a plain one
    res = exp / "greedy_search"

    def result_files():
        return {
            p.name: p.read_bytes() for p in res.iterdir() if p.is_file() and not p.name.startswith("log-")
        }

    run(decode_cmd(root, lang, exp, "d1-w1.0-b8"))
    plain = result_files()
    run(decode_cmd(root, lang, exp, "d1-w1.0-b8") + ["--blank-penalty", "0.5"])
    after = result_files()
    assert {n: after[n] for n in plain} == plain
    added = sorted(set(after) - set(plain))
    assert all(
        n.endswith(("-blank-penalty-0.5.txt", "-blank-penalty-0.5.json", "-blank-penalty-0.5.md"))
        for n in added
    )
    assert {n.split("-test")[0] for n in added if "-test-" in n} == {"recogs", "errs", "wer-summary"}
    assert any(n.startswith("subnet-summary-greedy_search-") for n in added)

    for grid, message in [
        ("d3-w1.0-b32", "needs 3 layers, the model has 2"),
        ("d2-w1.5-b32", "FFN width ratio must be in (0, 1]"),
        ("d2-w1.0-b7", "unsupported bit-width 7"),
    ]:
        exp = tmp_path / f"bad-{grid}"
        out = subprocess.run(
            train_cmd(root, lang, exp, "--subnets", grid), capture_output=True, text=True, env=_env()
        )
        assert out.returncode != 0 and message in out.stderr, out.stderr[-2000:]
        assert not list(exp.glob("*.pt"))


def test_resume_refuses_a_changed_grid_and_mid_epoch_checkpoints_count_time(tiny_corpus, tmp_path):
    root, lang = tiny_corpus
    exp = tmp_path / "exp"
    grid = "d2-w1.0-b32,d1-w0.5-b4"
    run(one_epoch(train_cmd(root, lang, exp, "--subnets", grid)))
    mid = torch.load(exp / "checkpoint-2.pt", weights_only=False)  # epoch 1 has 4 batches
    end = torch.load(exp / "epoch-1.pt", weights_only=False)
    assert 0 < mid["train_seconds"] < end["train_seconds"]
    changed = train_cmd(root, lang, exp, "--subnets", grid, "--distill", "true", "--start-epoch", "2")
    out = subprocess.run(changed, capture_output=True, text=True, env=_env())
    assert out.returncode != 0 and "was trained with the nested plan" in out.stderr, out.stderr[-1500:]
    # another learning rate would continue a different recipe from the middle of this one
    other_lr = train_cmd(root, lang, exp, "--subnets", grid, "--base-lr", "0.005", "--start-epoch", "2")
    out = subprocess.run(other_lr, capture_output=True, text=True, env=_env())
    assert out.returncode != 0 and "was trained with --base-lr" in out.stderr and "(now 0.005)" in out.stderr


def test_quantized_heads_train_decode_and_shrink_the_accounted_size(tiny_corpus, tmp_path):
    """--model quantize_heads=true: the b2 subnet's decoder, joiner and CTC head are 2-bit
    too, decoding runs them so, and the summary's stored size counts them so."""
    from allinone.deploy.accounting import subnet_footprint
    from allinone.nn.model import ModelConfig, Transducer
    from allinone.subnet import SubnetConfig

    root, lang = tiny_corpus
    exp = tmp_path / "heads"
    grid = ["d2-w1.0-b32", "d2-w0.5-b2"]
    run(one_epoch(train_cmd(root, lang, exp, "--subnets", ",".join(grid), "--model", "quantize_heads=true")))
    state = torch.load(exp / "epoch-1.pt", weights_only=False)
    assert state["model_config"]["quantize_heads"] is True
    assert any(k.startswith("joiner.output_linear.steps.") for k in state["model"])
    run(decode_cmd(root, lang, exp))
    (summary,) = (exp / "greedy_search").glob("subnet-summary-*.json")
    stored = {r["subnet"]: r["stored_bytes"] for r in json.loads(summary.read_text())}
    cfg = state["model_config"]
    float_heads = Transducer(ModelConfig.from_dict({**cfg, "quantize_heads": False}))
    quant_heads = Transducer(ModelConfig.from_dict(cfg))
    b2 = SubnetConfig.from_name(grid[1])
    assert stored[grid[1]] == subnet_footprint(quant_heads, b2).stored_bytes
    assert stored[grid[1]] < subnet_footprint(float_heads, b2).stored_bytes
    assert stored[grid[0]] == subnet_footprint(float_heads, SubnetConfig.from_name(grid[0])).stored_bytes


def test_a_float_subnet_trains_identically_with_and_without_quantized_heads(tiny_corpus, tmp_path):
    """Why the comparison accepts a float twin trained without quantize_heads as the twin of
    a one pass with it: a float subnet runs no quantizer, so its training is the same."""
    root, lang = tiny_corpus
    states = []
    for flag in ("false", "true"):
        exp = tmp_path / flag / "d2-w1.0-b32"
        run(
            one_epoch(
                train_cmd(root, lang, exp, "--subnets", "d2-w1.0-b32", "--model", f"quantize_heads={flag}")
            )
        )
        states.append(torch.load(exp / "epoch-1.pt", weights_only=False))
    plain, heads = states
    assert heads["model_config"]["quantize_heads"] and not plain["model_config"]["quantize_heads"]
    for key in ("model", "model_avg"):
        assert set(plain[key]) < set(heads[key])  # only the heads' quantizer steps are added
        for name, value in plain[key].items():
            assert torch.equal(value, heads[key][name]), (key, name)
