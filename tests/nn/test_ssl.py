"""wav2vec 2.0 / HuBERT backbones as nested encoders: transformers' numbers at full size (on the
per-utterance normalised waveform the encoder feeds them), a subnet equal to a standalone
transformers model of its slice, the --pretrained-dir path, packed files."""

import pytest
import torch
import transformers

from allinone.deploy.export import export_subnet, load_packed_model, round_trip_error
from allinone.nn.model import ModelConfig, Transducer
from allinone.nn.ssl import PretrainedDirError, SslEncoder, normalize_waveform, read_pretrained_config
from allinone.subnet import SubnetConfig

SIZES = dict(hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64,
             conv_dim=(16, 16, 16), conv_kernel=(10, 3, 3), conv_stride=(5, 2, 2), num_conv_pos_embeddings=16,
             num_conv_pos_embedding_groups=2, vocab_size=12)  # fmt: skip
CASES = [
    ("wav2vec2", dict(feat_extract_norm="layer", do_stable_layer_norm=False)),
    ("wav2vec2", dict(feat_extract_norm="layer", do_stable_layer_norm=True)),
    ("hubert", dict(feat_extract_norm="layer", do_stable_layer_norm=True, feat_proj_layer_norm=True)),
]
IDS = ["wav2vec2-post-ln", "wav2vec2-stable-ln", "hubert"]


def _hf(kind, extra, **over):
    config_class, model_class = {
        "wav2vec2": (transformers.Wav2Vec2Config, transformers.Wav2Vec2Model),
        "hubert": (transformers.HubertConfig, transformers.HubertModel),
    }[kind]
    torch.manual_seed(0)
    cfg = config_class(**{**SIZES, **extra, **over})
    return cfg, model_class(cfg).eval()


def _ours(kind, cfg, hf) -> SslEncoder:
    enc = SslEncoder(kind, cfg.to_dict()).eval()
    enc.backbone.load_state_dict(hf.state_dict(), strict=False)  # quantizer steps stay
    return enc


def _batch():
    torch.manual_seed(1)
    lens = torch.tensor([4000, 2500])
    return torch.randn(2, 4000), lens, (torch.arange(4000)[None] < lens[:, None]).long()


@pytest.mark.parametrize("kind, extra", CASES, ids=IDS)
@torch.no_grad()
def test_the_full_float_subnet_is_the_transformers_model(kind, extra):
    cfg, hf = _hf(kind, extra)
    enc = _ours(kind, cfg, hf)
    x, lens, mask = _batch()
    ref = hf(normalize_waveform(x, lens), attention_mask=mask).last_hidden_state
    got, got_lens = enc(x, lens, SubnetConfig(depth=3))
    assert got_lens.tolist() == [199, 124]
    for i, n in enumerate(got_lens.tolist()):
        torch.testing.assert_close(got[i, :n], ref[i, :n], rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind, extra", CASES, ids=IDS)
@torch.no_grad()
def test_a_depth_and_width_subnet_is_a_standalone_model_of_the_sliced_weights(kind, extra):
    cfg, hf = _hf(kind, extra)
    enc = _ours(kind, cfg, hf)
    small_cfg, small = _hf(kind, extra, num_hidden_layers=2, intermediate_size=32)
    state = {}
    for name, t in hf.state_dict().items():
        if ".layers.2." in name:
            continue
        if "intermediate_dense" in name:
            t = t[:32]
        elif "output_dense.weight" in name:
            t = t[:, :32]
        state[name] = t
    small.load_state_dict(state)
    x, lens, mask = _batch()
    ref = small(normalize_waveform(x, lens), attention_mask=mask).last_hidden_state
    got, got_lens = enc(x, lens, SubnetConfig.from_name("d2-w0.5-b32"))
    for i, n in enumerate(got_lens.tolist()):
        torch.testing.assert_close(got[i, :n], ref[i, :n], rtol=0, atol=1e-6)


@torch.no_grad()
def test_quantized_subnets_put_attention_and_ffn_weights_on_their_grids():
    cfg, hf = _hf(*CASES[0])
    enc = _ours("wav2vec2", cfg, hf)
    layer = enc.backbone.encoder.layers[0]
    assert layer.attention.q_proj.quantized_weight(4).unique().numel() <= 16
    assert layer.feed_forward.intermediate_dense.quantized_weight(2, out_units=32).unique().numel() <= 4
    x, lens, _ = _batch()
    full, _ = enc(x, lens, SubnetConfig.from_name("d3-w1.0-b32"))
    low, _ = enc(x, lens, SubnetConfig.from_name("d3-w1.0-b4"))
    assert 0 < (full - low).abs().max() < 1.0  # quantized, and still the same network
    assert all(m.call_bits == 32 for m in enc.modules() if hasattr(m, "call_bits"))  # reset after the call


def test_pretrained_dir_loads_a_saved_ctc_model_and_names_what_is_missing(tmp_path):
    cfg, _ = _hf(*CASES[1])
    torch.manual_seed(3)
    ctc = transformers.Wav2Vec2ForCTC(cfg).eval()
    ctc.save_pretrained(tmp_path / "ckpt")
    assert read_pretrained_config("wav2vec2", tmp_path / "ckpt")["hidden_size"] == 32
    enc = SslEncoder("wav2vec2", cfg.to_dict(), pretrained_dir=tmp_path / "ckpt").eval()
    x, lens, mask = _batch()
    with torch.no_grad():
        ref = ctc(normalize_waveform(x, lens), attention_mask=mask).logits
        got, n = enc(x, lens, SubnetConfig(depth=3))
        logits = ctc.lm_head(got)  # the checkpoint's own CTC head on our encoder output
    for i, k in enumerate(n.tolist()):
        torch.testing.assert_close(logits[i, :k], ref[i, :k], rtol=0, atol=1e-5)
    (tmp_path / "ckpt" / "model.safetensors").unlink()
    with pytest.raises(
        PretrainedDirError, match="ckpt: incomplete checkpoint directory, missing model.safetensors"
    ):
        SslEncoder("wav2vec2", cfg.to_dict(), pretrained_dir=tmp_path / "ckpt")
    with pytest.raises(PretrainedDirError, match="no such directory"):
        read_pretrained_config("wav2vec2", tmp_path / "absent")


def _ctc_model(**kw) -> Transducer:
    cfg, _ = _hf(*CASES[0])
    torch.manual_seed(0)
    model_cfg = ModelConfig(vocab_size=12, encoder="wav2vec2", d_model=32, num_layers=3, ffn_dim=64,
                            ssl_config=cfg.to_dict(), use_transducer=False, use_ctc=True, **kw)  # fmt: skip
    return Transducer(model_cfg)


def test_one_multi_subnet_step_sums_the_per_subnet_gradients():
    model = _ctc_model()
    model.encoder.backbone.config.layerdrop = 0.0
    model.encoder.backbone.config.mask_time_prob = 0.0
    model.eval()  # no dropout: the gradients are deterministic
    x, lens, _ = _batch()
    labels = [[1, 2, 3], [4, 5]]
    subnets = [SubnetConfig.from_name(n) for n in ("d3-w1.0-b32", "d2-w0.5-b4")]
    shared = model.encoder.backbone.encoder.layers[0].feed_forward.intermediate_dense.weight

    def grad(names):
        model.zero_grad()
        sum(model(x, lens, labels, subnet=s)["ctc"].sum() for s in names).backward()
        return shared.grad.clone()

    together = grad(subnets)
    torch.testing.assert_close(together, grad(subnets[:1]) + grad(subnets[1:]), rtol=1e-5, atol=1e-6)
    assert together[32:].abs().sum() > 0 and grad(subnets[1:])[32:].abs().sum() == 0  # width prefix


@pytest.mark.parametrize("name", ["d3-w1.0-b32", "d2-w0.5-b4", "d3-w1.0-b2_attn8"])
def test_packed_subnet_files_reload_exactly(name, tmp_path):
    model = _ctc_model(quant_granularity="channel").eval()
    subnet = SubnetConfig.from_name(name)
    info = export_subnet(model, subnet, tmp_path / "m.aio")
    assert abs(info["file_bytes"] / info["accounted_bytes"] - 1) < 0.05
    small, run, _ = load_packed_model(tmp_path / "m.aio")
    assert small.config.ssl_config["num_hidden_layers"] == subnet.resolved(3).depth == run.depth
    assert round_trip_error(model, subnet, tmp_path / "m.aio") < 1e-5  # encoder and CTC head


def test_mixed_precision_searches_and_unfolding_equals_a_deeper_model_of_copied_layers():
    model = _ctc_model(mp_candidates="2,4,8")
    model.encoder.backbone.config.mask_time_prob = 0.0
    x, lens, _ = _batch()
    model.train()
    loss = model(x, lens, [[1, 2], [3]], subnet=SubnetConfig.from_name("d3-w1.0-bmix"))["ctc"].sum()
    loss.backward()
    q = model.encoder.backbone.encoder.layers[0].attention.q_proj
    assert q.mp_logits.grad is not None and q.mp_logits.grad.abs().sum() > 0  # the bit choice learns
    # "rep" unfolding: each layer run twice in a row, weight-tied, equals a 6-layer transformers
    # model whose layers are copies 0, 0, 1, 1, 2, 2
    cfg, hf = _hf(*CASES[0])
    enc = _ours("wav2vec2", cfg, hf)
    _, deep = _hf(*CASES[0], num_hidden_layers=6)
    state = {}
    for name, t in hf.state_dict().items():
        if ".layers." not in name:
            state[name] = t
            continue
        head, rest = name.split(".layers.")
        block, tail = rest.split(".", 1)
        for copy in (2 * int(block), 2 * int(block) + 1):
            state[f"{head}.layers.{copy}.{tail}"] = t
    deep.load_state_dict(state)
    x, lens, mask = _batch()
    with torch.no_grad():
        ref = deep(normalize_waveform(x, lens), attention_mask=mask).last_hidden_state
        got, n = enc(x, lens, SubnetConfig.from_name("d6-w1.0-b32-urep"))
    for i, k in enumerate(n.tolist()):
        torch.testing.assert_close(got[i, :k], ref[i, :k], rtol=0, atol=1e-5)


def test_normalisation_uses_the_valid_samples_only():
    x, lens = torch.randn(2, 100) * 3 + 1, torch.tensor([100, 60])
    x[1, 60:] = 50.0  # padding must not move the statistics
    y = normalize_waveform(x, lens)
    assert torch.allclose(y[1, :60].mean(), torch.tensor(0.0), atol=1e-5)
    assert torch.allclose(y[1, :60].std(unbiased=False), torch.tensor(1.0), atol=1e-4)
    assert (y[1, 60:] == 0).all()
