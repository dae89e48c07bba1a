"""Bad data during training: too-short cuts are dropped, non-finite losses are contained."""

from pathlib import Path

import pytest
import torch
from lhotse import CutSet
from lhotse.utils import fastcopy

from allinone.data.datamodule import filter_cuts, load_cuts
from allinone.data.tokenizer import BpeTokenizer
from allinone.nn.model import Transducer
from allinone.training.config import TrainConfig
from allinone.training.trainer import TooManyBadBatches, Trainer
from tests.e2e.conftest import PREFIX
from tests.e2e.test_recipe import TINY_MODEL


def tiny_config(root: Path, lang: Path, exp: Path, **kw) -> TrainConfig:
    model = {k: int(v) for k, v in (s.split("=") for s in TINY_MODEL)}
    args = dict(
        exp_dir=exp,
        bpe_model=lang / "bpe.model",
        manifest_dir=root / "fbank",
        train_cuts=f"{PREFIX}_train.jsonl.gz",
        valid_cuts=f"{PREFIX}_dev.jsonl.gz",
        num_epochs=1,
        max_duration=6,
        num_buckets=2,
        num_workers=0,
        save_every_n=0,
        tensorboard=False,
        model=model,
    )
    args.update(kw)
    return TrainConfig.from_flat(**args)


def test_cuts_too_short_for_their_labels_are_dropped_and_counted(tiny_corpus):
    root, lang = tiny_corpus
    cuts = load_cuts(root / "fbank" / f"{PREFIX}_train.jsonl.gz")
    first = cuts[0]
    long_text = " ".join(["SEVEN"] * 200)
    short = first.map_supervisions(lambda s: fastcopy(s, text=long_text))
    modified = CutSet.from_cuts([short] + list(cuts)[1:])
    kept, stats = filter_cuts(modified, BpeTokenizer(lang / "bpe.model"))
    assert stats.too_short_for_labels == 1
    assert first.id not in kept.ids and len(kept) == len(cuts) - 1


def _nan_for_first_utterance(monkeypatch, every_utterance=False):
    original = Transducer.forward

    def forward(self, *args, **kwargs):
        losses = original(self, *args, **kwargs)
        if self.training:
            simple = losses["simple"]
            bad = torch.zeros_like(simple, dtype=torch.bool)
            bad[:] = every_utterance
            bad[0] = True
            losses["simple"] = torch.where(bad, torch.full_like(simple, float("nan")), simple)
        return losses

    monkeypatch.setattr(Transducer, "forward", forward)


def test_non_finite_losses_are_dropped_logged_and_dumped(tiny_corpus, tmp_path, monkeypatch):
    root, lang = tiny_corpus
    _nan_for_first_utterance(monkeypatch)
    trainer = Trainer(tiny_config(root, lang, tmp_path / "exp"))
    trainer.run()
    dumps = sorted((tmp_path / "exp" / "bad-batches").glob("batch-*.pt"))
    assert len(dumps) == trainer.batch_idx_train > 0
    dump = torch.load(dumps[0], weights_only=False)
    assert {"features", "feature_lens", "labels", "cut_ids"} <= dump.keys()
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_training_stops_when_bad_batches_keep_coming(tiny_corpus, tmp_path, monkeypatch):
    root, lang = tiny_corpus
    _nan_for_first_utterance(monkeypatch, every_utterance=True)
    trainer = Trainer(tiny_config(root, lang, tmp_path / "exp", max_consecutive_bad_batches=2))
    with pytest.raises(TooManyBadBatches, match="3 consecutive batches had non-finite losses"):
        trainer.run()
