"""Every encoder's ``output_lengths`` gives the frame counts its forward returns: the step
losses normalise by it, so a waveform encoder's loss is per 20-ms frame, not per sample."""

import pytest
import torch

from allinone.nn.model import ModelConfig, Transducer

SSL_CONFIG = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                  conv_dim=(16, 16, 16), conv_kernel=(10, 3, 3), conv_stride=(5, 2, 2),
                  num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)  # fmt: skip


def _model(encoder: str) -> Transducer:
    torch.manual_seed(0)
    extra = {}
    if encoder == "wav2vec2":
        extra = {"ssl_config": SSL_CONFIG, "use_transducer": False, "use_ctc": True}
    cfg = ModelConfig(
        vocab_size=12, d_model=32, num_layers=2, num_heads=2, ffn_dim=64, encoder=encoder, **extra
    )
    return Transducer(cfg).eval()


CASES = [("conformer", [57, 31]), ("lstm", [57, 31]), ("wav2vec2", [4000, 2501])]


@pytest.mark.parametrize("encoder, lens", CASES)
@torch.no_grad()
def test_output_lengths_match_the_forward(encoder, lens):
    model = _model(encoder)
    lens = torch.tensor(lens)
    x = torch.randn(2, int(lens.max())) if encoder == "wav2vec2" else torch.randn(2, int(lens.max()), 80)
    _, out_lens = model.encode(x, lens)
    assert out_lens.tolist() == model.encoder.output_lengths(lens).tolist()
    if encoder == "wav2vec2":
        assert out_lens.tolist() == [199, 124]  # 20 ms frames of 16 kHz samples, not samples / 4
