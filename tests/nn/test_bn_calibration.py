"""BatchNorm calibration: exact per-subnet statistics, other slots and weights untouched."""

import copy

import pytest
import torch

from allinone.nn.bn_calibration import calibrate_batchnorm
from allinone.nn.conformer import SubnetBatchNorm
from allinone.nn.model import ModelConfig, Transducer
from allinone.subnet import SubnetConfig
from allinone.unfold import statistics_keys

GRID = [SubnetConfig.from_name(n).resolved(3) for n in ("d3-w1.0-b32", "d2-w0.5-b4")]


def _model() -> Transducer:
    cfg = ModelConfig(
        vocab_size=10,
        num_layers=3,
        d_model=16,
        num_heads=2,
        ffn_dim=24,
        dropout=0.0,
        norm_subnets=tuple(statistics_keys(GRID, 3)),
    )
    torch.manual_seed(0)
    model = Transducer(cfg)
    # Statistics far from what calibration finds, as after training on other inputs.
    for m in model.modules():
        if isinstance(m, SubnetBatchNorm):
            m.running_mean.uniform_(-3, 3)
            m.running_var.uniform_(5, 9)
    return model.eval()


def _batches(n: int):
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(3, 40, 80, generator=g), torch.tensor([40, 33, 25])) for _ in range(n)]


def _brute_force_stats(model: Transducer, subnet: SubnetConfig, batches):
    """Mean over batches of each used BatchNorm's batch mean and unbiased variance of its input."""
    model = copy.deepcopy(model)
    inputs = {}

    def grab(module, args):
        inputs.setdefault(module, []).append(args[0].detach())

    norms = [m for m in model.modules() if isinstance(m, SubnetBatchNorm)]
    hooks = [m.register_forward_pre_hook(grab) for m in norms]
    model.eval()
    for m in norms:
        m.train()  # the encoder then normalises with batch statistics, as calibration does
    with torch.no_grad():
        for x, lens in batches:
            model.encode(x, lens, subnet)
    for h in hooks:
        h.remove()
    stats = []
    for m in norms:
        if m not in inputs:
            continue
        per_batch = [
            (x.mean(dim=(0, 2)), x.transpose(0, 1).reshape(x.size(1), -1).var(dim=1)) for x in inputs[m]
        ]
        stats.append(
            (
                norms.index(m),
                torch.stack([a for a, _ in per_batch]).mean(0),
                torch.stack([b for _, b in per_batch]).mean(0),
            )
        )
    return stats


def test_calibration_gives_the_mean_of_the_per_batch_statistics_for_the_subnets_slots_only():
    model = _model()
    before = copy.deepcopy(model.state_dict())
    small = GRID[1]
    batches = _batches(3)
    info = calibrate_batchnorm(model, small, batches)
    assert info == {"batches": 3, "slots": 2}  # depth 2: two conv modules, one slot each

    norms = [m for m in model.modules() if isinstance(m, SubnetBatchNorm)]
    expected = _brute_force_stats(_model(), small, batches)
    assert [i for i, _, _ in expected] == [0, 1]
    slot = model.encoder.norm_slot(small)
    for i, mean, var in expected:
        torch.testing.assert_close(norms[i].running_mean[slot], mean, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(norms[i].running_var[slot], var, rtol=1e-4, atol=1e-5)

    after = model.state_dict()
    for name, value in before.items():
        if name.endswith(("running_mean", "running_var")):
            layer = int(name.split(".")[2])
            rows = [s for s in range(value.size(0)) if not (s == slot and layer < 2)]
            torch.testing.assert_close(after[name][rows], value[rows], rtol=0, atol=0)
            if layer < 2:
                assert not torch.allclose(after[name][slot], value[slot])
        else:
            torch.testing.assert_close(after[name], value, rtol=0, atol=0)  # weights untouched
    assert not model.training
    assert all(m.momentum == 0.1 for m in norms)


def test_calibrated_statistics_change_the_subnets_output_in_eval_mode():
    model = _model()
    x, lens = _batches(1)[0]
    with torch.no_grad():
        stale = model.encode(x, lens, GRID[0])[0]
        calibrate_batchnorm(model, GRID[0], _batches(4))
        fresh = model.encode(x, lens, GRID[0])[0]
    assert not torch.allclose(stale, fresh)


def test_no_batches_is_an_error_and_leaves_the_statistics_as_they_were():
    model = _model()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ValueError, match="no batches"):
        calibrate_batchnorm(model, GRID[0], [])
    for name, value in before.items():
        torch.testing.assert_close(model.state_dict()[name], value, rtol=0, atol=0)
