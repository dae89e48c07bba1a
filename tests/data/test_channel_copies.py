"""Channel copies of a training set: their features are the fbank of the channel's audio,
and the per-epoch swap is a fixed function of (seed, epoch, cut id)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from lhotse import CutSet, Fbank, FbankConfig, Recording, SupervisionSegment
from lhotse.testing.dummies import dummy_cut

from allinone.data.channel import apply_channel
from allinone.data.channel_copies import (
    ChannelCopySwap,
    channel_of_copy,
    compute_channel_copy,
    copy_manifest_name,
)
from allinone.data.datamodule import AsrDataModule, load_channel_copies
from allinone.data.features import compute_fbank, write_cuts_atomically

SR = 16000
SCRIPT = Path(__file__).resolve().parents[2] / "local/compute_channel_copies.py"


def _audio_cuts(tmp_path: Path, n: int = 6) -> CutSet:
    """``n`` mono 16 kHz cuts of chirps plus noise, 0.8-1.3 s, one supervision each."""
    rng = np.random.default_rng(0)
    cuts = []
    for i in range(n):
        seconds = 0.8 + 0.1 * i
        t = np.arange(int(SR * seconds)) / SR
        x = 0.3 * np.sin(2 * np.pi * (200 + 3000 * t) * t) + 0.02 * rng.standard_normal(len(t))
        path = tmp_path / f"utt{i}.wav"
        sf.write(path, x, SR, subtype="PCM_16")
        rec = Recording.from_file(path, recording_id=f"utt{i}")
        sup = SupervisionSegment(f"utt{i}", f"utt{i}", 0.0, rec.duration, text="ONE TWO")
        cut = rec.to_cut()
        cut.supervisions = [sup]
        cuts.append(cut)
    return CutSet.from_cuts(cuts)


def test_copy_name():
    assert copy_manifest_name("x_cuts_train.jsonl.gz", "telephone") == "x_cuts_train-telephone.jsonl.gz"


def test_a_copy_holds_the_fbank_of_its_channel_audio_and_any_job_count_gives_it(tmp_path):
    cuts = _audio_cuts(tmp_path)
    one = compute_channel_copy(cuts, "telephone", 7, tmp_path / "tel1", num_jobs=1)
    two = compute_channel_copy(cuts, "telephone", 7, tmp_path / "tel2", num_jobs=2)
    extractor = Fbank(FbankConfig(num_mel_bins=80))
    for cut, a, b in zip(cuts, one, two):
        assert a.id == b.id == cut.id
        assert a.supervisions == cut.supervisions and a.duration == cut.duration
        assert not a.has_recording and a.custom["channel"] == channel_of_copy(7, cut.id, "telephone")
        heard = apply_channel(cut.load_audio()[0].astype(np.float64), SR, a.custom["channel"])
        expected = extractor.extract(heard.astype(np.float32)[None], SR)
        # lilcom stores log energies to about 0.4% of their range
        np.testing.assert_allclose(a.load_features(), expected, atol=0.05)
        np.testing.assert_array_equal(a.load_features(), b.load_features())
    # The telephone band ends at 4 kHz: the top mel bins lose their energy against the clean cut.
    clean = extractor.extract(cuts[0].load_audio(), SR)
    assert (clean[:, -20:].mean() - one[0].load_features()[:, -20:].mean()) > 3.0
    # Another seed draws other channels.
    assert channel_of_copy(8, cuts[0].id, "telephone") != channel_of_copy(7, cuts[0].id, "telephone")
    mic = channel_of_copy(7, cuts[0].id, "microphone")
    assert mic["kind"] == "microphone" and len(mic["bumps"]) == 3
    with pytest.raises(ValueError, match="unknown channel kind"):
        channel_of_copy(7, "x", "radio")


def _copies(n=400):
    cuts = [dummy_cut(i) for i in range(n)]
    tel = {c.id: c.with_id(c.id) for c in cuts}
    mic = {c.id: c.with_id(c.id) for c in cuts}
    for c in tel.values():
        c.custom = {"kind": "telephone"}
    for c in mic.values():
        c.custom = {"kind": "microphone"}
    return CutSet.from_cuts(cuts), tel, mic


def _kinds(cuts: CutSet):
    return [(c.custom or {}).get("kind") for c in cuts]


def test_the_swap_hears_copies_at_its_rate_and_depends_only_on_seed_epoch_and_id():
    cuts, tel, mic = _copies()
    swap = ChannelCopySwap([tel, mic], prob=0.4, seed=3, epoch=5)
    kinds = _kinds(swap(cuts))
    assert [c.id for c in swap(cuts)] == [c.id for c in cuts]
    assert kinds.count("telephone") / len(kinds) == pytest.approx(0.2, abs=0.05)
    assert kinds.count("microphone") / len(kinds) == pytest.approx(0.2, abs=0.05)
    # A cut's fate does not depend on the batch it comes in.
    half = CutSet.from_cuts(list(cuts)[::2])
    assert _kinds(swap(half)) == kinds[::2]
    # Another epoch or seed swaps other cuts; the same one swaps the same.
    assert _kinds(ChannelCopySwap([tel, mic], 0.4, 3, 5)(cuts)) == kinds
    assert _kinds(ChannelCopySwap([tel, mic], 0.4, 3, 6)(cuts)) != kinds
    assert _kinds(ChannelCopySwap([tel, mic], 0.4, 4, 5)(cuts)) != kinds
    assert _kinds(ChannelCopySwap([tel, mic], 0.0, 3, 5)(cuts)) == [None] * len(cuts)
    assert set(_kinds(ChannelCopySwap([tel], 1.0, 3, 5)(cuts))) == {"telephone"}


def test_a_cut_without_a_copy_is_named():
    cuts, tel, mic = _copies(50)
    del tel[cuts[0].id], tel[cuts[1].id]
    with pytest.raises(KeyError, match="tel.jsonl.gz: no copy of training cut"):
        ChannelCopySwap([tel], 1.0, 0, 0, names=["tel.jsonl.gz"])(cuts)
    with pytest.raises(ValueError, match="within"):
        ChannelCopySwap([tel], 1.5, 0, 0)


def test_training_batches_carry_the_copies_the_swap_chose(tmp_path):
    cuts = _audio_cuts(tmp_path, n=8)
    clean = compute_fbank(cuts, tmp_path / "feats_train")
    write_cuts_atomically(clean, tmp_path / "cuts_train.jsonl.gz")
    script = [sys.executable, str(SCRIPT), "--cuts", str(tmp_path / "cuts_train.jsonl.gz")]
    script += ["--feats-prefix", str(tmp_path / "feats_train"), "--num-jobs", "1", "--seed", "5"]
    subprocess.run(script, check=True, capture_output=True)
    copies, names = load_channel_copies(tmp_path, "cuts_train.jsonl.gz", ["telephone", "microphone"])
    assert names == [str(tmp_path / f"cuts_train-{k}.jsonl.gz") for k in ("telephone", "microphone")]
    assert set(copies[0]) == set(copies[1]) == {c.id for c in cuts}
    # A rerun finds the copies made and leaves them alone.
    before = (tmp_path / "cuts_train-telephone.jsonl.gz").stat().st_mtime_ns
    assert "exists, skipping" in subprocess.run(script, check=True, capture_output=True, text=True).stderr
    assert (tmp_path / "cuts_train-telephone.jsonl.gz").stat().st_mtime_ns == before

    dm = AsrDataModule(
        max_duration=2.5, num_buckets=2, num_workers=0, seed=1, channel_copies=copies, channel_copy_prob=0.5
    )
    sampler = dm.train_sampler(clean.to_eager())
    swap = ChannelCopySwap(copies, 0.5, seed=1, epoch=1 + 2)
    heard = {}
    for batch in dm.train_dataloader(sampler, epoch=2):
        sups = batch["supervisions"]
        for cut, row, n in zip(sups["cut"], sups["sequence_idx"], sups["num_frames"]):
            heard[cut.id] = batch["inputs"][int(row), : int(n)].numpy()
    chosen = {i: swap.choice(i) for i in heard}
    assert len(heard) >= 5 and 0 < sum(k is not None for k in chosen.values()) < len(heard)
    for cut in clean.filter(lambda c: c.id in heard):
        k = chosen[cut.id]
        source = cut if k is None else copies[k][cut.id]
        np.testing.assert_array_equal(heard[cut.id], source.load_features())


def test_missing_copies_and_conflicting_inputs_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="cuts_train-telephone.jsonl.gz: no telephone copy"):
        load_channel_copies(tmp_path, "cuts_train.jsonl.gz", ["telephone"])
    with pytest.raises(ValueError, match="stored features"):
        AsrDataModule(channel_copies=[{}], on_the_fly_feats=True)
