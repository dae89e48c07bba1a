"""Annealing is a value passed into the forward call; None is the deployed behaviour in evaluation."""

import pytest
import torch

from allinone.quant.annealing import TRAINING_DEFAULT, Annealing, AnnealingSchedule, GQSchedule, TauSchedule
from allinone.quant.gq import gq_codes, gq_fake_quant, sorted_centroids
from allinone.quant.layers import QConv1d, QLinear
from allinone.quant.quantizer import QuantConfig
from allinone.subnet import MIXED_BITS

CANDS = (2, 3, 4, 6, 8)


def _gq_layer() -> QLinear:
    torch.manual_seed(0)
    layer = QLinear(24, 10)
    layer.configure_quantizer(QuantConfig(method="gq"))
    return layer


def test_the_value_passed_in_sets_gq_sharpness_and_hardness():
    layer = _gq_layer().train()
    w, c = layer.weight, sorted_centroids(layer.centroids["b3"])
    soft = layer.quantized_weight(3, annealing=Annealing(gq_alpha=5.0, gq_hard=False))
    hard = layer.quantized_weight(3, annealing=Annealing(gq_alpha=5.0, gq_hard=True))
    # exactly what the layer computed when gq_alpha/gq_hard were set as attributes
    torch.testing.assert_close(soft, gq_fake_quant(w, c, 5.0, False), rtol=0, atol=0)
    torch.testing.assert_close(hard, gq_fake_quant(w, c, 5.0, True), rtol=0, atol=0)
    assert soft.detach().unique().numel() > 2**3  # soft: between the levels
    assert hard.detach().unique().numel() <= 2**3
    sharper = layer.quantized_weight(3, annealing=Annealing(gq_alpha=500.0, gq_hard=False))
    assert (sharper - hard).abs().mean() < (soft - hard).abs().mean()


def test_training_without_a_value_uses_the_old_defaults():
    layer = _gq_layer().train()
    assert TRAINING_DEFAULT == Annealing(gq_alpha=5.0, gq_hard=False, mp_tau=1.0)
    torch.testing.assert_close(
        layer.quantized_weight(2), layer.quantized_weight(2, annealing=TRAINING_DEFAULT), rtol=0, atol=0
    )


@pytest.mark.parametrize("passed", [None, Annealing(gq_alpha=5.0, gq_hard=False)])
def test_evaluation_is_the_hard_deployed_quantizer(passed):
    layer = _gq_layer().eval()
    got = layer.quantized_weight(4, annealing=passed)
    indices, codebook = gq_codes(layer.weight, sorted_centroids(layer.centroids["b4"]))
    assert torch.equal(got, codebook[indices.long()])
    hard_in_training = layer.train().quantized_weight(4, annealing=Annealing(gq_alpha=5.0, gq_hard=True))
    assert torch.equal(got, hard_in_training)


def test_mixed_precision_temperature_comes_from_the_value_and_evaluation_runs_the_argmax():
    torch.manual_seed(0)
    conv = QConv1d(6, 8, 3)
    conv.configure_quantizer(QuantConfig(method="gq", mixed_candidates=CANDS))
    with torch.no_grad():
        conv.mp_logits.copy_(torch.tensor([0.1, -0.4, 2.0, 0.3, -1.0]))
    conv.train()
    a = Annealing(gq_alpha=50.0, gq_hard=True, mp_tau=0.3)
    torch.manual_seed(7)
    got = conv.quantized_weight(MIXED_BITS, annealing=a)
    torch.manual_seed(7)
    probs = torch.nn.functional.gumbel_softmax(conv.mp_logits, tau=0.3)
    expected = sum(p * conv.quantized_weight(b, annealing=a) for p, b in zip(probs, CANDS))
    torch.testing.assert_close(got, expected)
    conv.eval()
    assert torch.equal(conv.quantized_weight(MIXED_BITS), conv.quantized_weight(4))  # argmax: 4 bits


def test_schedule_value_and_its_dict_round_trip():
    sched = AnnealingSchedule(GQSchedule(2.0, 200.0, 100, hard_after=30), TauSchedule(1.0, 0.1, 10))
    a = sched.at(50)
    assert a.gq_alpha == pytest.approx(20.0) and a.gq_hard and a.mp_tau == pytest.approx(0.1)
    assert sched.at(0) == Annealing(2.0, False, 1.0)
    assert Annealing.from_dict(a.to_dict()) == a
    assert AnnealingSchedule().at(0) == Annealing(GQSchedule().alpha_start, False, TauSchedule().tau_start)
    with pytest.raises(ValueError):
        Annealing(mp_tau=0.0)
    with pytest.raises(ValueError):
        Annealing(gq_alpha=-1.0)
