import pytest
import torch

from allinone.nn.attention import rel_shift
from allinone.nn.conformer import ConformerEncoder, FeedForward, make_pad_mask
from allinone.nn.normalize import utterance_cmvn
from allinone.nn.subsampling import Conv2dSubsampling, subsampled_lengths
from allinone.subnet import SubnetConfig


def tiny_encoder(**kw):
    torch.manual_seed(0)
    args = dict(
        num_features=20, d_model=16, num_layers=3, num_heads=2, ffn_dim=24, kernel_size=5, dropout=0.0
    )
    args.update(kw)
    return ConformerEncoder(**args).eval()


def test_rel_shift_matches_brute_force():
    n, h, t = 2, 3, 5
    scores = torch.randn(n, h, t, 2 * t - 1)
    out = rel_shift(scores)
    for i in range(t):
        for k in range(t):
            # column j of the input holds offset T-1-j; we need offset i-k
            assert torch.equal(out[:, :, i, k], scores[:, :, i, t - 1 - (i - k)])


@pytest.mark.parametrize("frames", [7, 8, 9, 50, 101])
def test_subsampled_lengths_match_conv_output(frames):
    sub = Conv2dSubsampling(20, 16)
    y, y_lens = sub(torch.randn(1, frames, 20), torch.tensor([frames]))
    assert y.shape[1] == int(y_lens[0]) == int(subsampled_lengths(torch.tensor(frames)))


def test_padding_does_not_change_valid_outputs():
    enc = tiny_encoder()
    x = torch.randn(1, 60, 20)
    alone, alone_lens = enc(x, torch.tensor([60]))
    padded = torch.cat([x, torch.randn(1, 40, 20) * 10], dim=1)
    other = torch.randn(1, 100, 20)
    batch, lens = enc(torch.cat([padded, other]), torch.tensor([60, 100]))
    t = int(alone_lens[0])
    assert int(lens[0]) == t
    torch.testing.assert_close(batch[0, :t], alone[0], atol=1e-5, rtol=1e-5)


def test_depth_subnet_runs_a_prefix_of_the_layers():
    enc = tiny_encoder()
    x, x_lens = torch.randn(2, 40, 20), torch.tensor([40, 31])
    out, lens = enc(x, x_lens, SubnetConfig(depth=2))
    # reference: the same computation spelled out layer by layer
    h, h_lens = enc.embed(utterance_cmvn(x, x_lens), x_lens)
    mask = make_pad_mask(h_lens, h.size(1))
    pos = enc.pos_enc(h.size(1))
    for layer in enc.layers[:2]:
        h = layer(h, pos, mask)
    torch.testing.assert_close(out, enc.output_norm(h))
    full, _ = enc(x, x_lens)
    assert not torch.allclose(full, out)
    with pytest.raises(ValueError, match="needs 4 layers, the model has 3"):
        enc(x, x_lens, SubnetConfig(depth=4))


def test_ffn_width_slice_equals_standalone_small_ffn():
    torch.manual_seed(0)
    ffn = FeedForward(8, 12, dropout=0.0)
    small = FeedForward(8, 6, dropout=0.0)
    with torch.no_grad():
        small.linear1.weight.copy_(ffn.linear1.weight[:6])
        small.linear1.bias.copy_(ffn.linear1.bias[:6])
        small.linear2.weight.copy_(ffn.linear2.weight[:, :6])
        small.linear2.bias.copy_(ffn.linear2.bias)
    x = torch.randn(2, 5, 8)
    torch.testing.assert_close(ffn(x, ratio=0.5), small(x))
    assert not torch.allclose(ffn(x, ratio=0.5), ffn(x))


def test_encoder_gradients_reach_every_parameter():
    enc = tiny_encoder()
    enc.train()
    out, _ = enc(torch.randn(2, 30, 20), torch.tensor([30, 25]))
    out.pow(2).sum().backward()
    missing = [
        n
        for n, p in enc.named_parameters()
        if ".steps." not in n and (p.grad is None or not torch.isfinite(p.grad).all())
    ]
    assert missing == []
    # A float subnet never touches the quantizer steps.
    assert all(p.grad is None for n, p in enc.named_parameters() if ".steps." in n)


def test_quantized_subnet_trains_only_its_own_steps():
    enc = tiny_encoder()
    out, _ = enc(torch.randn(2, 30, 20), torch.tensor([30, 25]), SubnetConfig(bits=4))
    out.pow(2).sum().backward()
    for n, p in enc.named_parameters():
        if ".steps." in n:
            assert (p.grad is not None) == n.endswith("steps.b4"), n
            if n.endswith("steps.b4"):
                assert torch.isfinite(p.grad).all() and p.grad.abs() > 0, n


def test_utterance_cmvn_ignores_padding():
    x = torch.randn(2, 10, 3) * 5 + 7
    lens = torch.tensor([10, 6])
    y = utterance_cmvn(x, lens)
    torch.testing.assert_close(y[1, :6], utterance_cmvn(x[1:2, :6], lens[1:])[0])
    assert torch.all(y[1, 6:] == 0)
    torch.testing.assert_close(y[0].mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(y[0].std(0, unbiased=False), torch.ones(3), atol=1e-3, rtol=0)
