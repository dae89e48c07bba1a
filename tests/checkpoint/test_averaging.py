"""The running average training keeps and the epoch mean rebuilt from two of its checkpoints."""

import pytest
import torch

from allinone.checkpoint.averaging import mean_between, update_running_average
from allinone.checkpoint.io import CheckpointError
from allinone.checkpoint.record import CheckpointRecord, SamplerPosition, read_record, write_record

PERIOD = 10


def _record(model, avg, batch, epoch):
    return CheckpointRecord(
        kind="train",
        model={k: v.clone() for k, v in model.state_dict().items()},
        model_avg={k: v.clone() for k, v in avg.state_dict().items()},
        model_config={},
        subnets=[],
        batch_idx_train=batch,
        average_period=PERIOD,
        sampler=SamplerPosition(epoch + 1, 0, 42, 1, 60.0),
    )


def _train(tmp_path, epoch_ends, steps):
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
        if batch in epoch_ends:
            epoch = epoch_ends.index(batch) + 1
            write_record(_record(model, avg, batch, epoch), tmp_path / f"epoch-{epoch}.pt")
    return folded


def test_the_running_average_is_the_mean_of_its_snapshots(tmp_path):
    folded = _train(tmp_path, [95], 95)
    avg = read_record(tmp_path / "epoch-1.pt").model_avg
    expected = torch.stack([s["weight"] for s in folded.values()]).mean(0)
    torch.testing.assert_close(avg["weight"], expected)


def test_epoch_mean_counts_snapshots_not_batches_when_epochs_end_between_snapshots(tmp_path):
    # Epochs end at batches 137 and 203: neither is a multiple of the period.
    folded = _train(tmp_path, [137, 203], 203)
    got = mean_between(read_record(tmp_path / "epoch-1.pt"), read_record(tmp_path / "epoch-2.pt"))
    inside = [folded[b] for b in range(140, 201, PERIOD)]
    for name in ("weight", "bias"):
        expected = torch.stack([s[name] for s in inside]).mean(0)
        torch.testing.assert_close(got[name], expected, rtol=1e-4, atol=1e-6)
    assert (got["weight"] > 0).all()  # batch counts make this negative


def test_entries_copied_rather_than_averaged_come_from_the_end(tmp_path):
    _train(tmp_path, [50, 100], 100)
    start, end = read_record(tmp_path / "epoch-1.pt"), read_record(tmp_path / "epoch-2.pt")
    start.model_avg["enc.mp_logits"] = torch.tensor([5.0, 0.0])
    end.model_avg["enc.mp_logits"] = torch.tensor([1.0, 2.0])
    assert torch.equal(mean_between(start, end)["enc.mp_logits"], torch.tensor([1.0, 2.0]))


def test_no_snapshot_between_the_checkpoints_is_an_error(tmp_path):
    _train(tmp_path, [131, 138], 138)
    with pytest.raises(CheckpointError, match="no averaged snapshot"):
        mean_between(read_record(tmp_path / "epoch-1.pt"), read_record(tmp_path / "epoch-2.pt"))
