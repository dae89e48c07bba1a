import torch

from allinone.nn.decoder import StatelessDecoder
from allinone.nn.joiner import Joiner


def test_padded_sequence_equals_step_by_step_contexts():
    torch.manual_seed(0)
    dec = StatelessDecoder(vocab_size=10, decoder_dim=8, blank_id=0, context_size=2)
    y = torch.tensor([[0, 3, 5, 7]])
    full = dec(y, need_pad=True)  # (1, 4, 8)
    # position u sees tokens (u-1, u); before the start it sees padding (-1 -> zero embedding)
    history = [-1] + y[0].tolist()
    for u in range(4):
        step = dec(torch.tensor([history[u : u + 2]]), need_pad=False)
        torch.testing.assert_close(step[0, 0], full[0, u])


def test_joiner_projection_is_factored():
    torch.manual_seed(0)
    j = Joiner(encoder_dim=6, decoder_dim=4, joiner_dim=5, vocab_size=7)
    enc, dec = torch.randn(3, 6), torch.randn(3, 4)
    a = j(enc, dec)
    b = j(j.encoder_proj(enc), j.decoder_proj(dec), project_input=False)
    torch.testing.assert_close(a, b)
    assert a.shape == (3, 7)
