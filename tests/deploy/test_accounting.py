import pytest
import torch

from allinone.deploy.accounting import compression_ratio, float_model_bytes, subnet_footprint
from allinone.nn.model import ModelConfig, Transducer
from allinone.subnet import SubnetConfig


def tiny(num_layers=3, ffn_dim=24, norm_subnets=()):
    torch.manual_seed(0)
    cfg = ModelConfig(
        vocab_size=7, num_features=20, d_model=16, num_layers=num_layers, num_heads=2, ffn_dim=ffn_dim,
        kernel_size=5, decoder_dim=12, joiner_dim=12, use_ctc=True, norm_subnets=norm_subnets,
    )  # fmt: skip
    return Transducer(cfg)


def brute_force_bits(model: Transducer, bits: int) -> int:
    """Count a standalone model's stored bits from parameter names alone."""
    total = 0
    quantized_weights = 0
    for name, p in model.named_parameters():
        if ".steps." in name or name.startswith("simple_"):
            continue
        is_qweight = name.startswith("encoder.") and name.endswith(".weight") and p.dim() >= 2
        if is_qweight:
            quantized_weights += 1
        total += p.numel() * (bits if is_qweight else 32)
    if bits < 32:
        total += 32 * quantized_weights  # one step per quantized tensor
    for name, b in model.named_buffers():
        if name.endswith("running_mean") or name.endswith("running_var"):
            total += b[0].numel() * 32  # one slot
    return total


@pytest.mark.parametrize("name", ["d3-w1.0-b32", "d2-w0.5-b4", "d1-w0.25-b2", "d3-w1.0-b1"])
def test_footprint_equals_brute_force_count_of_the_standalone_model(name):
    subnet = SubnetConfig.from_name(name)
    big = tiny()
    k = big.encoder.layers[0].ff.hidden_units(subnet.ffn_ratio)
    small = tiny(num_layers=subnet.depth, ffn_dim=k)
    fp = subnet_footprint(big, subnet)
    assert fp.stored_bits == brute_force_bits(small, subnet.bits)
    expected_params = sum(
        p.numel() for n, p in small.named_parameters() if ".steps." not in n and not n.startswith("simple_")
    )
    assert fp.params == expected_params


def test_compression_ratio_is_float_size_over_stored_size():
    model = tiny(norm_subnets=("d3-w1.0-b32", "d2-w0.5-b4"))
    assert compression_ratio(model, SubnetConfig.from_name("d3-w1.0-b32")) == pytest.approx(1.0)
    sub = SubnetConfig.from_name("d2-w0.5-b4")
    assert compression_ratio(model, sub) == pytest.approx(
        float_model_bytes(model) / subnet_footprint(model, sub).stored_bytes
    )
    # extra BatchNorm slots of other subnets are not part of any one system
    assert float_model_bytes(model) == float_model_bytes(tiny())
