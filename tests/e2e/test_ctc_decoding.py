"""End to end: LM and graph preparation scripts, then every CTC decoding method of decode.py."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_all_in_one import decode_cmd, one_epoch
from tests.e2e.test_recipe import _env, run, train_cmd

pytest.importorskip("kaldifst")
pytest.importorskip("kaldi_decoder")
pytest.importorskip("kaldilm")

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def graph_lang(tiny_corpus, tmp_path_factory):
    root, lang = tiny_corpus
    out = tmp_path_factory.mktemp("lang") / "lang_bpe"
    shutil.copytree(lang, out)
    shutil.copy(root / "transcript.txt", out / "transcript_words.txt")
    run([sys.executable, str(REPO / "local/prepare_lang_bpe.py"), "--lang-dir", str(out)])
    arpa = out.parent / "lm" / "G_2_gram.arpa"
    run([sys.executable, str(REPO / "local/train_ngram_lm.py"), "--text", str(out / "transcript_words.txt"),
         "--order", "2", "--out", str(arpa)])  # fmt: skip
    run(
        [
            sys.executable,
            str(REPO / "local/prepare_ctc_graphs.py"),
            "--lang-dir",
            str(out),
            "--arpa",
            str(arpa),
        ]
    )
    for name in ("H.fst", "HL.fst", "HLG.fst", "G.fst", "L_disambig.fst", "lexicon_disambig.txt"):
        assert (out / name).stat().st_size > 0
    return out


@pytest.fixture(scope="module")
def ctc_model(tiny_corpus, tmp_path_factory):
    root, lang = tiny_corpus
    exp = tmp_path_factory.mktemp("exp_ctc")
    run(one_epoch(train_cmd(root, lang, exp, "--subnets", "d2-w1.0-b32,d1-w0.5-b4", "--use-ctc", "true")))
    return exp


def ctc_decode(root, lang, exp, method, graph_lang, *extra):
    cmd = decode_cmd(root, lang, exp)
    cmd[cmd.index("--decoding-method") + 1] = method
    return cmd + ["--lang-dir", str(graph_lang), *extra]


def hyps(res_dir: Path, pattern: str):
    (path,) = res_dir.glob(pattern)
    return [line for line in path.read_text().splitlines() if "hyp=" in line]


def test_every_ctc_method_decodes_every_subnet(tiny_corpus, graph_lang, ctc_model):
    root, lang = tiny_corpus
    for method in ("ctc-greedy-search", "ctc-decoding", "hl", "1best"):
        out = run(ctc_decode(root, lang, ctc_model, method, graph_lang, "--ngram-lm-scale", "0.5"))
        assert "| subnet |" in out.stdout and "d1-w0.5-b4" in out.stdout
        assert len(list((ctc_model / method).glob("recogs-test-*.txt"))) == 2  # one per subnet
    # H without an LM is CTC greedy decoding (utterance by utterance, on a real model)
    for subnet in ("d2-w1.0-b32", "d1-w0.5-b4"):
        greedy = hyps(ctc_model / "ctc-greedy-search", f"recogs-test-*-{subnet}-*.txt")
        h = hyps(ctc_model / "ctc-decoding", f"recogs-test-*-{subnet}-*.txt")
        assert greedy == h
    # graph outputs are lexicon words only
    lexicon = {line.split()[0] for line in (graph_lang / "lexicon.txt").read_text().splitlines()}
    for line in hyps(ctc_model / "1best", "recogs-test-*-d2-w1.0-b32-*.txt"):
        words = eval(line.split("hyp=", 1)[1])  # noqa: S307 - our own file, a Python list literal
        assert set(words) <= lexicon


def test_missing_or_mismatched_lang_dir_fails_before_decoding(tiny_corpus, graph_lang, ctc_model, tmp_path):
    root, lang = tiny_corpus
    bad = tmp_path / "lang_bad"
    shutil.copytree(graph_lang, bad)
    lines = (bad / "tokens.txt").read_text().splitlines()
    (bad / "tokens.txt").write_text("\n".join(lines[:-3] + lines[-2:]) + "\n")  # drop one model token
    for lang_dir, message in [(bad, "does not belong to this model"), (tmp_path / "nope", "does not exist")]:
        out = subprocess.run(
            ctc_decode(root, lang, ctc_model, "1best", lang_dir), capture_output=True, text=True, env=_env()
        )
        assert out.returncode != 0 and message in out.stderr, out.stderr[-1500:]
