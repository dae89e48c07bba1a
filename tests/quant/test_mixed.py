"""One-stage mixed precision: the blend, the bit budget, finalising and bit maps."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from allinone.nn.model import ModelConfig, Transducer
from allinone.quant.annealing import Annealing, TauSchedule
from allinone.quant.layers import QLinear
from allinone.quant.mixed import (
    apply_bit_map,
    average_bits,
    bit_map,
    bit_penalty,
    budgeted_argmax,
    expected_average_bits,
    finalise,
    load_bit_map,
    mixed_layers,
    save_bit_map,
)
from allinone.quant.quantizer import QuantConfig
from allinone.subnet import MIXED_BITS

CANDS = (2, 3, 4, 6, 8)


def _model(seed=0) -> Transducer:
    torch.manual_seed(seed)
    cfg = ModelConfig(vocab_size=12, num_layers=2, d_model=16, num_heads=2, ffn_dim=24, kernel_size=3)
    model = Transducer(ModelConfig(**{**cfg.to_dict(), "mp_candidates": "2,3,4,6,8"}))
    with torch.no_grad():
        for _, m in mixed_layers(model):
            m.mp_logits.normal_()
    return model


def _layer() -> QLinear:
    torch.manual_seed(0)
    layer = QLinear(12, 5)
    layer.configure_quantizer(QuantConfig(mixed_candidates=CANDS))
    with torch.no_grad():
        layer.mp_logits.copy_(torch.tensor([0.1, -0.4, 2.0, 0.3, -1.0]))
    return layer


def test_training_blends_the_candidates_with_gumbel_softmax_weights():
    layer = _layer().train()
    torch.manual_seed(5)
    got = layer.quantized_weight(MIXED_BITS, annealing=Annealing(mp_tau=0.7))
    torch.manual_seed(5)
    probs = F.gumbel_softmax(layer.mp_logits, tau=0.7)
    expected = sum(p * layer.quantized_weight(b) for p, b in zip(probs, CANDS))
    torch.testing.assert_close(got, expected)
    got.sum().backward()
    assert layer.mp_logits.grad is not None and layer.mp_logits.grad.abs().sum() > 0


def test_evaluation_runs_the_argmax_and_a_finalised_layer_its_fixed_bits():
    layer = _layer().eval()
    torch.testing.assert_close(layer.quantized_weight(MIXED_BITS), layer.quantized_weight(4))
    layer.mp_bits.fill_(2)
    layer.train()  # fixed bits hold in training too (two-stage retraining)
    torch.testing.assert_close(layer.quantized_weight(MIXED_BITS), layer.quantized_weight(2))


def test_expected_bits_and_penalty_match_a_brute_force_sum():
    model = _model()
    num = den = 0.0
    for _, m in mixed_layers(model):
        p = m.mp_logits.detach().softmax(-1)
        num += m.weight.numel() * float((p * torch.tensor(CANDS, dtype=torch.float32)).sum())
        den += m.weight.numel()
    assert abs(expected_average_bits(model).item() - num / den) < 1e-4
    assert abs(bit_penalty(model, 3.0).item() - (num / den - 3.0) ** 2) < 1e-3
    # every quantized encoder layer takes part, the float heads do not
    names = [n for n, _ in mixed_layers(model)]
    assert "encoder.embed.conv1" in names and "encoder.layers.1.ff.linear2" in names
    assert not any(n.startswith(("decoder", "joiner")) for n in names)


def test_penalty_descent_moves_the_expected_bits_to_the_target():
    model = _model()
    logits = [m.mp_logits for _, m in mixed_layers(model)]
    opt = torch.optim.Adam(logits, lr=0.1)
    for _ in range(200):
        opt.zero_grad()
        bit_penalty(model, 3.0).backward()
        opt.step()
    assert abs(expected_average_bits(model).item() - 3.0) < 0.05


def test_finalise_fixes_the_argmax_and_bit_maps_round_trip(tmp_path):
    model = _model()
    expected = {n: CANDS[int(m.mp_logits.argmax())] for n, m in mixed_layers(model)}
    assert finalise(model) == expected == bit_map(model)
    avg = average_bits(model)
    weights = {n: m.weight.numel() for n, m in mixed_layers(model)}
    assert abs(avg - sum(weights[n] * b for n, b in expected.items()) / sum(weights.values())) < 1e-9
    path = tmp_path / "bit-map.json"
    save_bit_map(expected, path, avg)
    other = _model(seed=1)
    apply_bit_map(other, load_bit_map(path), str(path))
    assert bit_map(other) == expected


def test_bad_bit_maps_name_the_file(tmp_path):
    model = _model()
    bits = bit_map(model)
    name = next(iter(bits))
    with pytest.raises(ValueError, match="map.json does not match the model: missing"):
        apply_bit_map(model, {k: v for k, v in bits.items() if k != name}, "map.json")
    with pytest.raises(ValueError, match="is not a candidate"):
        apply_bit_map(model, {**bits, name: 5}, "map.json")
    bad = tmp_path / "x.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match="x.json is not a bit-map JSON file"):
        load_bit_map(bad)
    with pytest.raises(FileNotFoundError, match="nope.json does not exist"):
        load_bit_map(tmp_path / "nope.json")


def test_temperature_schedule_is_geometric_between_its_ends():
    s = TauSchedule(1.0, 0.1, 100)
    assert s.tau(0) == 1.0 and s.tau(100) == 0.1 and s.tau(1000) == 0.1
    assert abs(s.tau(50) - 0.1**0.5) < 1e-9


def _spread_model(seed=0) -> nn.Module:
    """Forty layers of similar size, each near a measured failure: expects about 3 bits, argmax 2."""
    torch.manual_seed(seed)
    holder = nn.Module()
    holder.encoder = nn.ModuleList([QLinear(int(n), 8) for n in torch.randint(8, 16, (40,))])
    spread = torch.tensor([0.48, 0.34, 0.10, 0.04, 0.04]).log()
    for m in holder.encoder:
        m.configure_quantizer(QuantConfig(mixed_candidates=CANDS))
        with torch.no_grad():
            m.mp_logits.copy_(spread + 0.3 * torch.randn(5))
    return holder


@pytest.mark.parametrize("target", [2.5, 3.0, 4.0, 6.0])
def test_budgeted_finalising_lands_on_the_target_where_the_argmax_does_not(target):
    model = _spread_model()
    argmax = {n: CANDS[int(m.mp_logits.argmax())] for n, m in mixed_layers(model)}
    assert abs(average_bits(model) - target) > 0.3  # the plain argmax misses
    bits = finalise(model, target)
    assert abs(average_bits(model) - target) < 0.05
    assert bit_map(model) == bits
    # every layer moved towards the target only, and most kept their argmax where possible
    assert all(bits[n] >= argmax[n] for n in bits)


def test_budgeted_finalising_moves_the_least_certain_layers_first():
    model = _spread_model()
    layers = [m for _, m in mixed_layers(model)]
    with torch.no_grad():  # every layer sure of 2 bits but one, nearly undecided between 2 and 3
        for m in layers:
            m.mp_logits.copy_(torch.tensor([5.0, 0.0, -9.0, -9.0, -9.0]))
        layers[7].mp_logits.copy_(torch.tensor([0.5, 0.49, 1e-4, 1e-4, 1e-4]).log())
    share = layers[7].weight.numel() / sum(m.weight.numel() for m in layers)
    bits = budgeted_argmax(model, 2.0 + share)
    assert [b for b in bits.values()] == [2] * 7 + [3] + [2] * 32


def test_budgeted_finalising_keeps_an_argmax_already_on_target():
    model = _spread_model()
    bits = {n: CANDS[int(m.mp_logits.argmax())] for n, m in mixed_layers(model)}
    assert finalise(model, average_bits(model)) == bits
    with pytest.raises(ValueError, match="outside the candidates"):
        budgeted_argmax(model, 9.0)
