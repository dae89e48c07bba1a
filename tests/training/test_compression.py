"""Compression runs start from the weights the float model's WER belongs to."""

import torch

from allinone.nn.model import ModelConfig, Transducer
from allinone.training.compression import float_weights
from allinone.utils.checkpoint import save_checkpoint_atomic


def test_float_weights_of_an_epoch_checkpoint_are_the_decoded_average(tmp_path):
    cfg = ModelConfig(vocab_size=10, num_layers=1, d_model=16, num_heads=2, ffn_dim=16)
    torch.manual_seed(0)
    states = [Transducer(cfg).state_dict() for _ in range(3)]
    for epoch, batches, avg in ((1, 10, states[0]), (2, 30, states[1])):
        save_checkpoint_atomic(
            {"model": states[2], "model_avg": avg, "batch_idx_train": batches, "model_config": cfg.to_dict()},
            tmp_path / f"epoch-{epoch}.pt",
        )
    weights, config = float_weights(tmp_path / "epoch-2.pt")
    name = "encoder.layers.0.ff.linear1.weight"
    # the mean over epoch 2's steps (batches 11..30), not the average since step 0
    expected = (30 * states[1][name].double() - 10 * states[0][name].double()) / 20
    torch.testing.assert_close(weights[name], expected.float())
    assert config == cfg.to_dict()
    # the first epoch's average is its model_avg; any other file gives its final weights
    assert torch.equal(float_weights(tmp_path / "epoch-1.pt")[0][name], states[0][name])
    (tmp_path / "epoch-2.pt").rename(tmp_path / "best.pt")
    assert torch.equal(float_weights(tmp_path / "best.pt")[0][name], states[2][name])
