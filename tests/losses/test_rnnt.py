"""Tests for the pure-PyTorch RNN-T losses (and equivalence with k2 when it is installed)."""

import itertools
import sys

import pytest
import torch

from allinone.losses import RNNT_API, get_rnnt_backend, rnnt

BLANK = 0


def _seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _paths_logsumexp(move_scores, num_x: int, num_y: int, start=(0, 0), last_move_is_y: bool = False):
    """log-sum over every interleaving of ``num_x`` x-moves (s += 1) and ``num_y`` y-moves (t += 1).

    ``move_scores(kind, s, t)`` scores a move from node (s, t); ``last_move_is_y`` keeps only
    paths ending in a y-move.
    """
    moves = num_x + num_y
    totals = []
    for x_moves in itertools.combinations(range(moves), num_x):
        if last_move_is_y and moves - 1 in x_moves:
            continue
        s, t = start
        score = torch.zeros((), dtype=torch.float64)
        for i in range(moves):
            if i in x_moves:
                score = score + move_scores("x", s, t)
                s += 1
            else:
                score = score + move_scores("y", s, t)
                t += 1
        totals.append(score)
    return torch.logsumexp(torch.stack(totals), dim=0)


def _brute_force_rnnt_loss(logits: torch.Tensor, symbols: torch.Tensor, boundary: torch.Tensor):
    """-log p(labels) by explicit enumeration of all regular RNN-T alignments.

    Args:
        logits: (B, T, S + 1, C); symbols: (B, S); boundary: (B, 4) with zero begins.
    Returns:
        (B,) float64.
    """
    losses = []
    for b in range(logits.shape[0]):
        log_probs = logits[b].double().log_softmax(dim=-1)
        labels = symbols[b, : boundary[b, 2]].tolist()

        def score(kind, s, t, log_probs=log_probs, labels=labels):
            return log_probs[t, s, labels[s]] if kind == "x" else log_probs[t, s, BLANK]

        num_frames = int(boundary[b, 3])
        losses.append(-_paths_logsumexp(score, len(labels), num_frames, last_move_is_y=True))
    return torch.stack(losses)


# Three utterances of different lengths padded to T=4, S=3, one of them with no labels.
BOUNDARY = torch.tensor([[0, 0, 3, 4], [0, 0, 2, 3], [0, 0, 0, 2]])


def _random_joiner_inputs(seed: int, B=3, T=4, S=3, C=4, dtype=torch.float64):
    g = _seeded(seed)
    logits = torch.randn(B, T, S + 1, C, generator=g, dtype=dtype)
    symbols = torch.randint(1, C, (B, S), generator=g)
    return logits, symbols


def _random_simple_inputs(seed: int, B=3, T=4, S=3, C=4, dtype=torch.float64):
    g = _seeded(seed)
    lm = torch.randn(B, S + 1, C, generator=g, dtype=dtype)
    am = torch.randn(B, T, C, generator=g, dtype=dtype)
    symbols = torch.randint(1, C, (B, S), generator=g)
    return lm, am, symbols


def _full_ranges(B: int, T: int, S: int) -> torch.Tensor:
    return torch.arange(S + 1).expand(B, T, S + 1).contiguous()


@pytest.mark.parametrize("boundary", [None, BOUNDARY])
def test_full_loss_matches_enumeration(boundary):
    logits, symbols = _random_joiner_inputs(0)
    full_boundary = boundary if boundary is not None else torch.tensor([[0, 0, 3, 4]] * 3)
    expected = _brute_force_rnnt_loss(logits, symbols, full_boundary)
    got = rnnt.rnnt_loss(logits, symbols, BLANK, boundary, reduction="none")
    torch.testing.assert_close(got, expected)


def test_mutual_information_matches_enumeration_with_offset_begin():
    g = _seeded(1)
    B, S, T = 2, 3, 4
    px = torch.randn(B, S, T + 1, generator=g, dtype=torch.float64)
    py = torch.randn(B, S + 1, T, generator=g, dtype=torch.float64)
    boundary = torch.tensor([[1, 1, 3, 4], [0, 2, 2, 3]])
    got = rnnt.mutual_information_recursion(px, py, boundary)
    for b, (s0, t0, s1, t1) in enumerate(boundary.tolist()):

        def score(kind, s, t, b=b):
            return px[b, s, t] if kind == "x" else py[b, s, t]

        expected = _paths_logsumexp(score, s1 - s0, t1 - t0, start=(s0, t0))
        torch.testing.assert_close(got[b], expected)


@pytest.mark.parametrize("boundary", [None, BOUNDARY])
def test_simple_loss_equals_full_loss_of_trivial_joiner(boundary):
    lm, am, symbols = _random_simple_inputs(2)
    simple = rnnt.rnnt_loss_simple(lm, am, symbols, BLANK, boundary, reduction="none")
    full = rnnt.rnnt_loss(am[:, :, None] + lm[:, None], symbols, BLANK, boundary, reduction="none")
    torch.testing.assert_close(simple, full)


def test_smoothed_logprobs_match_reference_interpolation():
    lm, am, symbols = _random_simple_inputs(3)
    lm_scale, am_scale = 0.25, 0.1
    px, py = rnnt.get_rnnt_logprobs_smoothed(lm, am, symbols, BLANK, lm_scale, am_scale, BOUNDARY)

    B, S1, C = lm.shape
    S, T = S1 - 1, am.shape[1]
    joint = (am[:, None] + lm[:, :, None]).log_softmax(-1)  # (B, S + 1, T, C)
    lm_only = lm.log_softmax(-1)[:, :, None].expand(B, S1, T, C)
    unigram = lm.softmax(-1).mean(dim=(0, 1))
    am_only = (am + unigram.log()).log_softmax(-1)[:, None].expand(B, S1, T, C)
    mixed = (1 - lm_scale - am_scale) * joint + lm_scale * lm_only + am_scale * am_only
    idx = symbols[:, :, None, None].expand(B, S, T, 1)
    expected_px = mixed[:, :S].gather(3, idx).squeeze(3)
    torch.testing.assert_close(py, mixed[..., BLANK])
    for b, t_end in enumerate(BOUNDARY[:, 3].tolist()):
        torch.testing.assert_close(px[b, :, :t_end], expected_px[b, :, :t_end])
        assert torch.isneginf(px[b, :, t_end]).all()


def test_smoothed_with_zero_scales_equals_simple():
    lm, am, symbols = _random_simple_inputs(4)
    smoothed = rnnt.rnnt_loss_smoothed(lm, am, symbols, BLANK, 0.0, 0.0, BOUNDARY, reduction="none")
    simple = rnnt.rnnt_loss_simple(lm, am, symbols, BLANK, BOUNDARY, reduction="none")
    torch.testing.assert_close(smoothed, simple)
    default = rnnt.rnnt_loss_smoothed(lm, am, symbols, BLANK, boundary=BOUNDARY, reduction="none")
    assert not torch.allclose(default, simple)  # am_only_scale=0.1 by default


def test_smoothed_loss_with_zero_scale_tolerates_masked_logits():
    # A -inf acoustic logit must not turn into 0 * -inf = nan through a zero scale.
    lm, am, symbols = _random_simple_inputs(19)
    am = am.clone()
    am[0, 1, symbols[0, 0]] = float("-inf")
    am.requires_grad_()
    loss = rnnt.rnnt_loss_smoothed(lm, am, symbols, BLANK, 0.25, 0.0, BOUNDARY, reduction="none")
    assert torch.isfinite(loss).all()
    (grad,) = torch.autograd.grad(loss.sum(), am)
    assert not torch.isnan(grad).any()


@pytest.mark.parametrize("boundary", [None, BOUNDARY])
def test_pruned_loss_with_full_ranges_equals_full_loss(boundary):
    logits, symbols = _random_joiner_inputs(5)
    B, T, S1, _ = logits.shape
    ranges = _full_ranges(B, T, S1 - 1)
    pruned = rnnt.rnnt_loss_pruned(logits, symbols, ranges, BLANK, boundary, reduction="none")
    full = rnnt.rnnt_loss(logits, symbols, BLANK, boundary, reduction="none")
    torch.testing.assert_close(pruned, full)


def test_pruned_loss_with_shifted_window_matches_enumeration():
    # Windows [0, 1] then [1, 2] allow exactly the alignments that stay inside them.
    logits, symbols = _random_joiner_inputs(6, B=1, T=3, S=2)
    ranges = torch.tensor([[[0, 1], [1, 2], [1, 2]]])
    pruned_logits = logits[0, torch.arange(3)[:, None], ranges[0]][None]
    got = rnnt.rnnt_loss_pruned(pruned_logits, symbols, ranges, BLANK, reduction="none")
    log_probs = logits[0].log_softmax(-1)
    window = ranges[0]

    def score(kind, s, t):
        if not bool((window[t] == s).any()):
            return torch.tensor(float("-inf"), dtype=torch.float64)
        return log_probs[t, s, symbols[0, s]] if kind == "x" else log_probs[t, s, BLANK]

    expected = -_paths_logsumexp(score, 2, 3, last_move_is_y=True)
    torch.testing.assert_close(got[0], expected)


def test_return_grad_equals_autograd_and_is_an_occupation():
    lm, am, symbols = _random_simple_inputs(7)
    px, py = rnnt.get_rnnt_logprobs(lm, am, symbols, BLANK, BOUNDARY)
    px = px.detach().requires_grad_()
    py = py.detach().requires_grad_()
    total, (px_grad, py_grad) = rnnt.mutual_information_recursion(px, py, BOUNDARY, return_grad=True)
    auto_px, auto_py = torch.autograd.grad(total.sum(), (px, py))
    torch.testing.assert_close(px_grad, auto_px)
    torch.testing.assert_close(py_grad, auto_py)

    for b, (_, _, s_end, t_end) in enumerate(BOUNDARY.tolist()):
        # Every alignment emits exactly one blank per real frame and s_end symbols in all.
        torch.testing.assert_close(py_grad[b].sum(0)[:t_end], torch.ones(t_end, dtype=torch.float64))
        assert py_grad[b, :, t_end:].abs().sum() == 0
        torch.testing.assert_close(px_grad[b].sum(), torch.tensor(float(s_end), dtype=torch.float64))
        assert px_grad[b, s_end:].abs().sum() == 0


def test_simple_loss_return_grad_matches_recursion_grads():
    lm, am, symbols = _random_simple_inputs(8)
    loss, (px_grad, py_grad) = rnnt.rnnt_loss_simple(lm, am, symbols, BLANK, BOUNDARY, "none", True)
    px, py = rnnt.get_rnnt_logprobs(lm, am, symbols, BLANK, BOUNDARY)
    total, (px_grad2, py_grad2) = rnnt.mutual_information_recursion(px, py, BOUNDARY, return_grad=True)
    torch.testing.assert_close(loss, -total)
    torch.testing.assert_close(px_grad, px_grad2)
    torch.testing.assert_close(py_grad, py_grad2)


def _check_ranges(ranges: torch.Tensor, boundary: torch.Tensor, s_range: int) -> None:
    starts = ranges[:, :, 0]
    torch.testing.assert_close(ranges - starts[:, :, None], torch.arange(s_range).expand_as(ranges))
    steps = starts[:, 1:] - starts[:, :-1]
    assert (steps >= 0).all() and (steps <= s_range - 1).all()
    assert (starts[:, 0] == 0).all()
    for b, (_, _, s_end, t_end) in enumerate(boundary.tolist()):
        assert 0 <= int(ranges[b].min()) and int(ranges[b, :t_end].max()) <= s_end
        last = ranges[b, t_end - 1]
        assert int(last[0]) <= s_end <= int(last[-1])  # the final blank is kept


def test_prune_ranges_and_pruned_loss_pipeline():
    g = _seeded(9)
    B, T, S, C, dim, s_range = 3, 10, 5, 6, 8, 3
    boundary = torch.tensor([[0, 0, 5, 10], [0, 0, 3, 7], [0, 0, 5, 6]])
    lm = torch.randn(B, S + 1, C, generator=g, dtype=torch.float64)
    am = torch.randn(B, T, C, generator=g, dtype=torch.float64)
    symbols = torch.randint(1, C, (B, S), generator=g)
    _, (px_grad, py_grad) = rnnt.rnnt_loss_smoothed(
        lm, am, symbols, BLANK, 0.25, 0.1, boundary, reduction="none", return_grad=True
    )
    ranges = rnnt.get_rnnt_prune_ranges(px_grad, py_grad, boundary, s_range)
    assert ranges.shape == (B, T, s_range) and ranges.dtype == torch.int64
    _check_ranges(ranges, boundary, s_range)

    enc = torch.randn(B, T, dim, generator=g, dtype=torch.float64)
    dec = torch.randn(B, S + 1, dim, generator=g, dtype=torch.float64)
    weight = torch.randn(dim, C, generator=g, dtype=torch.float64)

    def joiner(a, b):
        return torch.tanh(a + b) @ weight

    am_pruned, lm_pruned = rnnt.do_rnnt_pruning(enc, dec, ranges)
    assert am_pruned.shape == lm_pruned.shape == (B, T, s_range, dim)
    torch.testing.assert_close(lm_pruned[1, 4, 2], dec[1, ranges[1, 4, 2]])
    torch.testing.assert_close(am_pruned[2, 5, 1], enc[2, 5])

    pruned = rnnt.rnnt_loss_pruned(joiner(am_pruned, lm_pruned), symbols, ranges, BLANK, boundary, "none")
    full = rnnt.rnnt_loss(joiner(enc[:, :, None], dec[:, None]), symbols, BLANK, boundary, "none")
    assert torch.isfinite(pruned).all()
    assert (pruned >= full - 1e-9).all()
    assert (pruned > full + 1e-3).any()  # a random model spreads mass outside the windows


def test_pruned_loss_is_close_to_full_loss_for_a_peaked_model():
    g = _seeded(10)
    B, T, S, C, s_range = 2, 8, 4, 6, 3
    symbols = torch.randint(1, C, (B, S), generator=g)
    boundary = torch.tensor([[0, 0, 4, 8], [0, 0, 3, 6]])
    logits = 0.1 * torch.randn(B, T, S + 1, C, generator=g, dtype=torch.float64)
    # Reward one alignment strongly: symbol s is emitted on frame 2 * s, blanks elsewhere.
    for b, (_, _, s_end, _) in enumerate(boundary.tolist()):
        for t in range(T):
            for s in range(S + 1):
                emit = s < s_end and t == 2 * s
                logits[b, t, s, symbols[b, s] if emit else BLANK] += 12.0

    px, py = rnnt.get_rnnt_logprobs_joint(logits, symbols, BLANK, boundary)
    _, (px_grad, py_grad) = rnnt.mutual_information_recursion(px, py, boundary, return_grad=True)
    ranges = rnnt.get_rnnt_prune_ranges(px_grad, py_grad, boundary, s_range)
    _check_ranges(ranges, boundary, s_range)
    pruned_logits = logits[torch.arange(B)[:, None, None], torch.arange(T)[None, :, None], ranges]
    pruned = rnnt.rnnt_loss_pruned(pruned_logits, symbols, ranges, BLANK, boundary, "none")
    full = rnnt.rnnt_loss(logits, symbols, BLANK, boundary, "none")
    assert (pruned >= full - 1e-9).all()
    torch.testing.assert_close(pruned, full, rtol=0, atol=1e-3)


def test_prune_ranges_hand_computed():
    # Hand-made occupations (S=5, T=5, s_range=3), worked through k2's rule by hand.
    B, S, T = 4, 5, 5
    px_grad = torch.zeros(B, S, T + 1)
    py_grad = torch.zeros(B, S + 1, T)
    py_grad[:, 0, 0] = 1.0
    # Utterance 0, frame 2: blank mass 0.4/0.2/0.4 at positions 2/3/4. Window [2, 4] holds
    # the most blank mass, but 0.7 of it entered position 2 on this frame, so the winner
    # is [3, 5]; frame 1 is then raised to 1 so that no position is skipped.
    py_grad[0, 1, 1] = 1.0
    py_grad[0, 2:5, 2] = torch.tensor([0.4, 0.2, 0.4])
    px_grad[0, :3, 2] = torch.tensor([0.5, 0.7, 0.0])
    py_grad[0, 4:6, 3] = 0.5
    # Utterance 1: mass already at positions 3..5 on frame 1, beyond reach of a window
    # that started at 0 on frame 0, so the starts are capped at (s_range - 1) * t.
    py_grad[1, 3:6, 1:4] = 1.0 / 3.0
    # Utterance 2 is padded (3 frames, 3 labels): from its last real frame on, the window
    # is pinned to end at s_end = 3, whatever the occupation says there.
    py_grad[2, 1, 1] = 1.0
    py_grad[2, 3:6, 2:] = 1.0 / 3.0
    # Utterance 3: the best window moves back on frame 2; starts must not decrease, so
    # frame 1 is lowered to frame 2's start.
    py_grad[3, 2:5, 1] = 1.0 / 3.0
    py_grad[3, 1:4, 2] = 1.0 / 3.0
    py_grad[3, 3:6, 3] = 1.0 / 3.0
    boundary = torch.tensor([[0, 0, 5, 5], [0, 0, 5, 5], [0, 0, 3, 3], [0, 0, 5, 5]])
    ranges = rnnt.get_rnnt_prune_ranges(px_grad, py_grad, boundary, s_range=3)
    expected_starts = torch.tensor([[0, 1, 3, 3, 3], [0, 2, 3, 3, 3], [0, 0, 1, 1, 1], [0, 1, 1, 3, 3]])
    assert torch.equal(ranges, expected_starts[:, :, None] + torch.arange(3))


def test_prune_ranges_widen_to_all_symbols_when_s_range_exceeds_s():
    lm, am, symbols = _random_simple_inputs(11, B=2, T=5, S=2)
    boundary = torch.tensor([[0, 0, 2, 5], [0, 0, 1, 3]])
    _, (px_grad, py_grad) = rnnt.rnnt_loss_simple(lm, am, symbols, BLANK, boundary, "none", True)
    ranges = rnnt.get_rnnt_prune_ranges(px_grad, py_grad, boundary, s_range=5)
    torch.testing.assert_close(ranges, _full_ranges(2, 5, 2))
    with pytest.raises(ValueError, match="s_range"):
        rnnt.get_rnnt_prune_ranges(px_grad, py_grad, boundary, s_range=1)


def test_gradcheck_full_loss():
    logits, symbols = _random_joiner_inputs(12, B=2, T=3, S=2, C=3)
    boundary = torch.tensor([[0, 0, 2, 3], [0, 0, 1, 2]])
    logits.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda x: rnnt.rnnt_loss(x, symbols, BLANK, boundary, reduction="sum"), (logits,)
    )


def test_gradcheck_smoothed_loss():
    lm, am, symbols = _random_simple_inputs(13, B=2, T=3, S=2, C=3)
    boundary = torch.tensor([[0, 0, 2, 3], [0, 0, 1, 2]])
    lm.requires_grad_()
    am.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda x, y: rnnt.rnnt_loss_smoothed(x, y, symbols, BLANK, 0.2, 0.1, boundary, reduction="sum"),
        (lm, am),
    )


def test_gradcheck_pruned_loss():
    g = _seeded(14)
    B, T, S, C, s_range = 2, 4, 3, 3, 2
    symbols = torch.randint(1, C, (B, S), generator=g)
    ranges = torch.tensor([[0, 1, 2, 2], [0, 0, 1, 1]])[:, :, None] + torch.arange(s_range)
    boundary = torch.tensor([[0, 0, 3, 4], [0, 0, 2, 4]])
    logits = torch.randn(B, T, s_range, C, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.isfinite(rnnt.rnnt_loss_pruned(logits, symbols, ranges, BLANK, boundary, "none")).all()
    assert torch.autograd.gradcheck(
        lambda x: rnnt.rnnt_loss_pruned(x, symbols, ranges, BLANK, boundary, reduction="mean"), (logits,)
    )


def test_reductions_are_consistent():
    logits, symbols = _random_joiner_inputs(15)
    lm, am, _ = _random_simple_inputs(15)
    losses = {
        "full": lambda r: rnnt.rnnt_loss(logits, symbols, BLANK, BOUNDARY, reduction=r),
        "simple": lambda r: rnnt.rnnt_loss_simple(lm, am, symbols, BLANK, BOUNDARY, reduction=r),
        "smoothed": lambda r: rnnt.rnnt_loss_smoothed(lm, am, symbols, BLANK, boundary=BOUNDARY, reduction=r),
    }
    for name, loss in losses.items():
        per_utt = loss("none")
        assert per_utt.shape == (3,), name
        assert (per_utt > 0).all(), name
        torch.testing.assert_close(loss("sum"), per_utt.sum())
        torch.testing.assert_close(loss("mean"), per_utt.mean())
    with pytest.raises(ValueError, match="reduction"):
        rnnt.rnnt_loss(logits, symbols, BLANK, BOUNDARY, reduction="batchmean")


def test_half_precision_inputs_use_float32_recursion():
    lm, am, symbols = _random_simple_inputs(16, dtype=torch.float32)
    lm16, am16 = lm.half(), am.half()
    loss16, (px_grad, _) = rnnt.rnnt_loss_simple(lm16, am16, symbols, BLANK, BOUNDARY, "none", True)
    loss32 = rnnt.rnnt_loss_simple(lm16.float(), am16.float(), symbols, BLANK, BOUNDARY, "none")
    assert loss16.dtype == px_grad.dtype == torch.float32
    torch.testing.assert_close(loss16, loss32)


def test_unreachable_end_gives_infinite_loss_and_zero_grads():
    # Two labels but a single frame with an empty window for position 2: no path survives.
    logits, symbols = _random_joiner_inputs(17, B=1, T=1, S=2, C=3)
    ranges = torch.tensor([[[0, 1]]])
    px, py = rnnt.get_rnnt_logprobs_pruned(logits[:, :, :2], symbols, ranges, BLANK)
    total, (px_grad, py_grad) = rnnt.mutual_information_recursion(px, py, return_grad=True)
    assert torch.isneginf(total).all()
    assert px_grad.abs().sum() == 0 and py_grad.abs().sum() == 0


def test_backend_selection(monkeypatch):
    torch_backend = get_rnnt_backend("torch")
    assert torch_backend is rnnt
    for name in RNNT_API:
        assert callable(getattr(torch_backend, name)), name
    with pytest.raises(ValueError, match="unknown"):
        get_rnnt_backend("warp")

    monkeypatch.setitem(sys.modules, "k2", None)  # makes `import k2` fail
    from allinone.losses import rnnt_k2

    for name in RNNT_API:
        assert callable(getattr(rnnt_k2, name)), name
    with pytest.raises(ImportError, match="k2"):
        get_rnnt_backend("k2")


def test_matches_k2():
    pytest.importorskip("k2")
    k2_backend = get_rnnt_backend("k2")
    g = _seeded(18)
    B, T, S, C, s_range = 3, 12, 5, 7, 3
    boundary = torch.tensor([[0, 0, 5, 12], [0, 0, 3, 9], [0, 0, 4, 6]])
    lm = torch.randn(B, S + 1, C, generator=g)
    am = torch.randn(B, T, C, generator=g)
    symbols = torch.randint(1, C, (B, S), generator=g)

    for fn, kwargs in [
        ("get_rnnt_logprobs", {}),
        ("get_rnnt_logprobs_smoothed", {"lm_only_scale": 0.25, "am_only_scale": 0.1}),
    ]:
        ours = getattr(rnnt, fn)(
            lm=lm, am=am, symbols=symbols, termination_symbol=BLANK, boundary=boundary, **kwargs
        )
        theirs = getattr(k2_backend, fn)(
            lm=lm, am=am, symbols=symbols, termination_symbol=BLANK, boundary=boundary, **kwargs
        )
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)

    kwargs = dict(
        lm=lm,
        am=am,
        symbols=symbols,
        termination_symbol=BLANK,
        lm_only_scale=0.25,
        am_only_scale=0.1,
        boundary=boundary,
        reduction="none",
        return_grad=True,
    )
    ours_loss, ours_grads = rnnt.rnnt_loss_smoothed(**kwargs)
    k2_loss, k2_grads = k2_backend.rnnt_loss_smoothed(**kwargs)
    torch.testing.assert_close(ours_loss, k2_loss, rtol=1e-4, atol=1e-4)
    for a, b in zip(ours_grads, k2_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)

    # Same occupation in, same ranges out.
    ranges = rnnt.get_rnnt_prune_ranges(*k2_grads, boundary, s_range)
    assert torch.equal(ranges, k2_backend.get_rnnt_prune_ranges(*k2_grads, boundary, s_range))

    logits = torch.randn(B, T, S + 1, C, generator=g)
    torch.testing.assert_close(
        rnnt.rnnt_loss(logits, symbols, BLANK, boundary, "none"),
        k2_backend.rnnt_loss(logits, symbols, BLANK, boundary, "none"),
        rtol=1e-4,
        atol=1e-4,
    )
    pruned_logits = logits[torch.arange(B)[:, None, None], torch.arange(T)[None, :, None], ranges]
    torch.testing.assert_close(
        rnnt.rnnt_loss_pruned(pruned_logits, symbols, ranges, BLANK, boundary, "none"),
        k2_backend.rnnt_loss_pruned(pruned_logits, symbols, ranges, BLANK, boundary, "none"),
        rtol=1e-4,
        atol=1e-4,
    )
