import torch

from allinone.losses import rnnt
from allinone.nn.model import ModelConfig, Transducer, pad_labels


def tiny_model():
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
    )
    return Transducer(cfg).eval()


def test_pruned_loss_with_full_range_equals_full_joiner_loss():
    model = tiny_model()
    x, x_lens = torch.randn(2, 40, 20), torch.tensor([40, 33])
    labels = [[1, 3, 2], [4, 5]]
    _, pruned = model(x, x_lens, labels, prune_range=4)  # S_max + 1 = 4 covers every label position

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
    simple, pruned = model(x, x_lens, [[1, 2], [3], [4, 5, 6]], prune_range=2)
    assert simple.shape == pruned.shape == (3,)
    assert torch.isfinite(simple).all() and torch.isfinite(pruned).all()
    (simple.sum() + pruned.sum()).backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]
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
