"""Packed subnet files: size against the accounting, exact reload, damaged files."""

import pytest
import torch

from allinone.deploy.export import export_subnet, file_vs_accounting, load_packed_model, round_trip_error
from allinone.nn.build import init_from_float
from allinone.nn.model import ModelConfig, Transducer
from allinone.quant.mixed import finalise
from allinone.quant.pack import PackedFileError, TensorRecord, read_packed_file, write_packed_file
from allinone.subnet import SubnetConfig
from allinone.unfold import statistics_keys

GRID = ["d4-w1.0-b4", "d3-w0.5-b2_ffn1", "d8-w0.5-b3-urep", "d6-w1.0-b4-urep", "d4-w1.0-b32", "d2-w1.0-b1"]
QUANT = [
    {},
    {"quant_granularity": "channel"},
    {"quant_granularity": "group", "quant_group_size": 16},
    {"quantizer": "gq"},
    {"quantizer": "gq", "quant_granularity": "channel"},
]


def _model(grid=GRID, **quant) -> Transducer:
    torch.manual_seed(0)
    grid = [SubnetConfig.from_name(n) for n in grid]
    cfg = ModelConfig(
        vocab_size=30, num_layers=4, d_model=32, num_heads=2, ffn_dim=64, kernel_size=5, use_ctc=True,
        norm_subnets=tuple(statistics_keys(grid, 4)), unfold_relax=1, **quant,
    )  # fmt: skip
    model = Transducer(cfg)
    with torch.no_grad():  # distinct statistics per slot and non-trivial relaxations
        for name, b in model.named_buffers():
            if "running" in name:
                b.uniform_(0.5, 1.5)
        model.encoder.unfold_gain.uniform_(0.8, 1.2)
    return model.eval()


def _inputs():
    torch.manual_seed(1)
    return torch.randn(2, 60, 80), torch.tensor([60, 45])


@pytest.mark.parametrize("quant", QUANT, ids=lambda q: "-".join(map(str, q.values())) or "lsq-tensor")
def test_exported_subnets_reload_exactly_and_match_the_accounting(quant, tmp_path):
    model = _model(**quant)
    x, lens = _inputs()
    for name in GRID:
        subnet = SubnetConfig.from_name(name)
        info = export_subnet(model, subnet, tmp_path / f"{name}.aio")
        assert abs(file_vs_accounting(info)) < 0.02, (name, info)
        # the payload is the accounted size exactly, up to each packed tensor's last byte
        assert 0 <= info["payload_bytes"] - info["accounted_bytes"] < 100, (name, info)
        small, run, meta = load_packed_model(tmp_path / f"{name}.aio")
        assert meta["source_subnet"] == subnet.resolved(4).name
        with torch.no_grad():
            ref, ref_lens = model.encoder(x, lens, subnet)
            got, got_lens = small.encoder(x, lens, run)
        assert (ref - got).abs().max() <= 1e-5, name
        assert torch.equal(ref_lens, got_lens)
        # the standalone model holds only the blocks and units the subnet runs
        depth_blocks = len(set(subnet.schedule(4)))
        assert small.config.num_layers == depth_blocks


def test_a_mixed_precision_subnet_exports_at_its_finalised_bits(tmp_path):
    model = _model(grid=["d4-w1.0-bmix"], mp_candidates="2,3,4,6,8")
    finalise(model)
    subnet = SubnetConfig.from_name("d4-w1.0-bmix")
    info = export_subnet(model, subnet, tmp_path / "mix.aio")
    assert abs(file_vs_accounting(info)) < 0.02
    small, run, _ = load_packed_model(tmp_path / "mix.aio")
    x, lens = _inputs()
    with torch.no_grad():
        assert (model.encoder(x, lens, subnet)[0] - small.encoder(x, lens, run)[0]).abs().max() <= 1e-5


def test_damaged_or_foreign_files_are_rejected_with_their_path(tmp_path):
    model = _model()
    path = tmp_path / "m.aio"
    export_subnet(model, SubnetConfig.from_name("d4-w1.0-b4"), path)
    data = path.read_bytes()
    (tmp_path / "cut.aio").write_bytes(data[: len(data) // 2])
    with pytest.raises(PackedFileError, match="cut.aio.*truncated"):
        load_packed_model(tmp_path / "cut.aio")
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    (tmp_path / "flip.aio").write_bytes(bytes(flipped))
    with pytest.raises(PackedFileError, match="flip.aio.*(corrupt|CRC)"):
        load_packed_model(tmp_path / "flip.aio")
    write_packed_file(tmp_path / "other.aio", {"format": "x"}, {"w": TensorRecord.from_float(torch.ones(2))})
    with pytest.raises(PackedFileError, match="other.aio: not a packed subnet file"):
        load_packed_model(tmp_path / "other.aio")


def test_init_from_float_copies_weights_and_reinitialises_quantizers():
    torch.manual_seed(0)
    float_model = Transducer(ModelConfig(vocab_size=30, num_layers=2, d_model=32, num_heads=2, ffn_dim=64))
    target = Transducer(
        ModelConfig(
            vocab_size=30,
            num_layers=2,
            d_model=32,
            num_heads=2,
            ffn_dim=64,
            quant_granularity="channel",
            norm_subnets=("a", "b"),
        )  # fmt: skip
    )
    with torch.no_grad():
        float_model.encoder.layers[0].conv.norm.running_mean.uniform_()
    init_from_float(target, float_model.state_dict(), "float.pt")
    w = float_model.encoder.layers[1].ff.linear1.weight
    assert torch.equal(target.encoder.layers[1].ff.linear1.weight, w)
    stats = target.encoder.layers[0].conv.norm.running_mean
    assert torch.equal(stats[0], stats[1]) and torch.equal(
        stats[0], float_model.encoder.layers[0].conv.norm.running_mean[0]
    )
    step = target.encoder.layers[1].ff.linear1.steps["b4"]
    torch.testing.assert_close(step, 2 * w.abs().mean(1) / 7**0.5)
    with pytest.raises(ValueError, match="float.pt: encoder.embed.out.weight has shape"):
        other = Transducer(ModelConfig(vocab_size=30, num_layers=2, d_model=48, num_heads=2, ffn_dim=64))
        init_from_float(target, other.state_dict(), "float.pt")


@pytest.mark.parametrize("quant", [{}, {"quantizer": "gq"}], ids=["lsq", "gq"])
def test_round_trip_error_of_an_exported_subnet_is_float_rounding(quant, tmp_path):
    model = _model(**quant)
    subnet = SubnetConfig.from_name("d4-w1.0-b4")
    export_subnet(model, subnet, tmp_path / "s.aio")
    assert round_trip_error(model, subnet, tmp_path / "s.aio") < 1e-4


@pytest.mark.parametrize("quant", QUANT[:2] + QUANT[3:4], ids=["lsq-tensor", "lsq-channel", "gq"])
def test_kept_codes_give_the_dequantized_models_outputs_in_less_memory(quant, tmp_path):
    from allinone.deploy.export import resident_weight_bytes

    lstm = ModelConfig(vocab_size=30, encoder="lstm", d_model=16, num_layers=3, lstm_hidden_size=64,
                       use_ctc=True, **quant)  # fmt: skip
    torch.manual_seed(0)
    for model, name in [(_model(**quant), "d3-w0.5-b2_ffn1"), (Transducer(lstm).eval(), "d3-w1.0-b2_rnn1")]:
        path = tmp_path / f"{name}.aio"
        export_subnet(model, SubnetConfig.from_name(name), path)
        full, run, _ = load_packed_model(path)
        kept, _, _ = load_packed_model(path, keep_codes=True)
        x, lens = _inputs()
        with torch.no_grad():
            want, _ = full.encoder(x, lens, run)
            got, _ = kept.encoder(x, lens, run)
        assert (want - got).abs().max() <= 1e-6, name  # the same weights; kernels may differ in rounding
        # every quantized weight of the file is held as its uint8 codes, no float copy
        _, records = read_packed_file(path)
        quantized = {n for n, r in records.items() if r.kind == "packed"}
        codes = {n.replace(".parametrizations.weight.original", ".weight")
                 for n, b in kept.named_buffers() if b.dtype == torch.uint8}  # fmt: skip
        assert quantized and codes == quantized
        assert not quantized & {n for n, _ in kept.named_parameters()}
        saved = resident_weight_bytes(full) - resident_weight_bytes(kept)
        code_bytes = sum(b.numel() for b in kept.buffers() if b.dtype == torch.uint8)
        # 2-bit (1-bit FFN and LSTM) codes in place of float32: at least 12x fewer bytes for them
        assert saved >= 11 * code_bytes, (name, saved, code_bytes)
