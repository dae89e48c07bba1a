import torch

from allinone.nn.model import ModelConfig, Transducer
from allinone.training.profile import profile_steps


def test_profile_times_every_part_and_counts_audio():
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=7, num_features=20, d_model=16, num_layers=1, num_heads=2, ffn_dim=24,
                      kernel_size=5, decoder_dim=12, joiner_dim=12)  # fmt: skip
    model = Transducer(cfg).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    batches = [(torch.randn(2, 50, 20), torch.tensor([50, 40]), [[1, 2], [3]])]
    times = profile_steps(model, opt, batches, prune_range=2)
    assert abs(times.audio_seconds - 0.9) < 1e-9  # 90 frames of 10 ms
    assert set(times.parts) == {"step", "loss_subgraph", "simple_loss", "pruned_loss"}
    assert all(t > 0 for t in times.parts.values())
