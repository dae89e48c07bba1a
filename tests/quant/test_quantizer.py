"""The quantizer interface: LSQ at tensor/channel/group granularity, GQ layers, slicing."""

import math

import pytest
import torch

from allinone.quant.annealing import Annealing
from allinone.quant.layers import QConv1d, QLinear
from allinone.quant.lsq import grouped, quant_levels
from allinone.quant.quantizer import QuantConfig


def _layer(cfg: QuantConfig, out=6, inp=20, seed=0) -> QLinear:
    torch.manual_seed(seed)
    layer = QLinear(inp, out)
    layer.configure_quantizer(cfg)
    with torch.no_grad():  # distinct steps everywhere so a wrong broadcast shows
        for p in layer.steps.values():
            p.mul_(torch.empty_like(p).uniform_(0.7, 1.3))
    return layer


def _reference(w: torch.Tensor, step_of, bits: int) -> torch.Tensor:
    """Element by element: code = round(clamp(w / s, -Q, Q)) (sign for 1 bit), value = code * s."""
    q = quant_levels(bits)
    out = torch.empty_like(w)
    for r in range(w.shape[0]):
        for c in range(w.shape[1]):
            s = float(step_of(r, c))
            v = min(max(float(w[r, c]) / s, -q), q)
            code = (1.0 if v >= 0 else -1.0) if bits == 1 else float(round(v))
            out[r, c] = code * s
    return out


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
@pytest.mark.parametrize("granularity", ["tensor", "channel", "group"])
def test_lsq_values_match_an_elementwise_reference(granularity, bits):
    cfg = QuantConfig(granularity=granularity, group_size=8)
    layer = _layer(cfg)
    step = layer.steps[f"b{bits}"].detach()
    step_of = {
        "tensor": lambda r, c: step,
        "channel": lambda r, c: step[r],
        "group": lambda r, c: step[r, c // 8],
    }[granularity]
    got = layer.quantized_weight(bits).detach()
    torch.testing.assert_close(got, _reference(layer.weight.detach(), step_of, bits), rtol=0, atol=1e-6)
    assert layer.steps[f"b{bits}"].shape == {"tensor": (), "channel": (6,), "group": (6, 3)}[granularity]


@pytest.mark.parametrize("granularity", ["channel", "group"])
def test_lsq_step_gradient_follows_the_published_formula_per_step(granularity):
    """dq/ds = round(w/s) - w/s inside the range, +-Q outside; scaled by 1/sqrt(weights per step * Q)."""
    bits = 3
    cfg = QuantConfig(granularity=granularity, group_size=8)
    layer = _layer(cfg)
    layer.quantized_weight(bits).sum().backward()
    step = layer.steps[f"b{bits}"].detach()
    w = layer.weight.detach()
    q = quant_levels(bits)
    if granularity == "channel":
        s = step[:, None].expand_as(w)
        per_step = w.shape[1]
        ids = torch.arange(w.shape[0])[:, None].expand_as(w)
    else:
        s = step.repeat_interleave(8, dim=1)[:, : w.shape[1]]
        per_step = w.numel() / step.numel()  # real weights per group: padding does not count
        ids = torch.arange(step.numel()).view(step.shape).repeat_interleave(8, dim=1)[:, : w.shape[1]]
    v = w / s
    d = torch.where(v.abs() < q, v.round() - v, torch.sign(v) * q) / math.sqrt(per_step * q)
    expected = torch.zeros(step.numel()).index_add_(0, ids.reshape(-1), d.reshape(-1)).view(step.shape)
    torch.testing.assert_close(layer.steps[f"b{bits}"].grad, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("granularity", ["tensor", "channel", "group"])
def test_a_slice_of_the_quantized_weight_is_the_quantized_slice(granularity):
    layer = _layer(QuantConfig(granularity=granularity, group_size=8), out=10, inp=24)
    full = layer.quantized_weight(4).detach()
    torch.testing.assert_close(layer.quantized_weight(4, out_units=7), full[:7])
    for k in (8, 13):  # a whole number of groups and a partial one
        torch.testing.assert_close(layer.quantized_weight(4, in_units=k), full[:, :k])


def test_steps_are_initialised_per_channel_and_per_group():
    layer = _layer(QuantConfig(granularity="channel"))
    layer.reset_steps()
    w = layer.weight.detach()
    torch.testing.assert_close(layer.steps["b4"].detach(), 2 * w.abs().mean(1) / math.sqrt(7))
    layer = _layer(QuantConfig(granularity="group", group_size=8))
    layer.reset_steps()
    last = w[:, 16:].abs().mean(1)  # the partial last group: its 4 real entries only
    torch.testing.assert_close(layer.steps["b1"].detach()[:, 2], last)


def test_gq_layer_is_hard_in_evaluation_and_soft_in_training():
    torch.manual_seed(0)
    conv = QConv1d(4, 8, 3)
    conv.configure_quantizer(QuantConfig(method="gq"))
    conv.eval()
    for bits in (1, 2, 3):
        assert conv.quantized_weight(bits).unique().numel() <= 2**bits
    conv.train()
    soft = Annealing(gq_alpha=10.0, gq_hard=False)
    assert conv.quantized_weight(2, annealing=soft).unique().numel() > 4  # soft: between the levels
    hard = Annealing(gq_alpha=10.0, gq_hard=True)
    assert conv.quantized_weight(2, annealing=hard).unique().numel() <= 4


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="general quantizer scales per tensor or per output channel"):
        QuantConfig(method="gq", granularity="group")
    with pytest.raises(ValueError, match="unknown granularity"):
        QuantConfig(granularity="row")
    with pytest.raises(ValueError, match="unknown quantizer"):
        QuantConfig(method="apot")


def test_grouping_pads_with_zeros_and_round_trips():
    w = torch.arange(2 * 3 * 5, dtype=torch.float32).view(2, 3, 5)  # a conv weight, fan-in 15
    g = grouped(w, 4)
    assert g.shape == (2, 4, 4) and torch.equal(g[:, -1, -1], torch.zeros(2))
