"""The synthetic connected-digits generator (egs/synth_digits/ASR/local/generate_corpus.py).

A tiny corpus is generated twice with the same seed (with 2 and with 1 worker
processes, in different directories) and must come out byte-identical; then its
content is checked against the corpus design.  Skipped when a TTS tool is missing.
"""

import gzip
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "egs" / "synth_digits" / "ASR" / "local" / "generate_corpus.py"
WORDS = {"ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE", "OH"}
SPLITS = ("train", "dev", "test-seen", "test-unseen", "dev-unseen", "test-unseen-8k")
SIZES = ["--num-train", "6", "--num-dev", "2", "--num-test", "2"]

_missing = [t for t in ("espeak-ng", "flite", "festival", "sox") if shutil.which(t) is None]
needs_tts = pytest.mark.skipif(bool(_missing), reason=f"TTS/audio tools not installed: {_missing}")


def _module():
    name = "synth_digits_generate_corpus"
    spec = importlib.util.spec_from_file_location(name, SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


gc = _module()


def _generate(cwd: Path, *extra: str) -> subprocess.CompletedProcess:
    cwd.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(SCRIPT), "--out-dir", "download/synth_digits",
           "--manifest-dir", "data/manifests", "--seed", "7", *SIZES, *extra]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    if _missing:
        pytest.skip(f"TTS/audio tools not installed: {_missing}")
    a = tmp_path_factory.mktemp("corpus_a")
    b = tmp_path_factory.mktemp("corpus_b")
    for root, jobs in ((a, "2"), (b, "1")):
        out = _generate(root, "--num-jobs", jobs)
        assert out.returncode == 0, out.stderr[-3000:]
    return a, b


def _manifests(root: Path, kind: str, split: str):
    from lhotse import load_manifest

    return load_manifest(root / "data" / "manifests" / f"synth_digits_{kind}_{split}.jsonl.gz")


# ----------------------------------------------------------------- end to end


@needs_tts
def test_same_seed_gives_identical_audio_and_manifests(corpora):
    a, b = corpora
    wavs_a = sorted(p.relative_to(a) for p in (a / "download").rglob("*.wav"))
    wavs_b = sorted(p.relative_to(b) for p in (b / "download").rglob("*.wav"))
    assert wavs_a == wavs_b and len(wavs_a) == 6 + 2 + 4 * 2
    for rel in wavs_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    manifests = sorted((a / "data" / "manifests").glob("*.jsonl.gz"))
    assert len(manifests) == 2 * len(SPLITS)
    for m in manifests:
        assert m.read_bytes() == (b / "data" / "manifests" / m.name).read_bytes(), m.name
        assert gzip.decompress(m.read_bytes())


@needs_tts
def test_audio_format_and_levels(corpora):
    a, _ = corpora
    for split in SPLITS:
        for rec in _manifests(a, "recordings", split):
            assert rec.sampling_rate == 16000 and rec.num_channels == 1
            path = a / rec.sources[0].source
            info = sf.info(str(path))
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
            x, _ = sf.read(str(path), dtype="int16")
            rms_db = 20 * np.log10(np.sqrt(np.mean((x / 32768.0) ** 2)))
            assert -40 < rms_db < -15, (rec.id, rms_db)  # neither silent nor hot
            assert np.max(np.abs(x.astype(np.int32))) < 32767, rec.id  # not clipped
            assert 0.5 < rec.duration < 10


@needs_tts
def test_supervisions(corpora):
    a, _ = corpora
    for split in SPLITS:
        recs = {r.id: r for r in _manifests(a, "recordings", split)}
        sups = list(_manifests(a, "supervisions", split))
        assert len(sups) == len(recs) == {"train": 6, "dev": 2}.get(split, 2)
        for s in sups:
            assert s.id == s.recording_id and s.id in recs and s.id.startswith(split + "-")
            assert s.duration == pytest.approx(recs[s.id].duration)
            words = s.text.split()
            assert 1 <= len(words) <= 7 and set(words) <= WORDS
            assert s.speaker == f"{s.custom['engine']}_{s.custom['voice']}"
            aug = s.custom["augment"]
            assert 0.85 <= aug["speed"] <= 1.15 and 10 <= aug["snr_db"] <= 30
            assert aug["noise_type"] in gc.NOISE_TYPES
            assert s.custom["tts_text"].replace(",", "").split() == [w.lower() for w in words]


@needs_tts
def test_split_design(corpora):
    a, _ = corpora
    sups = {split: list(_manifests(a, "supervisions", split)) for split in SPLITS}
    speakers = {split: {s.speaker for s in sups[split]} for split in SPLITS}
    assert not speakers["test-unseen"] & (speakers["train"] | speakers["dev"])
    assert speakers["test-seen"] <= speakers["train"]
    train_strings = {s.text for s in sups["train"]}
    assert not {s.text for s in sups["test-seen"]} & train_strings
    assert not speakers["dev-unseen"] & set().union(*(speakers[s] for s in SPLITS if s != "dev-unseen"))
    # every test-unseen-8k utterance went through a telephone line: nothing above 4 kHz
    for sup in sups["test-unseen-8k"]:
        assert sup.custom["channel"]["kind"] == "telephone"
        audio, rate = sf.read(str(a / "download" / "synth_digits" / "test-unseen-8k" / f"{sup.id}.wav"))
        power = np.abs(np.fft.rfft(audio)) ** 2
        freqs = np.fft.rfftfreq(len(audio), 1 / rate)
        assert power[freqs > 4100].sum() < 1e-4 * power.sum()


@needs_tts
def test_rerun_keeps_existing_audio_and_refuses_other_settings(corpora):
    a, _ = corpora
    wav = next((a / "download").rglob("*.wav"))
    before = wav.stat().st_mtime_ns
    out = _generate(a, "--num-jobs", "2")
    assert out.returncode == 0, out.stderr[-3000:]
    assert wav.stat().st_mtime_ns == before
    out = _generate(a, "--seed", "8")  # later --seed wins
    assert out.returncode != 0 and "generated with" in out.stderr


# ----------------------------------------------------------------- units (no TTS needed)


def test_voice_pools_disjoint_and_cover_all_engines():
    seen, unseen = gc.voice_inventory()
    assert not {v.speaker for v in seen} & {v.speaker for v in unseen}
    for pool in (seen, unseen):
        assert {v.engine for v in pool} == {"espeak-ng", "flite", "festival"}
    assert any("klatt" in v.name for v in seen)


def test_plans_are_deterministic_and_respect_the_design():
    counts = {"train": 300, "dev": 20, "test-seen": 40, "test-unseen": 40}
    p1, p2 = gc.plan_corpus(3, counts), gc.plan_corpus(3, counts)
    assert p1 == p2
    assert gc.plan_corpus(4, counts) != p1
    train = {u["text"] for u in p1["train"]}
    assert not train & {u["text"] for u in p1["test-seen"]}
    seen_speakers = {u["speaker"] for u in p1["train"] + p1["dev"]}
    assert not seen_speakers & {u["speaker"] for u in p1["test-unseen"]}
    # an utterance's plan depends only on (seed, split, index), not on the split size
    small = gc.plan_corpus(3, {"train": 300, "dev": 5, "test-seen": 0, "test-unseen": 0})
    assert small["dev"] == p1["dev"][:5]


def test_channel_splits_and_train_variety_leave_the_plain_splits_as_they_were():
    counts = {"train": 300, "dev": 20, "test-seen": 40, "test-unseen": 40}
    before = gc.plan_corpus(3, counts)  # the four original splits only
    counts = {**counts, "dev-unseen": 40, "test-unseen-8k": 40}
    now = gc.plan_corpus(3, counts)
    variety = gc.plan_corpus(3, counts, train_variety=True)
    for split in ("train", "dev", "test-seen", "test-unseen"):
        assert now[split] == before[split] and all(u["channel"] is None for u in now[split])
    for split in ("dev", "test-unseen"):
        assert variety[split] == before[split]
    assert all(u["channel"] is None for u in variety["test-seen"])
    kinds = [u["channel"] and u["channel"]["kind"] for u in variety["train"]]
    assert 0.15 < kinds.count("telephone") / 300 < 0.35 and 0.25 < kinds.count("microphone") / 300 < 0.45
    assert 0.15 < sum(len(u["text"].split()) == 1 for u in variety["train"]) / 300 < 0.35
    assert len({u["speaker"] for u in variety["train"]}) > len({u["speaker"] for u in now["train"]})
    assert all(u["channel"]["kind"] == "telephone" for u in now["test-unseen-8k"])
    # test-unseen-8k speaks with test-unseen's voices, dev-unseen with voices of no other split
    _, unseen = gc.voice_inventory()
    assert {u["speaker"] for u in now["test-unseen-8k"]} <= {v.speaker for v in unseen}
    others = {u["speaker"] for plans in (now, variety) for split in counts if split != "dev-unseen"
              for u in plans[split]}  # fmt: skip
    assert not {u["speaker"] for u in now["dev-unseen"]} & others
