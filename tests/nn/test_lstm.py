"""The LSTM encoder: torch's own LSTM at 32 bits, quantized matrices on their grid, packed round trip."""

import pytest
import torch
import torch.nn as nn

from allinone.deploy.accounting import subnet_footprint
from allinone.deploy.export import export_subnet, load_packed_model, round_trip_error
from allinone.deploy.naming import weight_class
from allinone.nn.lstm import LstmEncoder, LstmLayer, causal_cmn
from allinone.nn.model import ModelConfig, Transducer
from allinone.quant.layers import configure_quantizers
from allinone.quant.mixed import apply_bit_map
from allinone.quant.quantizer import QuantConfig
from allinone.subnet import SubnetConfig, SubnetError


@pytest.mark.parametrize("proj", [0, 12])
def test_a_float_layer_is_torchs_lstm(proj):
    torch.manual_seed(0)
    layer = LstmLayer(10, 20, proj).eval()
    ref = nn.LSTM(10, 20, batch_first=True, proj_size=proj).eval()
    with torch.no_grad():
        ref.weight_ih_l0.copy_(layer.lstm_ih.weight)
        ref.weight_hh_l0.copy_(layer.lstm_hh.weight)
        ref.bias_ih_l0.copy_(layer.lstm_ih.bias)
        ref.bias_hh_l0.copy_(layer.lstm_hh.bias)
        if proj:
            ref.weight_hr_l0.copy_(layer.lstm_proj.weight)
    x = torch.randn(3, 17, 10)
    torch.testing.assert_close(layer(x, 32), ref(x)[0], rtol=0, atol=0)


def test_padding_does_not_reach_valid_frames_and_gradients_flow():
    torch.manual_seed(0)
    enc = LstmEncoder(num_features=20, d_model=16, num_layers=2, hidden_size=24, dropout=0.0)
    x = torch.randn(2, 60, 20)
    out, lens = enc(x, torch.tensor([60, 40]))
    alone, _ = enc(x[1:, :40], torch.tensor([40]))
    torch.testing.assert_close(out[1, : lens[1]], alone[0], rtol=1e-5, atol=1e-5)
    out.sum().backward()
    assert enc.layers[1].lstm_hh.weight.grad.abs().sum() > 0


def test_causal_normalisation_looks_only_backwards():
    x = torch.randn(1, 30, 4)
    full = causal_cmn(x, torch.tensor([30]))
    head = causal_cmn(x[:, :12], torch.tensor([12]))
    torch.testing.assert_close(full[:, :12], head)


@pytest.mark.parametrize("quantizer", ["lsq", "gq"])
@pytest.mark.parametrize("bits", [1, 2, 4])
def test_b_bit_matrices_take_at_most_2_to_the_b_values(quantizer, bits):
    torch.manual_seed(0)
    layer = LstmLayer(16, 24, 8)
    configure_quantizers(layer, QuantConfig(method=quantizer))
    layer.eval()
    for m in (layer.lstm_ih, layer.lstm_hh, layer.lstm_proj):
        w = m.quantized_weight(bits)
        assert w.unique().numel() <= 2**bits
    if bits == 1:
        assert layer.lstm_hh.quantized_weight(1).unique().numel() == 2


def _lstm_model(**kw) -> Transducer:
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=20, encoder="lstm", d_model=16, num_layers=3, lstm_hidden_size=24,
                      use_ctc=True, **kw)  # fmt: skip
    return Transducer(cfg).eval()


@pytest.mark.parametrize("quant", [{}, {"quant_granularity": "channel"}, {"quantizer": "gq"}])
@pytest.mark.parametrize("name", ["d3-w1.0-b32", "d2-w1.0-b4", "d3-w1.0-b1_subsampling8", "d3-w1.0-b2_rnn1"])
def test_packed_round_trip_is_exact(quant, name, tmp_path):
    model = _lstm_model(**quant)
    subnet = SubnetConfig.from_name(name)
    info = export_subnet(model, subnet, tmp_path / "m.aio")
    assert abs(info["file_bytes"] / info["accounted_bytes"] - 1) < 0.05
    assert round_trip_error(model, subnet, tmp_path / "m.aio") < 1e-5
    small, run, _ = load_packed_model(tmp_path / "m.aio")
    assert small.config.encoder == "lstm" and small.config.num_layers == subnet.resolved(3).depth


def test_lstm_weights_are_their_own_class_and_counted_at_its_bits():
    model = _lstm_model()
    assert weight_class("encoder.layers.0.lstm_hh.weight") == "rnn"
    full = subnet_footprint(model, SubnetConfig.from_name("d3-w1.0-b32"))
    rnn1 = subnet_footprint(model, SubnetConfig.from_name("d3-w1.0-b32_rnn1"))
    lstm = sum(m.weight.numel() for layer in model.encoder.layers for m in layer.children())
    steps = 3 * len(model.encoder.layers)  # one 32-bit step per matrix
    assert full.stored_bits - rnn1.stored_bits == lstm * 31 - steps * 32
    with pytest.raises(SubnetError, match="no FFN width"):
        model.encode(torch.randn(1, 50, 80), torch.tensor([50]), SubnetConfig.from_name("d3-w0.5-b4"))


def test_a_bit_map_sets_each_matrix_down_to_one_bit():
    model = _lstm_model(mp_candidates="1,2,4,8")
    names = [f"encoder.layers.{i}.{m}" for i in range(3) for m in ("lstm_ih", "lstm_hh", "lstm_proj")]
    bits = {n: (1 if "layers.0." in n else 4) for n in names}
    bits.update({f"encoder.embed.{m}": 8 for m in ("conv1", "conv2", "out")})
    apply_bit_map(model, bits)
    mix = SubnetConfig.from_name("d3-w1.0-bmix")
    assert model.encoder.layers[0].lstm_ih.quantized_weight(0).unique().numel() == 2
    assert model.encoder.layers[2].lstm_hh.quantized_weight(0).unique().numel() <= 16
    out, _ = model.encode(torch.randn(1, 50, 80), torch.tensor([50]), mix)
    assert torch.isfinite(out).all()


def test_onnx_export_of_an_lstm_encoder(tmp_path):
    from allinone.deploy.export_onnx_cli import check_against_torch
    from allinone.deploy.onnx_export import export_onnx

    plain = Transducer(
        ModelConfig(vocab_size=20, encoder="lstm", d_model=16, num_layers=2, lstm_hidden_size=16)
    )
    subnet = SubnetConfig.from_name("d2-w1.0-b4")
    export_subnet(plain.eval(), subnet, tmp_path / "p.aio")
    small, run, _ = load_packed_model(tmp_path / "p.aio")
    paths = export_onnx(small, run, tmp_path, "p")
    assert check_against_torch(small, run, {k: paths[k] for k in ("encoder", "decoder", "joiner")}) < 1e-4
    with pytest.raises(ValueError, match="no projection"):  # LSTMP: ONNX's LSTM cannot express it
        export_onnx(_lstm_model(), SubnetConfig.from_name("d3-w1.0-b32"), tmp_path, "q")
