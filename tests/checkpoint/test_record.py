"""The typed checkpoint record: round trip, older formats, and the weights each mode gives."""

import pytest
import torch

from allinone.checkpoint.io import CheckpointError, save_checkpoint_atomic
from allinone.checkpoint.record import (
    FORMAT_VERSION,
    CheckpointRecord,
    SamplerPosition,
    read_record,
    write_record,
)
from allinone.checkpoint.weights import decoding_weights, float_weights
from allinone.nn.model import ModelConfig, Transducer

CFG = ModelConfig(vocab_size=10, num_layers=1, d_model=16, num_heads=2, ffn_dim=16)
NAME = "encoder.layers.0.ff.linear1.weight"


def _epoch_record(final, avg, batches, epoch, period=1):
    return CheckpointRecord(
        kind="train",
        model=final,
        model_avg=avg,
        model_config=CFG.to_dict(),
        subnets=["d1-w1.0-b32"],
        batch_idx_train=batches,
        average_period=period,
        sampler=SamplerPosition(epoch + 1, 0, 42, 1, 60.0),
        optimizer={},
    )


def test_a_record_round_trips_with_its_version(tmp_path):
    rec = _epoch_record({"w": torch.randn(2)}, {"w": torch.zeros(2)}, 30, 2)
    back = read_record(write_record(rec, tmp_path / "epoch-2.pt"))
    assert back.format_version == FORMAT_VERSION and back.completed_epoch == 2
    assert back.sampler == rec.sampler and torch.equal(back.model["w"], rec.model["w"])
    assert back.path == tmp_path / "epoch-2.pt"


def test_an_untyped_dict_reads_with_the_values_it_implies(tmp_path):
    old = {"model": {}, "model_avg": {}, "model_config": {}, "optimizer": {}, "batch_idx_train": 5,
           "train_config": {"average_period": 10}, "sampler": {"epoch": 3, "batches_done": 0, "seed": 1,
           "world_size": 1, "max_duration": 60.0}}  # fmt: skip
    save_checkpoint_atomic(old, tmp_path / "epoch-2.pt")
    rec = read_record(tmp_path / "epoch-2.pt")
    assert (rec.kind, rec.average_period, rec.completed_epoch) == ("train", 10, 2)


def test_a_newer_format_is_refused_by_name(tmp_path):
    save_checkpoint_atomic({"model": {}, "model_config": {}, "format_version": 99}, tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match="x.pt: checkpoint format 99 is newer"):
        read_record(tmp_path / "x.pt")


def test_float_weights_by_mode_not_by_file_name(tmp_path):
    torch.manual_seed(0)
    states = [Transducer(CFG).state_dict() for _ in range(3)]
    write_record(_epoch_record(states[2], states[0], 10, 1), tmp_path / "epoch-1.pt")
    write_record(_epoch_record(states[2], states[1], 30, 2), tmp_path / "epoch-2.pt")
    # the mean over epoch 2's steps (batches 11..30), not the average since step 0
    expected = (30 * states[1][NAME].double() - 10 * states[0][NAME].double()) / 20
    weights, config = float_weights(tmp_path / "epoch-2.pt", "epoch-mean")
    torch.testing.assert_close(weights[NAME], expected.float())
    assert config == CFG.to_dict()
    torch.testing.assert_close(decoding_weights(tmp_path, 2, 1, True)[0][NAME], expected.float())
    # the first epoch's mean is its running average; "final" is the live weights
    assert torch.equal(float_weights(tmp_path / "epoch-1.pt", "epoch-mean")[0][NAME], states[0][NAME])
    (tmp_path / "epoch-2.pt").rename(tmp_path / "best.pt")  # the name does not decide
    assert torch.equal(float_weights(tmp_path / "best.pt", "final")[0][NAME], states[2][NAME])


def test_the_epoch_mean_of_a_mid_epoch_checkpoint_is_refused(tmp_path):
    rec = _epoch_record({}, {}, 7, 1)
    rec.sampler = SamplerPosition(1, 7, 42, 1, 60.0)
    write_record(rec, tmp_path / "checkpoint-7.pt")
    with pytest.raises(CheckpointError, match="checkpoint-7.pt: written mid-epoch"):
        float_weights(tmp_path / "checkpoint-7.pt", "epoch-mean")
