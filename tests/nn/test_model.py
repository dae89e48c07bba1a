import torch

from allinone.losses import rnnt
from allinone.nn.model import ModelConfig, Transducer, pad_labels


def tiny_model(**kw):
    torch.manual_seed(0)
    cfg = ModelConfig(
        vocab_size=7,
        num_features=20,
        d_model=16,
        num_layers=2,
        num_heads=2,
        ffn_dim=24,
        kernel_size=5,
        dropout=0.0,
        decoder_dim=12,
        joiner_dim=12,
        use_ctc=True,
        **kw,
    )
    return Transducer(cfg).eval()


def test_pruned_loss_with_full_range_equals_full_joiner_loss():
    model = tiny_model()
    x, x_lens = torch.randn(2, 40, 20), torch.tensor([40, 33])
    labels = [[1, 3, 2], [4, 5]]
    pruned = model(x, x_lens, labels, prune_range=4)["pruned"]  # S_max + 1 = 4 covers every label position

    enc, enc_lens = model.encode(x, x_lens)
    dec = model.decoder(pad_labels([[0] + y for y in labels], 0), need_pad=True)
    logits = model.joiner(enc[:, :, None, :], dec[:, None, :, :])  # (N, T, S+1, V)
    boundary = torch.tensor([[0, 0, 3, int(enc_lens[0])], [0, 0, 2, int(enc_lens[1])]])
    full = rnnt.rnnt_loss(
        logits, pad_labels(labels, 0), termination_symbol=0, boundary=boundary, reduction="none"
    )
    torch.testing.assert_close(pruned, full, rtol=1e-4, atol=1e-4)


def test_losses_are_finite_and_reach_all_parameters():
    model = tiny_model().train()
    x, x_lens = torch.randn(3, 50, 20), torch.tensor([50, 44, 30])
    losses = model(x, x_lens, [[1, 2], [3], [4, 5, 6]], prune_range=2)
    assert sorted(losses) == ["ctc", "pruned", "simple"]
    assert all(v.shape == (3,) and torch.isfinite(v).all() for v in losses.values())
    sum(v.sum() for v in losses.values()).backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None and ".steps." not in n]
    assert no_grad == []


def test_model_is_deep_copyable_and_state_round_trips(tmp_path):
    import copy

    model = tiny_model()
    clone = copy.deepcopy(model)
    torch.save(model.state_dict(), tmp_path / "m.pt")
    other = Transducer(model.config)
    other.load_state_dict(torch.load(tmp_path / "m.pt"))
    x, x_lens = torch.randn(1, 30, 20), torch.tensor([30])
    other.eval()
    for m in (clone, other):
        torch.testing.assert_close(m.encode(x, x_lens)[0], model.encode(x, x_lens)[0])


def test_ctc_loss_matches_brute_force_sum_over_alignments():
    import itertools
    import math

    model = tiny_model()
    enc = torch.randn(1, 4, 16)
    labels = [[3, 3]]
    loss = model.ctc_loss(model.ctc_log_probs(enc), torch.tensor([4]), labels)
    lp = model.ctc_log_probs(enc)[0]
    total = -math.inf
    for path in itertools.product(range(7), repeat=4):
        collapsed = [k for i, k in enumerate(path) if k != 0 and (i == 0 or path[i - 1] != k)]
        if collapsed == [3, 3]:
            total = float(torch.logaddexp(torch.tensor(total), sum(lp[t, k] for t, k in enumerate(path))))
    assert abs(float(loss[0]) + total) < 1e-4


def test_ctc_only_model_has_no_transducer_losses():
    model = tiny_model(use_transducer=False)
    losses = model(torch.randn(1, 30, 20), torch.tensor([30]), [[1, 2]])
    assert list(losses) == ["ctc"]
