"""Decoder, joiner and CTC head quantized at a subnet's "head" bit-width (quantize_heads)."""

import copy
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch

from allinone.decoding.runner import decode_dataset
from allinone.decoding.transducer_search import greedy_search_batch, modified_beam_search
from allinone.deploy.accounting import average_weight_bits, subnet_footprint
from allinone.deploy.export import export_subnet, file_vs_accounting, load_packed_model
from allinone.deploy.ptq import set_max_abs_steps
from allinone.nn.model import ModelConfig, Transducer
from allinone.quant.layers import QUANT_LAYERS
from allinone.quant.lsq import flat_rows
from allinone.subnet import FLOAT_BITS, SubnetConfig, SubnetError

HEADS = ("decoder.conv", "joiner.encoder_proj", "joiner.decoder_proj", "joiner.output_linear", "ctc_output")
LABELS = [[3, 4, 5], [6, 7]]


def _cfg(**kw):
    return ModelConfig(
        vocab_size=12, num_features=20, d_model=32, num_layers=2, num_heads=2, ffn_dim=48, kernel_size=5,
        dropout=0.0, decoder_dim=24, joiner_dim=24, use_ctc=True, **kw,
    )  # fmt: skip


def _pair():
    """(float-head model, quantized-head model) with the same weights."""
    torch.manual_seed(0)
    plain = Transducer(_cfg()).eval()
    quant = Transducer(_cfg(quantize_heads=True)).eval()
    missing, unexpected = quant.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(".steps." in k for k in missing)
    for name, m in quant.named_modules():
        if name in HEADS:
            m.reset_steps()  # LSQ steps from the copied weights
    return plain, quant


def _with_fake_quantized_heads(plain, quant, bits):
    """Brute-force reference: the float-head model with each head weight replaced by the
    quantized model's fake-quantized weight at ``bits``."""
    ref = copy.deepcopy(plain)
    modules = dict(quant.named_modules())
    with torch.no_grad():
        for name, m in ref.named_modules():
            if name in HEADS:
                m.weight.copy_(modules[name].quantized_weight(bits))
    return ref


def _batch():
    torch.manual_seed(1)
    return torch.randn(2, 40, 20), torch.tensor([40, 31])


def test_every_head_layer_is_quantizable_and_the_float_subnet_is_the_float_model_exactly():
    plain, quant = _pair()
    modules = dict(quant.named_modules())
    assert all(isinstance(modules[n], QUANT_LAYERS) for n in HEADS)
    assert not isinstance(quant.simple_am_proj, QUANT_LAYERS)  # training-only, stays float
    x, lens = _batch()
    full = SubnetConfig.from_name("d2-w1.0-b32")
    with torch.no_grad():
        want, got = plain(x, lens, LABELS, subnet=full), quant(x, lens, LABELS, subnet=full)
    for key in want:
        assert torch.equal(want[key], got[key]), key


@pytest.mark.parametrize("name, head_bits", [("d2-w1.0-b4", 4), ("d2-w0.5-b2", 2), ("d1-w1.0-b8_head2", 2)])
def test_a_quantized_subnet_runs_its_heads_at_the_head_bits(name, head_bits):
    plain, quant = _pair()
    subnet = SubnetConfig.from_name(name)
    # the same encoder for the float-head models, which refuse a head bit-width
    encoder_only = replace(subnet, class_bits=tuple(c for c in subnet.class_bits if c[0] != "head"))
    assert quant.head_bits(subnet) == head_bits and plain.head_bits(encoder_only) == FLOAT_BITS
    for layer in HEADS:
        w = dict(quant.named_modules())[layer].quantized_weight(head_bits)
        assert w.unique().numel() <= 2**head_bits, layer  # one scale per tensor
    ref = _with_fake_quantized_heads(plain, quant, head_bits)
    x, lens = _batch()
    with torch.no_grad():
        want, got = ref(x, lens, LABELS, subnet=encoder_only), quant(x, lens, LABELS, subnet=subnet)
        float_heads = plain(x, lens, LABELS, subnet=encoder_only)
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(got["pruned"], float_heads["pruned"])  # the heads did change
    with torch.no_grad():  # the KL terms towards a teacher's outputs run the heads quantized too
        _, targets = quant(x, lens, LABELS, subnet=SubnetConfig.from_name("d2-w1.0-b32"), return_targets=True)
        want_kl = ref(x, lens, LABELS, subnet=encoder_only, teacher=targets)
        got_kl = quant(x, lens, LABELS, subnet=subnet, teacher=targets)
    for key in ("kl", "kl_ctc"):
        torch.testing.assert_close(got_kl[key], want_kl[key], rtol=1e-5, atol=1e-5)
    enc, enc_lens = quant.encode(x, lens, subnet)
    for search in (greedy_search_batch, modified_beam_search):
        assert search(quant, enc, enc_lens, head_bits=head_bits) == search(ref, enc, enc_lens)


def test_head_steps_learn_and_head_bits_that_cannot_run_are_refused():
    _, quant = _pair()
    quant.train()
    x, lens = _batch()
    losses = quant(x, lens, LABELS, subnet=SubnetConfig.from_name("d2-w1.0-b2"))
    sum(v.sum() for v in losses.values()).backward()
    for layer in HEADS:
        step = dict(quant.named_modules())[layer].steps["b2"]
        assert step.grad is not None and step.grad.abs().sum() > 0, layer
    plain = Transducer(_cfg())
    with pytest.raises(SubnetError, match="keeps them float"):
        plain.head_bits(SubnetConfig.from_name("d2-w1.0-b4_head8"))
    with pytest.raises(SubnetError, match="fixed bit-width"):
        quant.head_bits(SubnetConfig.from_name("d2-w1.0-b4_headmix"))
    with pytest.raises(ValueError, match="mp_candidates"):
        _cfg(quantize_heads=True, mp_candidates="2,4")


def test_accounting_counts_head_weights_at_the_head_bits_plus_one_step_each():
    plain, quant = _pair()
    subnet = SubnetConfig.from_name("d2-w1.0-b2")
    heads = dict(quant.named_modules())
    weights = sum(heads[n].weight.numel() for n in HEADS)
    want = subnet_footprint(plain, subnet).stored_bits - weights * (FLOAT_BITS - 2) + len(HEADS) * FLOAT_BITS
    assert subnet_footprint(quant, subnet).stored_bits == want
    full = SubnetConfig.from_name("d2-w1.0-b32")
    assert subnet_footprint(quant, full).stored_bits == subnet_footprint(plain, full).stored_bits


def test_an_exported_subnet_with_quantized_heads_reloads_exactly_at_the_accounted_size(tmp_path):
    _, quant = _pair()
    subnet = SubnetConfig.from_name("d2-w0.5-b2_head4")
    info = export_subnet(quant, subnet, tmp_path / "s.aio")
    # the payload is the accounted size, up to each packed tensor's last byte; the header
    # adds a few hundred bytes, a large share of a model this small
    assert 0 <= info["payload_bytes"] - info["accounted_bytes"] < 100, info
    assert abs(file_vs_accounting(info)) < 0.1, info
    small, run, _ = load_packed_model(tmp_path / "s.aio")
    x, lens = _batch()
    bits = quant.head_bits(subnet)
    y = torch.tensor([[0, 3], [4, 5]])
    with torch.no_grad():
        want_enc, want_lens = quant.encode(x, lens, subnet)
        got_enc, _ = small.encode(x, lens, run)
        torch.testing.assert_close(got_enc, want_enc, rtol=1e-5, atol=1e-5)
        # what a deployed system runs: CTC posteriors, decoder, joiner (the simple-loss
        # projections are training-only and not in the file)
        torch.testing.assert_close(
            small.ctc_log_probs(got_enc), quant.ctc_log_probs(want_enc, bits), rtol=1e-5, atol=1e-5
        )
        want = quant.joiner(want_enc[:, :, None], quant.decoder(y, bits=bits)[:, None], bits=bits)
        got = small.joiner(got_enc[:, :, None], small.decoder(y)[:, None])
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert greedy_search_batch(small, got_enc, want_lens) == greedy_search_batch(
        quant, want_enc, want_lens, head_bits=bits
    )


class _Tokens:
    def decode(self, ids):
        return " ".join(f"t{i}" for i in ids)


def test_decode_dataset_runs_the_heads_at_the_subnets_bits():
    plain, quant = _pair()
    subnet = SubnetConfig.from_name("d2-w1.0-b2")
    x, lens = _batch()
    cuts = [SimpleNamespace(id=f"u{i}", duration=1.0) for i in range(2)]
    batch = {
        "inputs": x,
        "supervisions": {
            "sequence_idx": torch.arange(2),
            "num_frames": lens,
            "cut": cuts,
            "text": ["a", "b"],
        },
    }
    ref = _with_fake_quantized_heads(plain, quant, 2)
    for method in ("greedy_search", "modified_beam_search"):
        got, _ = decode_dataset(quant, [batch], _Tokens(), method, subnet=subnet)
        want, _ = decode_dataset(ref, [batch], _Tokens(), method, subnet=subnet)
        float_heads, _ = decode_dataset(plain, [batch], _Tokens(), method, subnet=subnet)
        assert got == want, method
        assert got != float_heads, method  # the case would not tell the two apart otherwise


@pytest.mark.parametrize(
    "quant", [{"quantizer": "gq"}, {"quant_granularity": "channel"}, {"quant_granularity": "group"}]
)
def test_the_heads_take_the_models_quantizer(quant):
    model = Transducer(_cfg(quantize_heads=True, **quant))
    modules = dict(model.named_modules())
    for name in HEADS:
        assert modules[name].quant_cfg == model.config.quant_config(), name


def test_int8_ptq_and_the_average_bits_cover_the_heads():
    torch.manual_seed(0)
    model = Transducer(_cfg(quantize_heads=True, quant_granularity="channel"))
    set_max_abs_steps(model)
    for name, m in model.named_modules():
        if name in HEADS:
            want = flat_rows(m.weight).abs().amax(1) / 127
            torch.testing.assert_close(m.steps["b8"].flatten(), want)
    encoder_only = Transducer(_cfg())
    subnet = SubnetConfig.from_name("d2-w1.0-b4_head8")
    heads = sum(dict(model.named_modules())[n].weight.numel() for n in HEADS)
    encoder = sum(m.weight.numel() for m in model.encoder.modules() if isinstance(m, QUANT_LAYERS))
    assert average_weight_bits(model, subnet) == pytest.approx((4 * encoder + 8 * heads) / (encoder + heads))
    assert average_weight_bits(encoder_only, SubnetConfig.from_name("d2-w1.0-b4")) == 4
