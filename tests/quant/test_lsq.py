import math

import pytest
import torch
import torch.nn.functional as F

from allinone.quant import QConv1d, QLinear, lsq_codes, lsq_fake_quant, quant_levels


def reference_quant(w, s, bits):
    """LSQ forward written out element by element."""
    q = quant_levels(bits)
    out = torch.empty_like(w)
    for i, x in enumerate(w.flatten().tolist()):
        v = min(max(x / s, -q), q)
        code = (1.0 if v >= 0 else -1.0) if bits == 1 else float(round(v))
        out.view(-1)[i] = code * s
    return out


def reference_step_grad(w, s, bits, upstream):
    """LSQ paper's d(w_hat)/ds: round(v) - v inside the range, -Q/Q at the ends, times g."""
    q = quant_levels(bits)
    g = 1.0 / math.sqrt(w.numel() * q)
    total = 0.0
    for x, u in zip(w.flatten().tolist(), upstream.flatten().tolist()):
        v = x / s
        if v <= -q:
            d = -q
        elif v >= q:
            d = q
        else:
            d = ((1.0 if v >= 0 else -1.0) if bits == 1 else float(round(v))) - v
        total += u * d
    return total * g


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5, 6, 8])
def test_forward_matches_elementwise_reference(bits):
    torch.manual_seed(bits)
    w = torch.randn(7, 5, dtype=torch.float64)
    s = torch.tensor(0.37 if bits > 1 else 0.8, dtype=torch.float64)
    torch.testing.assert_close(lsq_fake_quant(w, s, bits), reference_quant(w, float(s), bits))


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8])
def test_step_gradient_matches_lsq_formula(bits):
    torch.manual_seed(10 + bits)
    w = torch.randn(6, 4, dtype=torch.float64) * 0.5
    s = torch.tensor(0.21, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(6, 4, dtype=torch.float64)
    (lsq_fake_quant(w, s, bits) * upstream).sum().backward()
    assert float(s.grad) == pytest.approx(reference_step_grad(w, 0.21, bits, upstream), rel=1e-9, abs=1e-12)


def test_weight_gradient_is_straight_through_inside_the_range_only():
    w = torch.tensor([-5.0, -0.3, 0.0, 0.26, 0.9, 4.0], requires_grad=True)
    lsq_fake_quant(w, torch.tensor(0.5), 3).sum().backward()  # Q = 3: range [-1.5, 1.5]
    assert w.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 0.0]


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8])
def test_quantized_weight_takes_at_most_two_to_the_bits_values(bits):
    torch.manual_seed(0)
    layer = QLinear(64, 48)
    wq = layer.quantized_weight(bits).detach()
    values = torch.unique(wq)
    assert len(values) <= 2**bits
    # every value is an integer multiple of the step
    step = float(layer.steps[f"b{bits}"])
    torch.testing.assert_close(values / step, (values / step).round())
    codes = lsq_codes(layer.weight, layer.steps[f"b{bits}"].detach(), bits)
    torch.testing.assert_close(codes.float() * step, wq)


def test_float_bits_leave_the_layer_exactly_unquantized():
    torch.manual_seed(0)
    lin, conv = QLinear(8, 6), QConv1d(4, 4, 3, padding=1, groups=4)
    x, y = torch.randn(2, 5, 8), torch.randn(2, 4, 9)
    assert lin.quantized_weight(32) is lin.weight
    assert torch.equal(lin(x, 32), F.linear(x, lin.weight, lin.bias))
    assert torch.equal(conv(y, 32), F.conv1d(y, conv.weight, conv.bias, padding=1, groups=4))
    assert not torch.equal(lin(x, 4), lin(x, 32))


def test_steps_are_initialised_from_the_weight():
    torch.manual_seed(0)
    lin = QLinear(32, 32)
    mean_abs = float(lin.weight.abs().mean())
    assert float(lin.steps["b1"]) == pytest.approx(mean_abs)
    assert float(lin.steps["b4"]) == pytest.approx(2 * mean_abs / math.sqrt(7))
    with torch.no_grad():
        lin.weight.mul_(10)
    lin.reset_steps()
    assert float(lin.steps["b4"]) == pytest.approx(20 * mean_abs / math.sqrt(7), rel=1e-5)
