"""The model on any device and under autocast: the same numbers where they must be the same.

Each device test runs on the CPU and, where a GPU is present, on CUDA (skipped otherwise):
a nested quantized step and every torch decoding method must agree with the CPU's.
Under bfloat16/float16 autocast the quantizers and the losses still compute in float32.
"""

from dataclasses import replace

import pytest
import torch

from allinone.decoding.ctc_search import ctc_greedy_search
from allinone.decoding.transducer_search import greedy_search_batch, modified_beam_search
from allinone.nn.build import build_model
from allinone.nn.model import ModelConfig
from allinone.quant.layers import QLinear, configure_quantizers
from allinone.quant.quantizer import QuantConfig
from allinone.subnet import SubnetConfig
from allinone.training.nested import NestedLoss
from allinone.utils.device import autocast

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")),
]
GRID = [SubnetConfig.from_name(n) for n in ("d2-w1.0-b32", "d1-w0.5-b4", "d2-w1.0-b2")]
CFG = ModelConfig(
    vocab_size=10, num_features=20, d_model=16, num_layers=2, num_heads=2, ffn_dim=24, kernel_size=3,
    decoder_dim=16, joiner_dim=16, dropout=0.0, use_ctc=True,
)  # fmt: skip
LOSS_ARGS = dict(prune_range=3, am_scale=0.0, lm_scale=0.25)


def _batch():
    g = torch.Generator().manual_seed(1)
    features = torch.randn(3, 48, CFG.num_features, generator=g)
    lens = torch.tensor([48, 40, 33])
    labels = [[1, 2, 3], [4, 5], [6, 7, 1, 2]]
    return features, lens, labels


def _model(quantizer="lsq"):
    torch.manual_seed(0)
    return build_model(replace(CFG, quantizer=quantizer), GRID)


def _losses_and_grads(model, device):
    model = model.to(device).train()
    features, lens, labels = _batch()
    per_subnet = NestedLoss(model)(features.to(device), lens.to(device), labels, subnets=GRID, **LOSS_ARGS)
    total = sum(v.sum() for losses in per_subnet.values() for v in losses.values())
    total.backward()
    losses = {f"{s}/{k}": v.detach().cpu() for s, d in per_subnet.items() for k, v in d.items()}
    grads = {n: p.grad.cpu() for n, p in model.named_parameters() if p.grad is not None}
    return losses, grads


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("quantizer", ["lsq", "gq"])
def test_a_nested_quantized_step_on_the_device_equals_the_cpu_step(device, quantizer):
    ref_losses, ref_grads = _losses_and_grads(_model(quantizer), "cpu")
    losses, grads = _losses_and_grads(_model(quantizer), device)
    assert losses.keys() == ref_losses.keys() and grads.keys() == ref_grads.keys()
    for k in losses:
        torch.testing.assert_close(losses[k], ref_losses[k], rtol=1e-4, atol=1e-4, msg=k)
    for n in grads:
        torch.testing.assert_close(grads[n], ref_grads[n], rtol=1e-3, atol=1e-4, msg=n)


@pytest.mark.parametrize("device", DEVICES)
def test_every_torch_search_on_the_device_gives_the_cpu_hypotheses(device):
    model = _model().eval()
    features, lens, _ = _batch()
    results = {}
    for where in ("cpu", device):
        model.to(where)
        with torch.no_grad():
            enc, enc_lens = model.encode(features.to(where), lens.to(where), GRID[1])
            results[where] = (
                greedy_search_batch(model, enc, enc_lens),
                modified_beam_search(model, enc, enc_lens, beam=3),
                ctc_greedy_search(model.ctc_log_probs(enc), enc_lens),
            )
    assert results[device] == results["cpu"]


@pytest.mark.parametrize("quantizer", ["lsq", "gq"])
def test_quantized_weights_stay_float32_under_autocast(quantizer):
    torch.manual_seed(0)
    layer = QLinear(32, 16)
    configure_quantizers(layer, QuantConfig(method=quantizer, mixed_candidates=(2, 4, 8)))
    layer.train()
    plain = {b: layer.quantized_weight(b) for b in (1, 2, 4, 8)}
    with autocast(torch.device("cpu"), torch.bfloat16):
        for b, w in plain.items():
            under = layer.quantized_weight(b)
            assert under.dtype is torch.float32
            assert torch.equal(under, w)
        out = layer(torch.randn(5, 32), bits=4)
    assert out.dtype is torch.bfloat16  # the matmul itself runs in half precision


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_losses_are_float32_and_close_to_float32_training_under_autocast(dtype):
    model = _model().train()
    features, lens, labels = _batch()
    ref = NestedLoss(model)(features, lens, labels, subnets=GRID, **LOSS_ARGS)
    with autocast(torch.device("cpu"), dtype):
        half = NestedLoss(model)(features, lens, labels, subnets=GRID, **LOSS_ARGS)
    for subnet, losses in half.items():
        for name, value in losses.items():
            assert value.dtype is torch.float32, f"{subnet}/{name}"
            assert torch.isfinite(value).all()
            # half-precision activations, float32 loss: a few percent at most
            torch.testing.assert_close(value, ref[subnet][name], rtol=0.05, atol=0.05)
