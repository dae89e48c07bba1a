"""The annealing value given to ``Transducer.forward`` reaches every quantized layer it runs."""

import pytest
import torch

from allinone.nn.model import ModelConfig, Transducer
from allinone.quant.annealing import Annealing
from allinone.quant.gq import GQQuantizer
from allinone.quant.layers import quant_layers
from allinone.subnet import SubnetConfig
from allinone.training.nested import NestedLoss

LABELS = [[3, 4, 5], [6, 7]]


def _model(**kw) -> Transducer:
    torch.manual_seed(0)
    cfg = ModelConfig(
        vocab_size=12, num_features=20, d_model=16, num_layers=2, num_heads=2, ffn_dim=24, kernel_size=3,
        dropout=0.0, decoder_dim=16, joiner_dim=16, conv_norm="layernorm", use_ctc=True,
        quantizer="gq", **kw,
    )  # fmt: skip
    return Transducer(cfg)


def _batch():
    torch.manual_seed(1)
    return torch.randn(2, 40, 20), torch.tensor([40, 31])


@pytest.fixture
def calls(monkeypatch):
    """(quantizer, annealing) of every GQ fake-quantization."""
    seen = []
    original = GQQuantizer.fake_quant

    def spy(self, w, bits, out_units=None, in_units=None, *, annealing):
        seen.append((self, annealing))
        return original(self, w, bits, out_units, in_units, annealing=annealing)

    monkeypatch.setattr(GQQuantizer, "fake_quant", spy)
    return seen


def test_every_quantized_layer_gets_the_value_passed_to_forward(calls):
    model = _model(quantize_heads=True).train()
    x, lens = _batch()
    value = Annealing(gq_alpha=123.0, gq_hard=False, mp_tau=0.5)
    model(x, lens, LABELS, subnet=SubnetConfig.from_name("d2-w1.0-b4"), annealing=value)
    everything = {id(m.quantizer) for _, m in quant_layers(model)}
    assert {id(q) for q, _ in calls} == everything  # subsampling, attention, conv, FFNs, heads
    assert {a for _, a in calls} == {value}


def test_nested_loss_hands_the_value_to_every_subnet(calls):
    model = _model().train()
    x, lens = _batch()
    value = Annealing(gq_alpha=42.0, gq_hard=True)
    subnets = [SubnetConfig.from_name(n) for n in ("d2-w1.0-b4", "d1-w0.5-b2")]
    NestedLoss(model)(x, lens, LABELS, subnets, distill=True, annealing=value, prune_range=3)
    assert calls and {a for _, a in calls} == {value}


def test_hard_training_value_equals_the_evaluation_default_and_soft_differs():
    model = _model(quantize_heads=True)
    x, lens = _batch()
    subnet = SubnetConfig.from_name("d2-w1.0-b3")
    with torch.no_grad():
        deployed = model.eval()(x, lens, LABELS, subnet=subnet)
        model.train()
        hard = model(x, lens, LABELS, subnet=subnet, annealing=Annealing(gq_alpha=5.0, gq_hard=True))
        soft = model(x, lens, LABELS, subnet=subnet, annealing=Annealing(gq_alpha=5.0, gq_hard=False))
        default = model(x, lens, LABELS, subnet=subnet)
    for k in deployed:
        torch.testing.assert_close(hard[k], deployed[k], rtol=0, atol=0)
        torch.testing.assert_close(default[k], soft[k], rtol=0, atol=0)  # None in training = alpha 5, soft
    assert any(not torch.allclose(soft[k], deployed[k]) for k in deployed)
