"""--model shared_norm_stats=true: every subnet and unfolding repeat uses one set of BatchNorm
statistics (pure weight sharing); by default each keeps its own."""

import torch

from allinone.nn.build import build_model
from allinone.nn.model import ModelConfig
from allinone.subnet import SubnetConfig

GRID = [SubnetConfig.from_name(n) for n in ("d4-w1.0-b32-urep", "d2-w1.0-b32", "d1-w0.5-b4")]
CFG = dict(vocab_size=8, num_features=20, d_model=16, num_layers=2, num_heads=2, ffn_dim=24, kernel_size=3,
           decoder_dim=16, joiner_dim=16, dropout=0.0)  # fmt: skip


def _stats(model):
    return model.encoder.layers[0].conv.norm.running_mean.detach().clone()


def test_shared_statistics_are_one_set_that_every_subnet_and_repeat_updates():
    torch.manual_seed(0)
    model = build_model(ModelConfig(**CFG, shared_norm_stats=True), GRID).train()
    assert model.config.norm_subnets == ()
    assert {model.encoder.norm_slot(s, k) for s in GRID for k in (0, 1)} == {0}
    x, lens = torch.randn(2, 40, 20), torch.tensor([40, 33])
    before = _stats(model)
    for subnet in GRID:
        model.encode(x, lens, subnet)
        after = _stats(model)
        assert not torch.equal(after, before), subnet.name  # each subnet moves the one set
        before = after


def test_by_default_each_subnet_and_repeat_has_its_own_statistics():
    model = build_model(ModelConfig(**CFG), GRID)
    slots = {model.encoder.norm_slot(GRID[0], 0), model.encoder.norm_slot(GRID[0], 1)}
    slots |= {model.encoder.norm_slot(s) for s in GRID[1:]}
    assert len(slots) == 4  # the unfolded subnet's two uses of a block, and the two others
