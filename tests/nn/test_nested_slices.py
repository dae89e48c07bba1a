"""A depth/width/precision subnet is exactly a smaller standalone model built from sliced weights."""

import pytest
import torch

from allinone.nn.conformer import ConformerEncoder
from allinone.subnet import SubnetConfig, SubnetError

ARGS = dict(num_features=20, d_model=16, num_heads=2, kernel_size=5, dropout=0.0)
GRID = ("d3-w1.0-b32", "d2-w1.0-b32", "d3-w0.5-b4", "d2-w0.5-b2", "d3-w1.0-b8")


def nested_encoder():
    torch.manual_seed(0)
    enc = ConformerEncoder(num_layers=3, ffn_dim=24, norm_subnets=GRID, **ARGS)
    # Distinct BatchNorm statistics per slot, so using the wrong slot would show.
    with torch.no_grad():
        for layer in enc.layers:
            layer.conv.norm.running_mean.uniform_(-0.5, 0.5)
            layer.conv.norm.running_var.uniform_(0.5, 2.0)
    return enc.eval()


def standalone_from(enc: ConformerEncoder, subnet: SubnetConfig) -> ConformerEncoder:
    """A plain encoder of ``subnet``'s depth and FFN width holding the sliced weights."""
    sub = subnet.resolved(enc.num_layers)
    k = enc.layers[0].ff.hidden_units(sub.ffn_ratio)
    small = ConformerEncoder(num_layers=sub.depth, ffn_dim=k, **ARGS).eval()
    slot = enc.norm_slot(sub)
    big = enc.state_dict()
    state = {}
    for name in small.state_dict():
        src = big[name]
        if name.endswith("norm.running_mean") or name.endswith("norm.running_var"):
            src = src[slot : slot + 1]
        elif ".linear1.weight" in name or ".linear1.bias" in name:
            src = src[:k]
        elif ".linear2.weight" in name:
            src = src[:, :k]
        state[name] = src.clone()
    small.load_state_dict(state)
    return small


@pytest.mark.parametrize("name", GRID)
def test_subnet_equals_standalone_sliced_model(name):
    enc = nested_encoder()
    subnet = SubnetConfig.from_name(name)
    small = standalone_from(enc, subnet)
    x, lens = torch.randn(2, 40, 20), torch.tensor([40, 31])
    out, out_lens = enc(x, lens, subnet)
    # The standalone model runs every layer at full width, at the subnet's precision.
    ref, ref_lens = small(x, lens, SubnetConfig(bits=subnet.bits))
    assert torch.equal(out_lens, ref_lens)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_float_subnet_equals_the_unquantized_model_exactly():
    enc = nested_encoder()
    x, lens = torch.randn(2, 40, 20), torch.tensor([40, 31])
    full, _ = enc(x, lens, SubnetConfig.from_name("d3-w1.0-b32"))
    small = standalone_from(enc, SubnetConfig.from_name("d3-w1.0-b32"))
    assert torch.equal(full, small(x, lens)[0])
    # while a quantized subnet of the same shape is not the float network
    q, _ = enc(x, lens, SubnetConfig.from_name("d3-w1.0-b8"))
    assert not torch.allclose(q, full, atol=1e-6)


def test_training_a_subnet_updates_only_its_batchnorm_statistics():
    enc = nested_encoder().train()
    before = [layer.conv.norm.running_mean.clone() for layer in enc.layers]
    enc(torch.randn(2, 40, 20), torch.tensor([40, 31]), SubnetConfig.from_name("d2-w0.5-b2"))
    slot = GRID.index("d2-w0.5-b2")
    for i, layer in enumerate(enc.layers):
        changed = (layer.conv.norm.running_mean != before[i]).any(dim=1)
        expected = [s == slot and i < 2 for s in range(len(GRID))]
        assert changed.tolist() == expected


def test_subnet_outside_the_batchnorm_grid_is_refused():
    enc = nested_encoder()
    with pytest.raises(SubnetError, match="d2-w1.0-b4.*trained with: d3-w1.0-b32"):
        enc(torch.randn(1, 40, 20), torch.tensor([40]), SubnetConfig.from_name("d2-w1.0-b4"))
