import torch

from allinone.training.schedule import WarmupDecaySchedule, transducer_loss_scales


def test_warmup_then_decay():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = WarmupDecaySchedule(opt, base_lr=1.0, warmup_batches=10, lr_batches=100, lr_epochs=2)
    lrs = []
    for b in range(1, 400):
        sched.step_batch(b)
        lrs.append(opt.param_groups[0]["lr"])
    assert all(x < y for x, y in zip(lrs[:8], lrs[1:9]))  # rising during warm-up
    assert all(x >= y for x, y in zip(lrs[10:], lrs[11:]))  # then non-increasing
    assert lrs[-1] < 0.5 * max(lrs)
    before = sched.lr()
    sched.step_epoch(4)
    assert sched.lr() < before
    state = sched.state_dict()
    other = WarmupDecaySchedule(opt, base_lr=1.0, warmup_batches=10, lr_batches=100, lr_epochs=2)
    other.load_state_dict(state)
    assert other.lr() == sched.lr()


def test_loss_scales_warm_up_from_simple_to_pruned():
    assert transducer_loss_scales(0, 100, 0.5) == (1.0, 0.1)
    s, p = transducer_loss_scales(50, 100, 0.5)
    assert abs(s - 0.75) < 1e-9 and abs(p - 0.55) < 1e-9
    assert transducer_loss_scales(100, 100, 0.5) == (0.5, 1.0)
