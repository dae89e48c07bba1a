"""Ordering FFN hidden units by importance keeps the full model and puts the best units first."""

import copy

import pytest
import torch

from allinone.checkpoint.io import save_checkpoint_atomic
from allinone.nn.conformer import ConformerEncoder, FeedForward
from allinone.nn.ffn_order import permute_units, reorder_ffn_units, unit_importance
from allinone.nn.model import ModelConfig, Transducer
from allinone.quant.layers import quant_layers
from allinone.subnet import SubnetConfig
from allinone.training.compression import Compression
from allinone.training.config import CompressionOptions

ARGS = dict(num_features=20, d_model=16, num_heads=2, kernel_size=5, dropout=0.0)


def trained_like_encoder() -> ConformerEncoder:
    """An encoder whose units have clearly different importances (random scales per unit)."""
    torch.manual_seed(0)
    enc = ConformerEncoder(num_layers=2, ffn_dim=24, **ARGS)
    with torch.no_grad():
        for m in enc.modules():
            if isinstance(m, FeedForward):
                m.linear1.weight.mul_(torch.rand(m.ffn_dim, 1) * 3)
                m.linear2.weight.mul_(torch.rand(1, m.ffn_dim) * 3)
    return enc.eval()


def inputs():
    torch.manual_seed(1)
    return torch.randn(2, 40, 20), torch.tensor([40, 29])


def test_reordering_leaves_the_full_width_model_unchanged():
    enc = trained_like_encoder()
    x, lens = inputs()
    before, _ = enc(x, lens, SubnetConfig())
    count, share = reorder_ffn_units(enc, "weight-norm")
    after, _ = enc(x, lens, SubnetConfig())
    assert count == 4  # two macaron FFNs per layer
    assert 0.5 < share <= 1.0
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)


def test_every_ffn_is_sorted_most_important_first():
    enc = trained_like_encoder()
    reorder_ffn_units(enc, "weight-norm")
    for m in enc.modules():
        if isinstance(m, FeedForward):
            score = unit_importance(m)
            assert torch.all(score[:-1] >= score[1:])


def test_half_width_after_reordering_is_the_full_model_without_its_weakest_units():
    """Brute-force reference: the original model with the output columns of every unit
    outside each FFN's top half (by the criterion) set to zero."""
    enc = trained_like_encoder()
    masked = copy.deepcopy(enc)
    with torch.no_grad():
        for m in masked.modules():
            if isinstance(m, FeedForward):
                weakest = torch.argsort(unit_importance(m))[: m.ffn_dim - m.hidden_units(0.5)]
                m.linear2.weight[:, weakest] = 0.0
    reorder_ffn_units(enc, "weight-norm")
    x, lens = inputs()
    narrow, _ = enc(x, lens, SubnetConfig(ffn_ratio=0.5))
    reference, _ = masked(x, lens, SubnetConfig())
    torch.testing.assert_close(narrow, reference, rtol=1e-5, atol=1e-5)


def test_permute_units_rejects_what_is_not_a_permutation():
    ffn = FeedForward(8, 6)
    with pytest.raises(ValueError, match="not a permutation of 6"):
        permute_units(ffn, torch.tensor([0, 1, 2, 3, 4, 4]))
    with pytest.raises(ValueError, match="unknown FFN unit order"):
        reorder_ffn_units(ffn, "activation")


def _tiny_model():
    return Transducer(ModelConfig(vocab_size=10, num_layers=2, d_model=16, num_heads=2, ffn_dim=24))


def test_compression_reorders_only_a_model_started_from_trained_weights(tmp_path):
    with pytest.raises(ValueError, match="needs --init-from"):
        Compression(CompressionOptions(reorder_ffn_units="weight-norm"), _tiny_model())
    torch.manual_seed(3)
    source = _tiny_model()
    with torch.no_grad():
        for m in source.modules():
            if isinstance(m, FeedForward):
                m.linear1.weight.mul_(torch.rand(m.ffn_dim, 1) * 3)
    path = tmp_path / "float.pt"
    save_checkpoint_atomic({"model": source.state_dict(), "model_config": {}}, path)
    model = _tiny_model()
    Compression(CompressionOptions(init_from=str(path), reorder_ffn_units="weight-norm"), model)
    ffns = [m for m in model.modules() if isinstance(m, FeedForward)]
    for m in ffns:
        score = unit_importance(m)
        assert torch.all(score[:-1] >= score[1:])
    # Same units, new order; the quantizers were re-initialised from the permuted weights.
    src_ffn = [m for m in source.modules() if isinstance(m, FeedForward)][0]
    assert torch.equal(ffns[0].linear1.weight.sort(dim=0).values, src_ffn.linear1.weight.sort(dim=0).values)
    fresh = copy.deepcopy(model)
    for _, layer in quant_layers(fresh):
        layer.reset_steps()
    for (_, a), (_, b) in zip(quant_layers(model), quant_layers(fresh)):
        for key in a.steps:
            assert torch.equal(a.steps[key], b.steps[key])
