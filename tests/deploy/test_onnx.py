"""ONNX export of one subnet: parity with the nested torch model, int8 codes, metadata, bad files."""

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from allinone.deploy.export import export_subnet, load_packed_model
from allinone.deploy.onnx_export import export_onnx, onnx_path, read_metadata
from allinone.deploy.onnx_int8 import code_rows, int8_from_codes, quantize_dynamic_int8
from allinone.deploy.onnx_runtime import OnnxModelError, OnnxTransducer, check_onnx_model, open_session
from allinone.nn.model import ModelConfig, Transducer
from allinone.quant.pack import read_packed_file
from allinone.subnet import SubnetConfig
from allinone.unfold import statistics_keys

GRID = ["d3-w1.0-b32", "d2-w0.5-b4", "d3-w1.0-b2_head8", "d5-w1.0-b8-urep"]
# Encoder frames and logits of the exported float graphs against torch: float32 rounding only.
TOLERANCE = 1e-4


def _model(granularity: str = "channel", quantizer: str = "lsq") -> Transducer:
    torch.manual_seed(0)
    grid = [SubnetConfig.from_name(n) for n in GRID]
    cfg = ModelConfig(
        vocab_size=30, num_layers=3, d_model=32, num_heads=2, ffn_dim=64, kernel_size=5, use_ctc=True,
        quantize_heads=True, quant_granularity=granularity, quantizer=quantizer,
        norm_subnets=tuple(statistics_keys(grid, 3)),
    )  # fmt: skip
    model = Transducer(cfg)
    with torch.no_grad():  # distinct BatchNorm statistics per subnet slot
        for name, b in model.named_buffers():
            if "running" in name:
                b.uniform_(0.5, 1.5)
    return model.eval()


def _export(model, name, tmp_path):
    subnet = SubnetConfig.from_name(name)
    aio = tmp_path / f"{name}.aio"
    export_subnet(model, subnet, aio)
    small, run, meta = load_packed_model(aio)
    return subnet, small, run, meta, aio, export_onnx(small, run, tmp_path, name)


@torch.no_grad()
def _torch_reference(model, subnet, x, x_lens, y):
    """Projected encoder frames, decoder output and joiner logits of ``subnet`` of the nested model."""
    bits = model.head_bits(subnet)
    enc, lens = model.encoder(x, x_lens, subnet)
    enc = model.joiner.project_encoder(enc, bits)
    dec = model.joiner.project_decoder(model.decoder(y, need_pad=False, bits=bits)[:, 0], bits)
    logits = model.joiner(enc[:, 5], dec, project_input=False, bits=bits)
    ctc = model.ctc_log_probs(model.encoder(x, x_lens, subnet)[0], bits)
    return enc, lens, dec, logits, ctc


def _run_onnx(paths, x, x_lens, y, optimization="all"):
    onnx_model = OnnxTransducer(paths, optimization=optimization)
    enc, lens = onnx_model.encode(x, x_lens)
    dec = onnx_model.decoder(y)[:, 0]
    logits = onnx_model.joiner(enc[:, 5], dec)
    ctc_session = open_session(paths["ctc"], optimization=optimization)
    ctc = ctc_session.run(None, {"x": x.numpy(), "x_lens": x_lens.numpy()})[0]
    return enc, lens, dec, logits, torch.from_numpy(ctc)


def _close(ref, got, lens):
    enc, ref_lens, dec, logits, ctc = ref
    g_enc, g_lens, g_dec, g_logits, g_ctc = got
    assert torch.equal(ref_lens, g_lens)
    diffs = [(dec - g_dec).abs().max(), (logits - g_logits).abs().max()]
    for i, n in enumerate(lens.tolist()):
        diffs += [(enc[i, :n] - g_enc[i, :n]).abs().max(), (ctc[i, :n] - g_ctc[i, :n]).abs().max()]
    return float(max(diffs))


@pytest.mark.parametrize("name", GRID)
def test_onnx_graphs_compute_the_subnet_of_the_nested_model(name, tmp_path):
    model = _model()
    subnet, _, _, _, _, paths = _export(model, name, tmp_path)
    torch.manual_seed(3)
    # other lengths and batch size than the graphs were traced with: the axes are dynamic
    x, x_lens = torch.randn(3, 251, 80), torch.tensor([251, 190, 77])
    y = torch.tensor([[-1, 0], [4, 9], [0, 7]])
    ref = _torch_reference(model, subnet, x, x_lens, y)
    assert _close(ref, _run_onnx(paths, x, x_lens, y), ref[1]) < TOLERANCE


@pytest.mark.parametrize("granularity", ["tensor", "channel"])
def test_int8_codes_are_the_subnets_own_codes(granularity, tmp_path):
    model = _model(granularity)
    name = "d2-w0.5-b4"
    subnet, small, _, meta, aio, paths = _export(model, name, tmp_path)
    _, records = read_packed_file(aio)
    table = code_rows(records, dict(small.state_dict()), meta["granularity"])
    coded = {}
    for part, path in paths.items():
        coded[part] = onnx_path(tmp_path, part, name, "int8-codes")
        stats = int8_from_codes(path, coded[part], table)
        assert stats["replaced"] > 0 and stats["float_params"] == 0, (part, stats)  # every weight found
    # The int8 initializers times their steps are the float graph's weights, bit for bit, and
    # every code lies on the 4-bit grid: no second rounding.
    for part in paths:
        floats = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(paths[part])).graph.initializer}
        proto = onnx.load(str(coded[part]))
        ints = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
        for node in (n for n in proto.graph.node if n.op_type == "DequantizeLinear"):
            codes, step = ints[node.input[0]], ints[node.input[1]]
            assert codes.dtype == np.int8 and np.abs(codes).max() <= 7
            axis = node.attribute[0].i
            shape = [1] * codes.ndim
            shape[axis] = -1
            np.testing.assert_array_equal(
                codes.astype(np.float32) * step.reshape(shape), floats[node.output[0]]
            )
    x, x_lens, y = torch.randn(2, 120, 80), torch.tensor([120, 99]), torch.tensor([[-1, 0], [3, 5]])
    ref = _torch_reference(model, subnet, x, x_lens, y)
    # without onnxruntime's int8 kernel fusion the codes graph computes the float subnet
    assert _close(ref, _run_onnx(coded, x, x_lens, y, optimization="basic"), ref[1]) < TOLERANCE
    # with it (sherpa-onnx's default) activations are quantized too: close, not equal
    assert _close(ref, _run_onnx(coded, x, x_lens, y), ref[1]) < 0.5


def test_dynamic_int8_quantizes_matmul_weights_only(tmp_path):
    model = _model()
    *_, paths = _export(model, "d3-w1.0-b32", tmp_path)
    out = quantize_dynamic_int8(paths["encoder"], tmp_path / "encoder.int8.onnx")
    proto = onnx.load(str(out))
    inits = {i.name: i for i in proto.graph.initializer}
    ops = {n.op_type for n in proto.graph.node}
    assert "MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops
    # no float MatMul on a weight is left; convolutions keep float weights
    assert not [n.name for n in proto.graph.node if n.op_type == "MatMul" and n.input[1] in inits]
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    assert convs and all(inits[n.input[1]].data_type == onnx.TensorProto.FLOAT for n in convs)
    assert read_metadata(out)["model_author"] == "allinone"  # metadata survives quantization
    assert out.stat().st_size < 0.8 * paths["encoder"].stat().st_size  # convolutions stay float


def test_decoder_carries_the_metadata_sherpa_onnx_reads(tmp_path):
    model = _model()
    *_, paths = _export(model, "d2-w0.5-b4", tmp_path)
    meta = read_metadata(paths["decoder"])
    assert meta["vocab_size"] == "30" and meta["context_size"] == "2"
    assert check_onnx_model(paths["decoder"], "decoder")["vocab_size"] == "30"
    # the same decoder without "context_size": sherpa-onnx would exit; our check names the file
    proto = onnx.load(str(paths["decoder"]))
    keep = [p for p in proto.metadata_props if p.key != "context_size"]
    del proto.metadata_props[:]
    proto.metadata_props.extend(keep)
    bad = tmp_path / "decoder-no-context.onnx"
    onnx.save(proto, str(bad))
    with pytest.raises(OnnxModelError, match="decoder-no-context.onnx.*context_size"):
        check_onnx_model(bad, "decoder")
    # a joiner handed over as the decoder is refused by its signature
    with pytest.raises(OnnxModelError, match="not an exported decoder"):
        check_onnx_model(paths["joiner"], "decoder")


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_damaged_onnx_files_are_named(damage, tmp_path):
    model = _model()
    *_, paths = _export(model, "d2-w0.5-b4", tmp_path)
    data = paths["encoder"].read_bytes()
    bad = tmp_path / f"encoder-{damage}.onnx"
    bad.write_bytes(
        {"truncated": data[: len(data) // 2], "garbage": b"\x08\x07not onnx" * 50, "empty": b""}[damage]
    )
    with pytest.raises(OnnxModelError, match=f"encoder-{damage}.onnx: not a loadable ONNX model"):
        open_session(bad)
    with pytest.raises(OnnxModelError, match="no such ONNX file"):
        open_session(tmp_path / "absent.onnx")


@pytest.mark.parametrize("granularity", ["tensor", "channel"])
def test_gq_weights_are_stored_as_their_indices_and_codebook(granularity, tmp_path):
    from allinone.deploy.onnx_int8 import codebook_tensors

    model = _model(granularity, quantizer="gq")
    name = "d2-w0.5-b4"
    subnet, small, _, meta, aio, paths = _export(model, name, tmp_path)
    _, records = read_packed_file(aio)
    weights = dict(small.state_dict())
    rows, books = code_rows(records, weights, meta["granularity"]), codebook_tensors(records, weights)
    assert not rows and books  # GQ has no uniform steps
    coded = {p: onnx_path(tmp_path, p, name, "int8-codes") for p in paths}
    stats = int8_from_codes(paths["encoder"], coded["encoder"], rows, books)
    # every GQ weight that is one tensor of the graph is stored as codes; Q, K and V are
    # concatenated into one tensor with three codebooks and stay float
    assert stats["replaced"] > 0 and stats["float_params"] <= 3 * 32 * 32 * 2
    indices = [i for i in onnx.load(str(coded["encoder"])).graph.initializer if i.name.endswith("_indices")]
    assert indices and all(i.data_type == onnx.TensorProto.UINT8 for i in indices)
    for part in ("decoder", "joiner"):
        int8_from_codes(paths[part], coded[part], rows, books)
    x, x_lens, y = torch.randn(2, 120, 80), torch.tensor([120, 99]), torch.tensor([[-1, 0], [3, 5]])
    ref = _torch_reference(model, subnet, x, x_lens, y)
    assert _close(ref, _run_onnx({**paths, **{k: coded[k] for k in ("encoder", "decoder", "joiner")}},
                                 x, x_lens, y), ref[1]) < TOLERANCE  # fmt: skip
