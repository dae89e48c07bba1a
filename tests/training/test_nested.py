import itertools
import random

import pytest
import torch

from allinone.losses.distill import masked_kl
from allinone.nn.model import ModelConfig, Transducer
from allinone.subnet import SubnetConfig, SubnetError
from allinone.training.nested import NestedLoss, NestedPlan, combine_subnet_losses, parse_subnet_weights

GRID = tuple(SubnetConfig.from_name(n) for n in ("d2-w1.0-b32", "d2-w0.5-b4", "d1-w1.0-b8", "d1-w0.5-b2"))
HEADS = {"simple": 0.5, "pruned": 1.0, "ctc": 0.2}


def tiny_model():
    torch.manual_seed(0)
    cfg = ModelConfig(
        vocab_size=7, num_features=20, d_model=16, num_layers=2, num_heads=2, ffn_dim=24, kernel_size=5,
        dropout=0.0, decoder_dim=12, joiner_dim=12, use_ctc=True, norm_subnets=tuple(s.name for s in GRID),
    )  # fmt: skip
    return Transducer(cfg).train()


def batch():
    torch.manual_seed(1)
    return torch.randn(3, 50, 20), torch.tensor([50, 44, 36]), [[1, 2], [3], [4, 5, 6]]


def grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("distill", [False, True])
def test_one_multi_subnet_step_gives_the_sum_of_per_subnet_gradients(distill):
    plan = NestedPlan(GRID, policy="all", distill=distill, loss_weights=(("d1-w0.5-b2", 2.0),))
    x, lens, labels = batch()
    model = tiny_model()
    per_subnet = NestedLoss(model)(x, lens, labels, GRID, distill=distill, prune_range=3)
    combine_subnet_losses(per_subnet, HEADS, plan, GRID[0].name).sum().backward()
    together = grads(model)

    model = tiny_model()
    targets = None
    summed = {}
    for i, subnet in enumerate(GRID):
        model.zero_grad()
        if distill and i == 0:
            losses, targets = model(x, lens, labels, prune_range=3, subnet=subnet, return_targets=True)
        else:
            losses = model(x, lens, labels, prune_range=3, subnet=subnet, teacher=targets)
        combine_subnet_losses({subnet.name: losses}, HEADS, plan, GRID[0].name).sum().backward()
        for n, g in grads(model).items():
            summed[n] = summed.get(n, 0) + g
    assert together.keys() == summed.keys()
    for n in together:
        torch.testing.assert_close(together[n], summed[n], rtol=1e-4, atol=1e-6, msg=n)
    # every subnet's own quantizer steps received a gradient, unused bit-widths none
    assert "encoder.layers.0.ff.linear1.steps.b4" in together
    assert "encoder.layers.1.ff.linear1.steps.b2" not in together  # d1 never runs layer 2
    assert "encoder.layers.0.ff.linear1.steps.b6" not in together


def test_students_weigh_label_loss_and_kl_as_configured():
    plan = NestedPlan(
        GRID[:2],
        distill=True,
        distill_scale=1.0,
        student_label_scale=0.5,
        loss_weights=((GRID[1].name, 3.0),),
    )
    one = torch.ones(2)
    per = {
        GRID[0].name: {"pruned": one * 2, "ctc": one * 10},
        GRID[1].name: {"pruned": one * 4, "ctc": one * 20, "kl": one * 3, "kl_ctc": one * 5},
    }
    total = combine_subnet_losses(per, HEADS, plan, GRID[0].name)
    teacher = 2 + 0.2 * 10
    # the subnet weight scales its label losses, not its KL
    student = 3.0 * 0.5 * (4 + 0.2 * 20) + 1.0 * (3 + 0.2 * 5)
    torch.testing.assert_close(total, one * (teacher + student))


def test_sandwich_runs_largest_smallest_and_k_random_reproducibly():
    plan = NestedPlan(GRID, policy="sandwich", sandwich_k=1)
    picks = [plan.select(step, seed=3) for step in range(40)]
    for p in picks:
        assert p[0] == GRID[0] and p[-1] == GRID[-1] and len(p) == 3 and p[1] in GRID[1:-1]
    assert {p[1].name for p in picks} == {GRID[1].name, GRID[2].name}
    assert picks == [plan.select(step, seed=3) for step in range(40)]
    assert NestedPlan(GRID, policy="auto").select(0, 0) == list(GRID)  # at most 6 subnets: all


FIVE = tuple(
    SubnetConfig.from_name(n) for n in ("d2-w1.0-b32", "d2-w1.0-b8", "d2-w0.5-b4", "d1-w1.0-b8", "d1-w0.5-b2")
)


def middle_pick_counts(plan, steps, seed=5):
    counts = {}
    for step in range(steps):
        picks = plan.select(step, seed)
        assert picks[0] == FIVE[0] and picks[-1] == FIVE[-1] and len(set(picks)) == len(picks)
        key = frozenset(s.name for s in picks[1:-1])
        counts[key] = counts.get(key, 0) + 1
    return counts


def test_uniform_sandwich_draws_are_those_of_runs_from_before_draw_weights():
    plan = NestedPlan(FIVE, policy="sandwich", sandwich_k=2)
    for step in range(50):
        picked = random.Random(7 * 1_000_003 + step).sample(range(3), 2)
        assert plan.select(step, seed=7) == [FIVE[0], *(FIVE[1 + i] for i in sorted(picked)), FIVE[-1]]


def test_weighted_sandwich_draws_are_sequential_choices_from_the_step_generator():
    # A weighted run resumes identically only if the picks stay a function of (seed, step)
    # drawn this way: one rng.choices per pick among the middle subnets not yet picked.
    w = {"d2-w1.0-b8": 0.25, "d2-w0.5-b4": 1.0, "d1-w1.0-b8": 2.0}
    plan = NestedPlan(FIVE, policy="sandwich", sandwich_k=2, draw_weights=tuple(w.items()))
    middle = list(FIVE[1:-1])
    for step in range(50):
        rng = random.Random(4 * 1_000_003 + step)
        left, picked = list(middle), []
        for _ in range(2):
            (s,) = rng.choices(left, weights=[w[x.name] for x in left])
            left.remove(s)
            picked.append(s)
        assert plan.select(step, seed=4) == [FIVE[0], *(s for s in middle if s in picked), FIVE[-1]]


def test_draw_weights_set_each_middle_subnets_chance_of_one_draw():
    weights = {"d2-w1.0-b8": 0.25, "d2-w0.5-b4": 1.0, "d1-w1.0-b8": 2.0}
    plan = NestedPlan(
        FIVE, policy="sandwich", sandwich_k=1, draw_weights=(("d2-w1.0-b8", 0.25), ("d1-w1.0-b8", 2.0))
    )
    steps = 20000
    counts = middle_pick_counts(plan, steps)
    for name, w in weights.items():
        assert plan.draw_probability(name) == pytest.approx(w / 3.25)
        assert counts[frozenset([name])] / steps == pytest.approx(w / 3.25, abs=0.015)


def test_k_weighted_draws_without_replacement_match_the_sequential_probabilities():
    w = {"d2-w1.0-b8": 0.25, "d2-w0.5-b4": 1.0, "d1-w1.0-b8": 2.0}
    total = sum(w.values())
    plan = NestedPlan(FIVE, policy="sandwich", sandwich_k=2, draw_weights=tuple(w.items()))
    steps = 20000
    counts = middle_pick_counts(plan, steps)
    for a, b in itertools.combinations(w, 2):
        # a first then b, or b first then a
        expected = w[a] / total * w[b] / (total - w[a]) + w[b] / total * w[a] / (total - w[b])
        assert counts[frozenset([a, b])] / steps == pytest.approx(expected, abs=0.015)
    # k as large as the middle: every middle subnet, whatever the weights
    everything = NestedPlan(FIVE, policy="sandwich", sandwich_k=3, draw_weights=tuple(w.items()))
    assert everything.select(0, seed=1) == list(FIVE)


@pytest.mark.parametrize(
    "weights, policy, message",
    [
        ((("d2-w1.0-b32", 2.0),), "sandwich", "every step"),  # the largest always runs
        ((("d1-w0.5-b2", 2.0),), "sandwich", "every step"),  # so does the smallest
        ((("d3-w1.0-b32", 2.0),), "sandwich", "not in the grid"),
        ((("d2-w0.5-b4", 0.0),), "sandwich", "must be finite and > 0"),
        ((("d2-w0.5-b4", float("inf")),), "sandwich", "must be finite and > 0"),
        ((("d2-w0.5-b4", 2.0), ("d2-w0.5-b4", 3.0)), "sandwich", "more than once"),
        ((("d2-w0.5-b4", 2.0),), "all", "only apply to the policies"),
        ((("d2-w1.0-b32", 2.0),), "largest_random", "every step"),
    ],
)
def test_bad_draw_weights_are_refused_with_the_reason(weights, policy, message):
    with pytest.raises(SubnetError, match=message):
        NestedPlan(FIVE, policy=policy, draw_weights=weights)


def test_largest_random_draws_k_from_all_but_the_largest_uniformly():
    plan = NestedPlan(FIVE, policy="largest_random", sandwich_k=2)
    steps = 12000
    seen = {s.name: 0 for s in FIVE[1:]}
    for step in range(steps):
        picks = plan.select(step, seed=11)
        assert picks[0] == FIVE[0] and len(picks) == 3
        assert picks[1:] == [s for s in FIVE[1:] if s in picks[1:]]  # grid order, no repeats
        for s in picks[1:]:
            seen[s.name] += 1
    # each of the 4 others, the smallest included, runs on k/4 of the steps
    for name, n in seen.items():
        assert n / steps == pytest.approx(2 / 4, abs=0.02), name
    assert plan.select(5, seed=11) == plan.select(5, seed=11)
    assert [s.name for s in plan.draw_pool()] == [s.name for s in FIVE[1:]]


def test_largest_random_draw_weights_may_weigh_the_smallest():
    w = {"d1-w0.5-b2": 3.0}
    plan = NestedPlan(FIVE, policy="largest_random", sandwich_k=1, draw_weights=tuple(w.items()))
    assert plan.draw_probability("d1-w0.5-b2") == pytest.approx(3 / 6)
    steps = 12000
    smallest = sum(FIVE[-1] in plan.select(step, seed=2) for step in range(steps))
    assert smallest / steps == pytest.approx(0.5, abs=0.02)


def test_warmup_phase_trains_only_the_warmup_subnet_and_delays_distillation():
    seed = GRID[-1]
    plan = NestedPlan(GRID, policy="all", distill=True, distill_start=2, warmup=(seed,), warmup_batches=5)
    # global batches count from 1: batches 1..5 warm up
    assert [plan.select(step, seed=0) for step in range(1, 6)] == [[seed]] * 5
    assert plan.select(6, seed=0) == list(GRID)
    assert [plan.distills_at(step) for step in (2, 5, 6)] == [False, False, True]
    with pytest.raises(SubnetError, match="warm-up"):
        NestedPlan(GRID, warmup_batches=5)


def test_plan_rejects_weights_for_unknown_subnets_and_bad_policies():
    with pytest.raises(SubnetError, match="d9-w1.0-b32"):
        NestedPlan(GRID, loss_weights=parse_subnet_weights("d9-w1.0-b32=2"))
    with pytest.raises(ValueError, match="policy"):
        NestedPlan(GRID, policy="some")
    with pytest.raises(ValueError, match="NAME=WEIGHT"):
        parse_subnet_weights("d2-w1.0-b32")


def test_masked_kl_matches_brute_force_and_ignores_padding():
    torch.manual_seed(0)
    t = torch.randn(2, 5, 3, 4).log_softmax(-1)
    s = torch.randn(2, 5, 3, 4).log_softmax(-1)
    lens = torch.tensor([5, 2])
    kl = masked_kl(t, s, lens)
    for n in range(2):
        ref = 0.0
        for f in range(int(lens[n])):
            ref += sum(float((t[n, f, r].exp() * (t[n, f, r] - s[n, f, r])).sum()) for r in range(3)) / 3
        assert float(kl[n]) == pytest.approx(ref, rel=1e-5)
    s2 = s.clone()
    s2[1, 2:] = 0.0  # padding frames may hold anything
    torch.testing.assert_close(masked_kl(t, s2, lens), kl)
    assert torch.all(masked_kl(t, t, lens).abs() < 1e-6)


def test_only_the_named_students_are_distilled_and_the_others_learn_from_labels_alone():
    # Unfolding's paper: KL from the deepest path to the seed only.
    seed = GRID[3].name
    plan = NestedPlan(GRID, policy="all", distill=True, student_label_scale=0.5, distill_students=(seed,))
    x, lens, labels = batch()
    model = tiny_model()
    per_subnet = NestedLoss(model)(x, lens, labels, GRID, distill=True, students=[seed], prune_range=3)
    assert [n for n, losses in per_subnet.items() if "kl" in losses] == [seed]
    # the others weigh their labels fully, the student by student_label_scale
    per = {n: {k: v for k, v in losses.items()} for n, losses in per_subnet.items()}
    total = combine_subnet_losses(per, HEADS, plan, GRID[0].name)
    label = lambda ls: sum(HEADS[k] * v for k, v in ls.items() if not k.startswith("kl"))  # noqa: E731
    expected = sum(label(per[n]) for n in per if n != seed)
    s = per[seed]
    expected = expected + 0.5 * label(s) + s["kl"] + HEADS["ctc"] * s["kl_ctc"]
    torch.testing.assert_close(total, expected)


def test_distillation_students_must_be_grid_subnets_other_than_the_teacher():
    for bad in (("d9-w1.0-b32",), (GRID[0].name,)):
        with pytest.raises(SubnetError, match="distillation students"):
            NestedPlan(GRID, distill=True, distill_students=bad)
