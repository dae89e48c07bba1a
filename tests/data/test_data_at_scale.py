"""Data as large corpora need it: lazy cut sets, features on the fly, MUSAN mixing, speed perturbation."""

import numpy as np
import pytest
import soundfile as sf
import torch
from lhotse import CutSet, Recording
from lhotse.dataset import SimpleCutSampler

from allinone.data.batch import unpack_batch
from allinone.data.datamodule import (
    AsrDataModule,
    filter_cuts,
    load_cuts,
    load_training_cuts,
    sampler_settings,
)
from allinone.data.features import compute_fbank
from allinone.data.tokenizer import BpeTokenizer
from tests.e2e.conftest import PREFIX, make_tiny_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("scale_corpus")
    lang = make_tiny_corpus(root, sizes={"train": 12, "dev": 2, "test": 2})
    return root, BpeTokenizer(lang / "bpe.model")


def _first_batch(dm, cuts):
    loader = dm.eval_dataloader(cuts)
    return unpack_batch(next(iter(loader)))


def _first_training_batch(dm, cuts):
    """The whole set as one training batch (augmentation on, no bucketing)."""
    loader = dm.train_dataloader(SimpleCutSampler(cuts, max_duration=1000), epoch=1)
    return unpack_batch(next(iter(loader)))


def test_training_cuts_are_read_lazily_and_filtered_as_they_stream(corpus):
    root, tok = corpus
    manifest = root / "fbank" / f"{PREFIX}_train.jsonl.gz"
    eager, eager_stats = filter_cuts(load_cuts(manifest, lazy=False), tok)
    lazy, stats = load_training_cuts(root / "fbank", manifest.name, tok)
    assert lazy.is_lazy
    before = stats.kept
    ids = [c.id for c in lazy]
    assert ids == [c.id for c in eager]
    assert stats.kept - before == eager_stats.kept == len(ids)


def test_features_on_the_fly_match_the_stored_ones(corpus):
    root, _ = corpus
    cuts = load_cuts(root / "fbank" / f"{PREFIX}_test.jsonl.gz", lazy=False)
    stored = _first_batch(AsrDataModule(max_duration=100, num_workers=0), cuts)
    fly = _first_batch(
        AsrDataModule(max_duration=100, num_workers=0, on_the_fly_feats=True), cuts.drop_features()
    )
    assert fly.cut_ids == stored.cut_ids and torch.equal(fly.feature_lens, stored.feature_lens)
    # lilcom stores log-energies to about 1/32; the rest is the same Fbank
    assert (fly.features - stored.features).abs().mean() < 0.05


def _noise_cuts(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "noise.wav"
    sf.write(path, (0.5 * rng.standard_normal(16000 * 3)).astype(np.float32), 16000)
    cuts = CutSet.from_manifests(recordings=[Recording.from_file(path, recording_id="noise")]).to_eager()
    return compute_fbank(cuts, tmp_path / "noise_feats").to_eager()


def test_musan_mixing_changes_training_features_and_keeps_cut_ids(corpus, tmp_path):
    root, _ = corpus
    cuts = load_cuts(root / "fbank" / f"{PREFIX}_train.jsonl.gz", lazy=False)
    clean = _first_training_batch(AsrDataModule(num_workers=0, seed=3), cuts)
    noisy = _first_training_batch(AsrDataModule(num_workers=0, seed=3, musan=_noise_cuts(tmp_path)), cuts)
    assert noisy.cut_ids == clean.cut_ids and torch.equal(noisy.feature_lens, clean.feature_lens)
    changed = [not torch.allclose(a, b) for a, b in zip(noisy.features, clean.features)]
    assert any(changed) and not all(changed)  # p = 0.5 per cut


def test_speed_perturbation_stretches_some_utterances_by_its_factors(corpus):
    root, _ = corpus
    cuts = load_cuts(root / "fbank" / f"{PREFIX}_train.jsonl.gz", lazy=False).drop_features()
    a = _first_training_batch(AsrDataModule(num_workers=0, on_the_fly_feats=True, seed=5), cuts)
    b = _first_training_batch(
        AsrDataModule(num_workers=0, on_the_fly_feats=True, perturb_speed=True, seed=5), cuts
    )
    by_id = dict(zip(a.cut_ids, a.feature_lens.tolist()))
    ratios = {round(by_id[i.split("_sp")[0]] / n, 1) for i, n in zip(b.cut_ids, b.feature_lens.tolist())}
    assert ratios <= {0.9, 1.0, 1.1} and len(ratios) > 1
    with pytest.raises(ValueError, match="needs on-the-fly features"):
        AsrDataModule(perturb_speed=True)


def test_sampler_settings_leave_out_progress_and_rank(corpus):
    root, _ = corpus
    cuts = load_cuts(root / "fbank" / f"{PREFIX}_train.jsonl.gz")
    ranks = [AsrDataModule(max_duration=10, world_size=2, rank=r).train_sampler(cuts) for r in (0, 1)]
    settings = [sampler_settings(s) for s in ranks]
    assert settings[0] == settings[1]
    assert {"diagnostics", "epoch", "rank"}.isdisjoint(settings[0])
    assert settings[0]["max_duration"] == 10 and settings[0]["world_size"] == 2
