import math

import pytest
import torch
import torch.nn.functional as F

import allinone.quant.gq as gq
from allinone.quant.annealing import GQSchedule
from allinone.quant.gq import (
    compand,
    expand,
    gq_codes,
    gq_fake_quant,
    init_centroids,
    sorted_centroids,
)

MUS = [1.0, 10.0, 87.6, 255.0, 1e4]


class TensorGQ(torch.nn.Module):
    """One tensor's GQ at one bit-width, assembled from the package's functions.

    The layers hold ``GQQuantizer`` (every bit-width at once); these tests exercise the
    functions underneath it on a single learnable centroid vector.
    """

    def __init__(self, bits: int, mu: float = 255.0):
        super().__init__()
        compand(torch.zeros(1), mu)  # rejects a bad mu
        self.bits, self.mu = bits, float(mu)
        self.raw_centroids = torch.nn.Parameter(init_centroids(torch.empty(0), bits, "linspace", mu))

    @property
    def num_levels(self) -> int:
        return 2**self.bits

    @torch.no_grad()
    def init_from_weight(self, weight, method="quantile"):
        self.raw_centroids.copy_(init_centroids(weight, self.bits, method, self.mu))

    def centroids(self):
        return sorted_centroids(self.raw_centroids)

    def forward(self, weight, alpha, hard=False, hard_grad="ste"):
        return gq_fake_quant(weight, self.centroids(), alpha, hard, self.mu, hard_grad)

    def codes(self, weight):
        return gq_codes(weight, self.centroids(), self.mu)


def reference_fake_quant(w, c, alpha, hard, mu):
    """GQ written out with plain autograd ops on the full numel x K matrix (no zeros in ``w``)."""
    s = w.detach().abs().max().clamp(min=1e-8)
    x = w / s
    u = torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)
    d = u.reshape(-1, 1) - c.reshape(1, -1)
    u_soft = (torch.softmax(-alpha * d.square(), dim=1) * c).sum(dim=1)
    value = u_soft
    if hard:
        u_hard = c[d.abs().argmin(dim=1)]
        value = u_soft + (u_hard - u_soft).detach()
    out = torch.sign(value) * torch.expm1(value.abs() * math.log1p(mu)) / mu * s
    return out.view_as(w)


def brute_force_hard(w, c, mu):
    """expand(nearest centroid) * s, the nearest found over the full distance matrix."""
    s = w.abs().max().clamp(min=1e-8)
    u = compand(w / s, mu)
    idx = (u.reshape(-1, 1) - c.reshape(1, -1)).abs().argmin(dim=1)
    return (expand(c, mu) * s)[idx].view_as(w), expand(c[idx], mu).view_as(w) * s


def perturbed_quantizer(bits, w, seed, mu=255.0):
    """A quantizer initialised from ``w`` and then moved off its quantiles."""
    q = TensorGQ(bits, mu)
    q.init_from_weight(w)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        q.raw_centroids.add_(0.02 * torch.randn(q.num_levels, generator=g))
    return q


# 1. companding


@pytest.mark.parametrize("mu", MUS)
def test_compand_and_expand_are_inverse_monotone_and_fix_the_endpoints(mu):
    torch.manual_seed(0)
    x = torch.cat([torch.rand(2000, dtype=torch.float64) * 2 - 1, torch.tensor([-1.0, 0.0, 1.0]).double()])
    torch.testing.assert_close(expand(compand(x, mu), mu), x, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(compand(expand(x, mu), mu), x, rtol=1e-12, atol=1e-12)
    xs = x.sort().values
    assert (compand(xs, mu).diff() > 0).all()
    assert (expand(xs, mu).diff() > 0).all()
    for dtype in (torch.float32, torch.float64):
        ends = torch.tensor([-1.0, 1.0], dtype=dtype)
        torch.testing.assert_close(compand(ends, mu), ends)
        torch.testing.assert_close(expand(ends, mu), ends)
    # The formula itself, and compression: small magnitudes are pushed outwards.
    ref = torch.sign(x) * torch.log(1 + mu * x.abs()) / math.log(1 + mu)
    torch.testing.assert_close(compand(x, mu), ref)
    inner = x[(x.abs() > 0) & (x.abs() < 1)]
    assert (compand(inner, mu).abs() > inner.abs()).all()


@pytest.mark.parametrize("mu", [10.0, 255.0])
def test_compand_and_expand_gradients_match_finite_differences_including_zero(mu):
    x = torch.tensor([-1.0, -0.3, -1e-3, 0.0, 2e-3, 0.4, 1.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: compand(t, mu), (x,))
    assert torch.autograd.gradcheck(lambda t: expand(t, mu), (x,))
    # Autograd through sign(x) * f(|x|) would give 0 at x = 0; the true slope is mu / ln(1 + mu).
    (g,) = torch.autograd.grad(compand(x, mu).sum(), x)
    assert float(g[3]) == pytest.approx(mu / math.log1p(mu))


# 2. hard mode


@pytest.mark.parametrize("bits", [1, 2, 3, 4])
@pytest.mark.parametrize("mu", [10.0, 255.0])
def test_hard_output_is_the_nearest_centroid_and_has_at_most_2b_values(bits, mu):
    torch.manual_seed(bits)
    w = torch.randn(37, 23) * 0.1
    w[0, :5] = 0.0
    q = perturbed_quantizer(bits, w, seed=bits, mu=mu)
    out = q(w, alpha=20.0, hard=True)
    assert out.shape == w.shape
    assert out.unique().numel() <= 2**bits
    gathered, elementwise = brute_force_hard(w, q.centroids().detach(), mu)
    assert torch.equal(out, gathered)
    torch.testing.assert_close(out, elementwise)
    # The assignment does not depend on alpha.
    assert torch.equal(q(w, alpha=1e6, hard=True), out)


# 3. annealing


@pytest.mark.parametrize("bits", [2, 3])
def test_soft_output_converges_to_hard_as_alpha_grows(bits):
    torch.manual_seed(3)
    w = torch.randn(3000)
    c = init_centroids(w, bits)
    hard = gq_fake_quant(w, c, 1.0, True)
    # Weights next to a decision boundary converge arbitrarily slowly; measure the others.
    s = w.abs().max()
    u = compand(w / s)
    midpoints = (c[1:] + c[:-1]) / 2
    clear = (u[:, None] - midpoints[None, :]).abs().min(dim=1).values > 0.01
    assert clear.float().mean() > 0.8
    mean_gap, max_gap = [], []
    for alpha in [1.0, 10.0, 1e2, 1e3, 1e4, 1e5]:
        diff = (gq_fake_quant(w, c, alpha, False) - hard).abs()
        mean_gap.append(float(diff.mean()))
        max_gap.append(float(diff[clear].max()))
    assert all(a > b for a, b in zip(mean_gap, mean_gap[1:])), mean_gap
    assert all(a >= b for a, b in zip(max_gap, max_gap[1:])), max_gap
    assert max_gap[0] > 0.05 * float(s)  # alpha = 1 is really soft
    assert max_gap[-1] < 1e-5 * float(s)
    assert mean_gap[-1] < 1e-3 * mean_gap[0]


# 4. learning


# Hard mode takes a smaller step: its soft-path gradient does not match the hard loss
# near decision boundaries, so large steps oscillate.
@pytest.mark.parametrize("hard,alpha,lr", [(False, 50.0, 0.02), (True, 1e3, 0.005)])
def test_centroids_move_and_reduce_the_quantization_error(hard, alpha, lr):
    torch.manual_seed(4)
    w = torch.randn(64, 32) * 0.05
    q = TensorGQ(3)
    q.init_from_weight(w, method="linspace")  # far from the weights' distribution
    start = q.centroids().detach().clone()
    opt = torch.optim.Adam(q.parameters(), lr=lr)
    losses = []
    for _ in range(40):
        loss = F.mse_loss(q(w, alpha, hard), w)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    final = F.mse_loss(q(w, alpha, hard), w).item()
    assert final < 0.6 * losses[0], (losses[0], final)
    assert (q.centroids().detach() - start).abs().max() > 0.05


def test_weights_get_gradients_in_hard_mode_through_the_soft_path():
    torch.manual_seed(5)
    w = (torch.randn(50) * 0.1).requires_grad_()
    q = TensorGQ(2)
    q.init_from_weight(w)
    upstream = torch.randn(50)
    (q(w, 10.0, hard=True, hard_grad="soft") * upstream).sum().backward()
    hard_grad = w.grad.clone()
    w.grad = None
    # Same soft path, evaluated at the hard value: nonzero and different from plain STE (= upstream).
    assert hard_grad.abs().sum() > 0
    assert not torch.allclose(hard_grad, upstream)
    assert q.raw_centroids.grad.abs().sum() > 0


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_straight_through_hard_phase_trains_every_weight_however_sharp_alpha_is(bits):
    torch.manual_seed(3)
    mu = 255.0
    w = (torch.randn(3000, dtype=torch.float64) * 0.1).requires_grad_()
    q = TensorGQ(bits, mu)
    q.init_from_weight(w)
    q.raw_centroids.data = q.raw_centroids.data.double()
    upstream = torch.randn(3000, dtype=torch.float64)
    out = q(w, 1e5, hard=True, hard_grad="ste")
    indices, _ = gq_codes(w.detach(), q.centroids().detach(), mu)
    s = w.detach().abs().max()
    levels = expand(q.centroids().detach(), mu) * s
    assert torch.equal(out.detach(), levels[indices.long()])  # exactly the 2^b codebook levels
    assert torch.unique(out.detach()).numel() <= 2**bits
    (out * upstream).sum().backward()
    # Brute force: d out_i / d w_i = expand'(c_nearest) * compand'(w_i / s), s = max|w| (held constant).
    c = q.centroids().detach()[indices.long()]
    log_mu1 = math.log1p(mu)
    d_expand = log_mu1 / mu * torch.exp(c.abs() * log_mu1)
    d_compand = mu / log_mu1 / (1 + mu * (w.detach() / s).abs())
    torch.testing.assert_close(w.grad, upstream * d_expand * d_compand)
    assert (w.grad != 0).all()
    # Each centroid takes the gradient of the weights assigned to it (times d expand * s).
    expected_c = torch.zeros(2**bits, dtype=torch.float64)
    expected_c.index_add_(0, indices.long(), upstream * d_expand * s)
    torch.testing.assert_close(q.raw_centroids.grad, expected_c)


def test_the_soft_gradient_of_the_hard_phase_starves_weights_at_large_alpha():
    # Why the hard phase goes straight through: at alpha 1e5 the soft path leaves most 4-bit
    # weights (those away from a decision boundary) with almost no gradient.
    torch.manual_seed(4)
    w = (torch.randn(3000) * 0.1).requires_grad_()
    q = TensorGQ(4)
    q.init_from_weight(w)
    (q(w, 1e5, hard=True, hard_grad="soft") * torch.ones(3000)).sum().backward()
    soft = w.grad.abs().clone()
    w.grad = None
    (q(w, 1e5, hard=True, hard_grad="ste") * torch.ones(3000)).sum().backward()
    assert (soft < 1e-3 * w.grad.abs()).float().mean() > 0.5


# 5. numerical safety


def _weights(kind):
    torch.manual_seed(6)
    if kind == "random":
        return torch.randn(20, 9) * 0.1
    if kind == "with_zeros":
        w = torch.randn(20, 9) * 0.1
        w[::3] = 0.0
        return w
    if kind == "constant":
        return torch.full((20, 9), 0.37)
    return torch.zeros(20, 9)


@pytest.mark.parametrize("kind", ["random", "with_zeros", "constant", "all_zero"])
@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("bits", [1, 4, 8])
def test_gradients_are_finite_at_every_alpha(kind, hard, bits):
    for alpha in [0.0, 0.1, 1.0, 10.0, 1e3, 1e5, 1e7]:
        w = _weights(kind).requires_grad_()
        q = TensorGQ(bits)
        q.init_from_weight(w)
        out = q(w, alpha, hard)
        assert torch.isfinite(out).all()
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        assert torch.isfinite(w.grad).all(), (kind, hard, alpha)
        assert torch.isfinite(q.raw_centroids.grad).all(), (kind, hard, alpha)
        if kind == "random" and 0 < alpha <= 1e3:
            assert w.grad.abs().sum() > 0 and q.raw_centroids.grad.abs().sum() > 0


def test_exactly_zero_weights_receive_gradient():
    w = torch.tensor([-0.5, 0.0, 0.0, 0.2, 1.0], requires_grad=True)
    c = torch.tensor([-0.6, 0.0, 0.6], requires_grad=True)  # a centroid exactly at zero
    for hard in (False, True):
        w.grad = None
        gq_fake_quant(w, c, 1.0, hard).sum().backward()
        assert (w.grad[1:3] != 0).all(), hard


# 6. deployment codes


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5, 6, 8])
def test_codes_round_trip_exactly(bits):
    torch.manual_seed(bits)
    w = torch.randn(8, 5, 3) * 0.2
    w[1] = 0.0
    q = perturbed_quantizer(bits, w, seed=100 + bits)
    indices, codebook = q.codes(w)
    assert indices.dtype == torch.uint8 and indices.shape == w.shape
    assert int(indices.max()) < 2**bits
    assert codebook.dtype == torch.float32 and codebook.shape == (2**bits,)
    assert torch.equal(codebook[indices.long()], q(w, alpha=3.0, hard=True))
    torch.testing.assert_close(codebook, expand(q.centroids().detach()) * w.abs().max())
    # Sorted centroids give sorted levels: code order is value order.
    assert (codebook.diff() >= 0).all()


def test_codes_of_a_large_8bit_weight_match_the_forward():
    torch.manual_seed(7)
    w = torch.randn(576, 144) * 0.05
    indices, codebook = gq_codes(w, init_centroids(w, 8))
    assert torch.equal(codebook[indices.long()], gq_fake_quant(w, init_centroids(w, 8), 1e4, True))
    assert indices.long().unique().numel() > 200  # quantile init uses (almost) every level


# 7. schedule


def test_schedule_is_geometric_monotone_and_switches_to_hard():
    sched = GQSchedule()
    assert sched.hard_after == sched.anneal_steps  # default: hard once the anneal ends
    steps = range(0, sched.anneal_steps + 500, 7)
    alphas = [sched.alpha(t) for t in steps]
    assert all(a <= b for a, b in zip(alphas, alphas[1:]))
    assert sched.alpha(0) == sched.alpha_start
    assert sched.alpha(sched.anneal_steps) == sched.alpha_end
    assert sched.alpha(10 * sched.anneal_steps) == sched.alpha_end
    mid = sched.alpha(sched.anneal_steps // 2)
    assert mid == pytest.approx(math.sqrt(sched.alpha_start * sched.alpha_end))
    assert not sched.is_hard(sched.anneal_steps - 1) and sched.is_hard(sched.anneal_steps)

    custom = GQSchedule(alpha_start=2.0, alpha_end=200.0, anneal_steps=100, hard_after=30)
    assert custom.alpha(50) == pytest.approx(20.0)
    assert [custom.is_hard(t) for t in (0, 29, 30, 31, 1000)] == [False, False, True, True, True]
    assert GQSchedule(anneal_steps=0).alpha(0) == GQSchedule().alpha_end
    with pytest.raises(ValueError):
        GQSchedule(alpha_start=0.0)


# 8. constraints


def test_centroids_stay_sorted_and_inside_the_unit_interval():
    q = TensorGQ(3)
    with torch.no_grad():
        q.raw_centroids.copy_(torch.tensor([3.0, -5.0, 0.2, -0.1, 1.5, -0.9, 0.0, 2.0]))
    assert q.centroids().tolist() == pytest.approx([-1.0, -0.9, -0.1, 0.0, 0.2, 1.0, 1.0, 1.0])
    # Push the raw parameter far outside with a huge step: the used centroids stay valid.
    w = torch.randn(30, 4)
    opt = torch.optim.SGD(q.parameters(), lr=1e3)
    for _ in range(3):
        loss = -q(w, 10.0, hard=False).square().sum()  # rewards large magnitudes
        opt.zero_grad()
        loss.backward()
        opt.step()
        c = q.centroids()
        assert (c.diff() >= 0).all() and c.abs().max() <= 1.0
    assert q.raw_centroids.detach().abs().max() > 1.0
    assert q(w, 10.0, hard=True).abs().max() <= w.abs().max()


# implementation checks: custom backward, chunking, memory, initialisation


@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("alpha", [0.5, 30.0, 2e3])
def test_matches_plain_autograd_reference_and_does_not_depend_on_chunking(hard, alpha, monkeypatch):
    torch.manual_seed(8)
    w0 = torch.randn(13, 7, dtype=torch.float64) * 0.3
    c0 = init_centroids(w0, 3).double() + 0.01 * torch.randn(8, dtype=torch.float64)
    upstream = torch.randn(13, 7, dtype=torch.float64)

    def run(fn):
        w = w0.clone().requires_grad_()
        c = c0.clone().requires_grad_()
        out = fn(w, c)
        (out * upstream).sum().backward()
        return out.detach(), w.grad, c.grad

    ref = run(lambda w, c: reference_fake_quant(w, c, alpha, hard, 255.0))
    for chunk in (gq.CHUNK_ENTRIES, 8 * 5, 8 * 91 + 3):  # one chunk; many, with ragged ends
        monkeypatch.setattr(gq, "CHUNK_ENTRIES", chunk)
        got = run(lambda w, c: gq_fake_quant(w, c, alpha, hard, 255.0, "soft"))
        for a, b in zip(got, ref):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def test_backward_keeps_no_numel_by_levels_matrix():
    w = (torch.randn(576, 144) * 0.05).requires_grad_()
    q = TensorGQ(8)
    q.init_from_weight(w)
    saved = []

    def pack(t):
        saved.append(t.numel() * t.element_size())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = q(w, 100.0, hard=True)
    # A full distance matrix alone would be numel * 256 * 4 bytes.
    assert sum(saved) < 16 * w.numel() * 4, sum(saved)
    out.square().sum().backward()
    assert torch.isfinite(w.grad).all() and torch.isfinite(q.raw_centroids.grad).all()


@pytest.mark.parametrize("bits", [1, 2, 3, 5, 8])
def test_quantile_init_matches_torch_quantile(bits):
    torch.manual_seed(9)
    w = torch.randn(40, 30)
    u = compand(w / w.abs().max()).double().reshape(-1)
    probs = (torch.arange(2**bits, dtype=torch.float64) + 0.5) / 2**bits
    torch.testing.assert_close(init_centroids(w, bits), torch.quantile(u, probs).float())


def test_one_bit_quantile_init_is_plus_minus_median_and_linspace_is_bin_midpoints():
    torch.manual_seed(10)
    x = torch.randn(1001)
    w = torch.cat([x, -x])  # symmetric, so the two centroids are +-median|u|
    c = init_centroids(w, 1)
    med = compand(w / w.abs().max()).abs().median()
    torch.testing.assert_close(c, torch.stack([-med, med]), rtol=0, atol=1e-3)
    assert init_centroids(w, 2, "linspace").tolist() == [-0.75, -0.25, 0.25, 0.75]
    q = TensorGQ(2)
    q.init_from_weight(w, method="linspace")
    assert q.centroids().tolist() == [-0.75, -0.25, 0.25, 0.75]
    assert q.num_levels == 4


def test_invalid_arguments_are_rejected():
    for bits in (0, 9):
        with pytest.raises(ValueError):
            TensorGQ(bits)
    with pytest.raises(ValueError):
        TensorGQ(2, mu=0.0)
    with pytest.raises(ValueError):
        TensorGQ(2).init_from_weight(torch.randn(3), method="kmeans")
    with pytest.raises(ValueError):
        gq_fake_quant(torch.randn(3), torch.zeros(2), -1.0, False)
    with pytest.raises(ValueError):
        gq_codes(torch.randn(3), torch.linspace(-1, 1, 257))


# per-output-channel scales


def test_per_channel_gq_scales_each_row_by_its_own_max_and_shares_the_codebook():
    from allinone.quant.gq import gq_channel_codes

    torch.manual_seed(11)
    # rows of very different magnitude: a per-tensor scale would give the small rows 1-2 levels
    w = torch.randn(6, 40) * torch.tensor([1e-3, 1e-2, 0.1, 1.0, 3.0, 10.0])[:, None]
    c = init_centroids(w / w.abs().amax(dim=1, keepdim=True), 3)
    out = gq_fake_quant(w, c, 1e5, True, 255.0, "ste", per_channel=True)
    indices, unit, scale = gq_channel_codes(w, c)
    torch.testing.assert_close(scale, w.abs().amax(dim=1))
    assert torch.equal(out, unit[indices.long()] * scale[:, None])  # bit-exact with the packed form
    for row in range(6):
        levels = torch.unique(out[row])
        assert levels.numel() <= 8
        # every row uses most of the 8 shared levels, at its own scale
        assert levels.numel() >= 5, row
    per_tensor = gq_fake_quant(w, c, 1e5, True, 255.0, "ste", per_channel=False)
    err = lambda q: ((q - w).norm(dim=1) / w.norm(dim=1)).max()  # noqa: E731
    assert err(out) < err(per_tensor)


def test_per_channel_gq_quantizer_round_trips_and_a_row_slice_is_a_standalone_small_weight():
    from allinone.quant.gq import GQQuantizer
    from allinone.quant.quantizer import QuantConfig, quantizer_for_side

    torch.manual_seed(12)
    w = torch.randn(10, 7)
    q = GQQuantizer(tuple(w.shape), QuantConfig(method="gq", granularity="channel"))
    q.init_from(w)
    from allinone.quant.annealing import Annealing

    hard = Annealing(gq_alpha=1e5, gq_hard=True)
    for bits in (1, 2, 4):
        out = q.fake_quant(w, bits, annealing=hard)
        codes, side = q.codes(w, bits)
        assert set(side) == {"codebook", "channel_scale"}
        assert quantizer_for_side(side) is GQQuantizer
        assert torch.equal(GQQuantizer.decode(codes, bits, side, q.cfg), out)
        # storage: b-bit codes + the 2^b codebook + one scale per row
        assert q.storage_bits(w.numel(), bits) == w.numel() * bits + 2**bits * 32 + 10 * 32
        # a prefix of rows (a narrower nested FFN) quantizes exactly like those rows alone
        part = q.fake_quant(w[:4], bits, out_units=4, annealing=hard)
        assert torch.equal(part, out[:4])
        assert q.storage_bits(w[:4].numel(), bits, out_units=4) == 28 * bits + 2**bits * 32 + 4 * 32
