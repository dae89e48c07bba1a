"""A tiny corpus made on the fly: digit strings rendered as word-specific tone bursts.

It exercises the real pipeline (wav files, lhotse manifests, fbank on disk, BPE,
train.py, decode.py) in seconds, without the text-to-speech tools.
"""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

WORDS = ["ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE", "OH"]
PREFIX = "tiny_cuts"


def _render(words, rng, sr=16000):
    chunks = [np.zeros(int(0.1 * sr))]
    for w in words:
        f0 = 300 + 150 * WORDS.index(w)
        t = np.arange(int(0.25 * sr)) / sr
        chunks.append(0.3 * np.sin(2 * np.pi * f0 * t) * np.hanning(t.size))
        chunks.append(np.zeros(int(0.05 * sr)))
    audio = np.concatenate(chunks)
    return (audio + 0.01 * rng.standard_normal(audio.size)).astype(np.float32)


def make_tiny_corpus(root: Path, sizes=None, seed=0) -> Path:
    """Write wavs, manifests, fbank cuts (and the training cuts' channel copies) and a BPE model
    under ``root``; return the lang dir."""
    from lhotse import (
        CutSet,
        Fbank,
        FbankConfig,
        LilcomChunkyWriter,
        Recording,
        RecordingSet,
        SupervisionSegment,
        SupervisionSet,
    )

    from allinone.data.channel_copies import CHANNEL_KINDS, compute_channel_copy, copy_manifest_name
    from allinone.data.lang import train_bpe_model

    sizes = sizes or {"train": 24, "dev": 4, "test": 4}
    rng = np.random.default_rng(seed)
    (root / "wav").mkdir(parents=True)
    fbank_dir = root / "fbank"
    fbank_dir.mkdir()
    texts = []
    for split, n in sizes.items():
        recs, sups = [], []
        for i in range(n):
            words = list(rng.choice(WORDS, size=int(rng.integers(1, 4))))
            uid = f"{split}-{i:03d}"
            path = root / "wav" / f"{uid}.wav"
            sf.write(path, _render(words, rng), 16000, subtype="PCM_16")
            rec = Recording.from_file(path, recording_id=uid)
            recs.append(rec)
            sups.append(
                SupervisionSegment(
                    id=uid,
                    recording_id=uid,
                    start=0.0,
                    duration=rec.duration,
                    text=" ".join(words),
                    speaker="tone",
                )
            )
            if split == "train":
                texts.append(" ".join(words))
        cuts = CutSet.from_manifests(RecordingSet.from_recordings(recs), SupervisionSet.from_segments(sups))
        cuts = cuts.compute_and_store_features(
            Fbank(FbankConfig(num_mel_bins=80)),
            storage_path=fbank_dir / f"feats_{split}",
            storage_type=LilcomChunkyWriter,
            num_jobs=1,
        )
        cuts.to_file(fbank_dir / f"{PREFIX}_{split}.jsonl.gz")
        if split == "train":  # the synth_digits recipe hears them (--channel-copies)
            for kind in CHANNEL_KINDS:
                copy = compute_channel_copy(cuts, kind, seed, fbank_dir / f"feats_{split}-{kind}")
                copy.to_file(fbank_dir / copy_manifest_name(f"{PREFIX}_{split}.jsonl.gz", kind))
    (root / "transcript.txt").write_text("\n".join(texts + [" ".join(WORDS)]) + "\n")
    lang = root / "lang_bpe"
    train_bpe_model(root / "transcript.txt", lang / "bpe.model", vocab_size=24)
    return lang


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_corpus")
    lang = make_tiny_corpus(root)
    return root, lang
