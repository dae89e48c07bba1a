from lhotse import CutSet
from lhotse.testing.dummies import dummy_cut

from allinone.data.datamodule import AsrDataModule, SkipFirstBatches


def _cuts(n=20):
    return CutSet.from_cuts(dummy_cut(i, duration=1.0 + 0.1 * (i % 5)) for i in range(n))


def test_skipping_batches_resumes_the_same_epoch_order():
    dm = AsrDataModule(max_duration=3.0, num_buckets=2, seed=7)
    sampler = dm.train_sampler(_cuts())
    for epoch in (1, 2):
        sampler.set_epoch(epoch)
        full = [[c.id for c in b] for b in SkipFirstBatches(sampler, 0)]
        sampler.set_epoch(epoch)
        rest = [[c.id for c in b] for b in SkipFirstBatches(sampler, 3)]
        assert len(full) > 4
        assert rest == full[3:]
    sampler.set_epoch(1)
    assert list(SkipFirstBatches(sampler, 1000)) == []
