"""The fp16 gradient scale: grown on schedule while small, an error when it collapses."""

import pytest
import torch

from allinone.training.grad_scale import GradScaleCollapsed, make_grad_scaler, nudge_grad_scale


def _scaler(scale):
    scaler = make_grad_scaler(torch.device("cpu"), enabled=True)
    scaler.scale(torch.tensor(1.0))  # creates the scale, as the first step's backward does
    scaler.update(scale)
    return scaler


def test_a_small_scale_doubles_at_every_check_and_a_middling_one_rarely():
    scaler = _scaler(1.0)
    nudge_grad_scale(scaler, 99)
    assert scaler.get_scale() == 1.0  # not a check batch
    nudge_grad_scale(scaler, 100)
    assert scaler.get_scale() == 2.0
    scaler = _scaler(16.0)
    nudge_grad_scale(scaler, 100)
    assert scaler.get_scale() == 16.0
    nudge_grad_scale(scaler, 400)
    assert scaler.get_scale() == 32.0
    scaler = _scaler(64.0)
    nudge_grad_scale(scaler, 400)
    assert scaler.get_scale() == 64.0


def test_a_collapsed_scale_stops_the_run_naming_the_batch():
    scaler = _scaler(1e-6)
    with pytest.raises(GradScaleCollapsed, match="at batch 300"):
        nudge_grad_scale(scaler, 300)


def test_a_disabled_scaler_is_left_alone():
    scaler = make_grad_scaler(torch.device("cpu"), enabled=False)
    assert nudge_grad_scale(scaler, 100) == 1.0
    loss = torch.tensor(3.0, requires_grad=True)
    assert scaler.scale(loss) is loss
