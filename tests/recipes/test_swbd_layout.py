"""Switchboard's layout, faked: prepare.sh to the graphs, one training step with MUSAN, a decode.

The tree is what lhotse's switchboard and eval2000 recipes read: ``LDC97S62/.../sw0NNNN.sph``
(8 kHz, two channels, mu-law NIST SPHERE), ISIP's ``swb_ms98_transcriptions/NN/NNNN/
swNNNNA-ms98-a-trans.text`` with ms98 markup, and eval2000's ``LDC2002S09/hub5e_00/english/
*.sph`` with ``LDC2002T43/reference/english/*.txt`` in LDC's markup; plus a MUSAN tree. The
audio is word-specific tone bursts. lhotse reads ``.sph`` through the ``sph2pipe`` binary,
whose source cannot be fetched on the machines this runs on: a stand-in with the same
command line (``sph2pipe -f wav -p -t START:END FILE``, via soundfile) goes on PATH.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from lhotse import SupervisionSet, load_manifest_lazy

from allinone.utils.scoring import read_recogs
from tests.e2e.conftest import WORDS, _render
from tests.recipes.helpers import REPO, copy_recipe, decode, run, train_one_step

SR = 8000
TRAIN_CONVERSATIONS = ("sw02001", "sw02002", "sw02003")
EVAL_CONVERSATIONS = ("sw_4390", "en_4156")

SPH2PIPE_STAND_IN = """#!/usr/bin/env python3
# sph2pipe's command line as lhotse calls it: -f wav -p -t START:[END] FILE, WAV on stdout
import io, sys
import soundfile as sf
args = sys.argv[1:]
start, _, end = args[args.index("-t") + 1].partition(":")
info = sf.info(args[-1])
a = int(float(start) * info.samplerate)
b = int(float(end) * info.samplerate) if end else None
data, sr = sf.read(args[-1], dtype="int16", start=a, stop=b, always_2d=True)
buf = io.BytesIO()
sf.write(buf, data, sr, format="WAV", subtype="PCM_16")
sys.stdout.buffer.write(buf.getvalue())
"""


def _words(rng, n_min=2, n_max=4):
    return [w.lower() for w in rng.choice(WORDS, size=int(rng.integers(n_min, n_max + 1)))]


def _conversation(path: Path, rng, turns: int):
    """A two-channel SPHERE file; returns per channel a list of (start, end, spoken words)."""
    channels, segments = [], []
    for _ in range(2):
        audio, segs, t = [], [], 0.0
        for _ in range(turns):
            words = _words(rng)
            chunk = _render([w.upper() for w in words], rng, sr=SR)
            segs.append((t, t + chunk.size / SR, words))
            audio.append(chunk)
            t += chunk.size / SR
        channels.append(np.concatenate(audio))
        segments.append(segs)
    n = max(c.size for c in channels)
    stereo = np.stack([np.pad(c, (0, n - c.size)) for c in channels], axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, stereo, SR, format="NIST", subtype="ULAW")
    return segments


def _fake_corpora(dl: Path) -> dict:
    """Write Switchboard, eval2000 and MUSAN trees under ``dl``; return what the test checks."""
    rng = np.random.default_rng(0)
    train_texts = {}
    for conv in TRAIN_CONVERSATIONS:
        segments = _conversation(dl / "LDC97S62/swb1_d1/data" / f"{conv}.sph", rng, turns=4)
        num = conv[3:]  # sw02001 -> 2001
        for side, segs in zip("AB", segments):
            lines = [f"sw{num}{side}-ms98-a-0000 0.000000 0.050000 [silence]"]
            for k, (start, end, words) in enumerate(segs, 1):
                # ms98 markup the recipe cleans: noise, a laughed word, a hesitation, a fragment
                fragment = f"{words[-1][:2]}[{words[-1][2:]}]-"  # ms98: "th[ree]-"
                marked = ["[noise]", f"[laughter-{words[0]}]", "uh", *words[1:], fragment]
                lines.append(f"sw{num}{side}-ms98-a-{k:04d} {start:.6f} {end:.6f} {' '.join(marked)}")
                train_texts[f"sw{num}{side}-ms98-a-{k:04d}"] = " ".join(
                    [words[0], "uh", *words[1:], f"{words[-1][:2]}-"]
                )
            d = dl / "swb_ms98_transcriptions" / num[:2] / num
            d.mkdir(parents=True, exist_ok=True)
            (d / f"sw{num}{side}-ms98-a-trans.text").write_text("\n".join(lines) + "\n")
    eval_refs = {}
    for conv in EVAL_CONVERSATIONS:
        segments = _conversation(dl / "eval2000/LDC2002S09/hub5e_00/english" / f"{conv}.sph", rng, turns=2)
        lines = ["#Language: eng", f"#File id: {conv[3:]}", ""]
        for side, segs in zip("AB", segments):
            for start, end, words in segs:
                lines.append(f"{start:.2f} {end:.2f} {side}: %uh {' '.join(words)}, {{breath}}")
                eval_refs.setdefault(conv, []).append(" ".join(words))
        ref_dir = dl / "eval2000/LDC2002T43/reference/english"
        ref_dir.mkdir(parents=True, exist_ok=True)
        (ref_dir / f"{conv}.txt").write_text("\n\n".join(lines) + "\n")
    musan = dl / "musan"
    for part, name in (("noise/free-sound", "noise-free-sound-0000"), ("music/fma", "music-fma-0000")):
        (musan / part).mkdir(parents=True)
        sf.write(musan / part / f"{name}.wav", 0.05 * rng.standard_normal(16000 * 12), 16000)
    (musan / "music/fma/ANNOTATIONS").write_text("music-fma-0000 rock N someone\n")
    return {"train": train_texts, "eval": eval_refs}


def _env(tools: Path) -> dict:
    return {**os.environ, "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}"}


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    root = tmp_path_factory.mktemp("swbd")
    work = copy_recipe(root, "swbd")
    expected = _fake_corpora(work / "download")
    tools = root / "tools"
    tools.mkdir()
    (tools / "sph2pipe").write_text(SPH2PIPE_STAND_IN.replace("/usr/bin/env python3", sys.executable))
    (tools / "sph2pipe").chmod(0o755)
    env = _env(tools)
    run(["bash", "prepare.sh", "--vocab-size", "30", "--nj", "1", "--perturb-speed", "false",
          "--dev-conversations", "1"], work, env)  # fmt: skip
    return work, expected, env


def test_splits_hold_cleaned_text_one_speaker_per_side_and_a_held_out_conversation(recipe):
    work, expected, _ = recipe
    m = work / "data/manifests"
    train = SupervisionSet.from_file(m / "swbd_supervisions_train.jsonl.gz")
    dev = SupervisionSet.from_file(m / "swbd_supervisions_dev.jsonl.gz")
    assert {s.recording_id for s in dev} == {"sw02001"}  # the first conversation held out
    assert {s.recording_id for s in train} == {"sw02002", "sw02003"}
    # [silence] segments omitted; markup cleaned, hesitations and fragments kept as spoken
    assert {s.id: s.text for s in list(train) + list(dev)} == expected["train"]
    assert {s.speaker for s in train} == {"sw02002A", "sw02002B", "sw02003A", "sw02003B"}
    eval_sups = SupervisionSet.from_file(m / "swbd_supervisions_eval2000.jsonl.gz")
    assert all(s.text.startswith("uh ") and "{" not in s.text and "," not in s.text for s in eval_sups)


def test_features_are_16khz_fbank_of_one_channel_and_eval2000_is_split_by_source(recipe):
    work, expected, _ = recipe
    fbank = work / "data/fbank"
    cuts = list(load_manifest_lazy(fbank / "swbd_cuts_train.jsonl.gz"))
    assert cuts and all(c.sampling_rate == 16000 and c.num_channels == 1 for c in cuts)
    assert all(c.features.num_features == 80 for c in cuts)
    halves = {
        name: {c.recording_id for c in load_manifest_lazy(fbank / f"swbd_cuts_{name}.jsonl.gz")}
        for name in ("eval2000-swbd", "eval2000-callhome")
    }
    assert halves == {"eval2000-swbd": {"sw_4390"}, "eval2000-callhome": {"en_4156"}}
    musan = list(load_manifest_lazy(fbank / "musan_cuts.jsonl.gz"))
    assert len(musan) == 2 and all(c.has_features for c in musan)  # 12 s files: one 10 s window each
    lang = work / "data/lang_bpe_30"
    for name in ("bpe.model", "tokens.txt", "lexicon.txt", "HLG.fst"):
        assert (lang / name).is_file(), name


def test_one_training_step_with_musan_and_a_normalised_decode(recipe):
    work, expected, env = recipe
    exp = work / "conformer_transducer/exp_smoke"
    train_one_step(work, exp, "data/lang_bpe_30/bpe.model", "--enable-musan", "true", env=env)
    assert (exp / "epoch-1.pt").is_file()
    for method in ("greedy_search", "1best"):
        decode(work, exp, "data/lang_bpe_30", method, env=env)
        for test_set in ("eval2000", "eval2000-swbd", "eval2000-callhome"):
            others = ("recogs-eval2000-swbd", "recogs-eval2000-callhome")
            (recogs,) = [
                p
                for p in (exp / method).glob(f"recogs-{test_set}-*")
                if test_set != "eval2000" or not p.name.startswith(others)
            ]
            refs = [ref for _, ref, _ in read_recogs(recogs)]
            # scored after Switchboard's normalisation: the hesitation is gone from every reference
            assert refs and all(ref and "uh" not in ref for ref in refs), refs[:3]


def test_a_missing_sph2pipe_is_named(tmp_path):
    work = copy_recipe(tmp_path, "swbd")
    _fake_corpora(work / "download")
    env = {**_env(tmp_path / "no-tools"), "HOME": str(tmp_path)}
    out = subprocess.run(["bash", "prepare.sh"], cwd=work, capture_output=True, text=True, env=env)
    assert out.returncode != 0 and "sph2pipe not found" in out.stderr


def test_a_missing_corpus_is_named(tmp_path):
    work = copy_recipe(tmp_path, "swbd")
    out = subprocess.run(["bash", "prepare.sh"], cwd=work, capture_output=True, text=True)
    assert out.returncode != 0 and "download/LDC97S62 not found" in out.stderr


def test_fisher_transcripts_become_cleaned_lm_text(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("fisher_text", REPO / "egs/swbd/ASR/local/fisher_text.py")
    fisher_text = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fisher_text)
    d = tmp_path / "fe_03_p1_tran/data/trans/000"
    d.mkdir(parents=True)
    (d / "fe_03_00001.txt").write_text(
        "# fe_03_00001.txt\n\n0.36 1.45 A: hello [laughter]\n\n"
        "1.50 2.10 B: [noise]\n2.2 3.0 B: (( yeah )) i- i know\n"
    )
    out = tmp_path / "fisher_text.txt"
    fisher_text.main([str(tmp_path / "fe_03_p1_tran"), "--out", str(out)])
    assert out.read_text() == "hello\nyeah i- i know\n"
    with pytest.raises(SystemExit, match="no fe_03"):
        fisher_text.main([str(tmp_path / "fe_03_p1_tran/data/trans/000/nothing"), "--out", str(out)])
