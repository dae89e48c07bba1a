import torch

from allinone.data.augment import SpecAugmentConfig, spec_augment


def test_masks_stay_within_limits_and_are_seeded():
    x = torch.randn(3, 200, 80)
    lens = torch.tensor([200, 120, 50])
    cfg = SpecAugmentConfig(
        num_freq_masks=2, max_freq_width=10, num_time_masks=2, max_time_width=20, max_time_fraction=0.1
    )
    torch.manual_seed(1)
    a = spec_augment(x, lens, cfg)
    torch.manual_seed(1)
    b = spec_augment(x, lens, cfg)
    assert torch.equal(a, b)
    assert not torch.equal(a, x)
    changed = a != x
    for i, n in enumerate(lens.tolist()):
        # frames fully masked (every bin changed) never exceed the time-mask budget
        full_frames = int(changed[i].all(dim=1).sum())
        assert full_frames <= 2 * min(20, int(0.1 * n))
        full_bins = int(changed[i, :n].all(dim=0).sum())
        assert full_bins <= 2 * 10
