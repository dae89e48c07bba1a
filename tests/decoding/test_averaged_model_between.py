"""The mean of the weights over an epoch's steps, rebuilt from two running averages."""

import pytest
import torch

from allinone.decoding.runner import averaged_model_between
from allinone.training.averaging import update_running_average
from allinone.utils.checkpoint import CheckpointError, save_checkpoint_atomic

PERIOD = 10


def _train(tmp_path, checkpoints_at, steps):
    """Fold a drifting weight into a running average every PERIOD batches, as train.py does.

    The weight shrinks 50-fold over training (as BatchNorm variances and LSQ steps do), so
    the epoch's mean is small against the mean since step 0.
    Returns the snapshots folded in, by batch index.
    """
    model, avg = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    avg.load_state_dict(model.state_dict())
    folded = {}
    for batch in range(1, steps + 1):
        with torch.no_grad():
            model.weight.copy_(torch.full((2, 3), 5.0 * 0.98**batch))
            model.bias.copy_(torch.tensor([float(batch), -float(batch)]))
        if batch % PERIOD == 0:
            update_running_average(avg, model, batch, PERIOD)
            folded[batch] = {k: v.clone() for k, v in model.state_dict().items()}
        if batch in checkpoints_at:
            save_checkpoint_atomic(
                {
                    "model": model.state_dict(),
                    "model_avg": {k: v.clone() for k, v in avg.state_dict().items()},
                    "batch_idx_train": batch,
                    "train_config": {"average_period": PERIOD},
                },
                tmp_path / f"epoch-{checkpoints_at.index(batch) + 1}.pt",
            )
    return folded


def test_epoch_mean_counts_snapshots_not_batches_when_epochs_end_between_snapshots(tmp_path):
    # Epoch ends at batches 137 and 203: neither is a multiple of the period.
    folded = _train(tmp_path, [137, 203], 203)
    got = averaged_model_between(tmp_path / "epoch-1.pt", tmp_path / "epoch-2.pt")
    inside = [folded[b] for b in range(140, 201, PERIOD)]
    for name in ("weight", "bias"):
        expected = torch.stack([s[name] for s in inside]).mean(0)
        torch.testing.assert_close(got[name], expected, rtol=1e-4, atol=1e-6)
    assert (got["weight"] > 0).all()  # batch counts make this negative (the bug this guards)


def test_no_snapshot_between_the_checkpoints_is_an_error(tmp_path):
    _train(tmp_path, [131, 138], 138)
    with pytest.raises(CheckpointError, match="no averaged snapshot"):
        averaged_model_between(tmp_path / "epoch-1.pt", tmp_path / "epoch-2.pt")
