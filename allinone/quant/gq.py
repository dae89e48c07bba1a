"""General Quantizer (GQ): soft-to-hard quantization with learned centroids (SLT 2022, arXiv 2210.09188).

Each weight tensor is normalised by its (detached) largest magnitude, ``x = W / s`` with
``s = max|W|``, so ``x`` lies in ``[-1, 1]``, and then mu-law companded,

    u = sign(x) ln(1 + mu |x|) / ln(1 + mu),

which spreads the many small weights over more of ``[-1, 1]``. In that domain the quantizer
owns ``K = 2^b`` learnable centroids ``c`` (kept sorted inside ``[-1, 1]``; initialised at
the quantiles of the tensor's companded weights). Every weight is softly assigned to all
centroids,

    p_k = softmax_k(-alpha (u - c_k)^2),    u_soft = sum_k p_k c_k,

so both the weights and the centroids receive gradients. ``alpha`` grows during training
(``GQSchedule``), which turns the soft assignment into the nearest-centroid one; in "hard"
mode the forward value is exactly the nearest centroid ``u_hard`` while gradients still
follow the soft path (straight-through: ``u_soft + (u_hard - u_soft).detach()``). The
output is ``expand(value) * s`` with ``expand`` the exact inverse of the companding. There
is no regulariser: the task loss alone moves the centroids.

The ``numel x K`` distance matrix is never materialised for a whole tensor: the soft
assignment is a custom autograd function that works on chunks of ``CHUNK_ENTRIES``
entries and recomputes the probabilities in its backward pass, so the memory kept for
backward is ``O(numel + K)`` (a 576x144 weight at 8 bits would otherwise keep several
``82944 x 256`` matrices alive).
"""

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import torch.nn as nn
from torch.autograd.function import once_differentiable

MAX_BITS = 8  # codes are stored as uint8
# Entries of a (chunk of weights) x (centroids) matrix processed at once: 4 MiB in float32.
CHUNK_ENTRIES = 1 << 20
INIT_METHODS = ("quantile", "linspace")


def _check_mu(mu: float) -> None:
    if not (mu > 0 and math.isfinite(mu)):
        raise ValueError(f"mu must be positive and finite, got {mu}")


class _Compand(torch.autograd.Function):
    """mu-law companding with its analytic derivative.

    Written as ``sign(x) * f(|x|)``, autograd would give a zero derivative at ``x = 0``
    (``sign`` is flat and ``sign(0) = 0``) although the true one, ``mu / ln(1 + mu)``, is
    the largest anywhere: weights that are exactly zero would never move.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, mu: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.mu = mu
        return torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        mu = ctx.mu
        return grad * (mu / math.log1p(mu)) / (1.0 + mu * x.abs()), None


class _Expand(torch.autograd.Function):
    """Inverse mu-law with its analytic derivative (non-zero at ``u = 0``, see ``_Compand``)."""

    @staticmethod
    def forward(ctx, u: torch.Tensor, mu: float) -> torch.Tensor:
        ctx.save_for_backward(u)
        ctx.mu = mu
        return torch.sign(u) * torch.expm1(u.abs() * math.log1p(mu)) / mu

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (u,) = ctx.saved_tensors
        log_mu1 = math.log1p(ctx.mu)
        # d/du ((1 + mu)^|u| - 1) / mu = ln(1 + mu) (1 + mu)^|u| / mu, for either sign of u.
        return grad * (log_mu1 / ctx.mu) * torch.exp(u.abs() * log_mu1), None


def compand(x: torch.Tensor, mu: float = 255.0) -> torch.Tensor:
    """mu-law compress ``sign(x) ln(1 + mu|x|) / ln(1 + mu)`` element-wise.

    Args:
        x: any shape; ``[-1, 1]`` maps onto ``[-1, 1]`` monotonically.
        mu: compression strength (> 0); larger gives finer resolution near zero.
    Returns:
        tensor like ``x``.
    """
    _check_mu(mu)
    return _Compand.apply(x, float(mu))


def expand(u: torch.Tensor, mu: float = 255.0) -> torch.Tensor:
    """Inverse of ``compand``: ``sign(u) ((1 + mu)^|u| - 1) / mu`` element-wise.

    Args:
        u: any shape, companded values.
        mu: the value ``compand`` used.
    Returns:
        tensor like ``u``.
    """
    _check_mu(mu)
    return _Expand.apply(u, float(mu))


def weight_scale(weight: torch.Tensor) -> torch.Tensor:
    """GQ's per-tensor scale ``max|W|``, detached and at least 1e-8 (so an all-zero tensor divides safely).

    Args:
        weight: any shape.
    Returns:
        scalar tensor of ``weight``'s dtype.
    """
    return weight.detach().abs().max().clamp(min=1e-8)


def sorted_centroids(raw: torch.Tensor) -> torch.Tensor:
    """Centroids a quantizer uses from its unconstrained parameter: clamped to ``[-1, 1]`` and sorted.

    Both operations are differentiable (the clamp passes no gradient to entries outside
    the interval), and sorting keeps code ``i`` the ``i``-th smallest level.

    Args:
        raw: (K,) raw centroid parameter.
    Returns:
        (K,) sorted centroids in ``[-1, 1]``.
    """
    return torch.sort(torch.clamp(raw, -1.0, 1.0)).values


def _rows_per_chunk(num_centroids: int) -> int:
    return max(1, CHUNK_ENTRIES // num_centroids)


def _probabilities(u: torch.Tensor, c: torch.Tensor, alpha: float) -> torch.Tensor:
    """Soft assignment ``softmax(-alpha (u - c)^2)``: u (m,), c (K,) -> (m, K)."""
    # softmax subtracts the row maximum, so even alpha = 1e7 cannot overflow.
    return torch.softmax(-alpha * (u[:, None] - c[None, :]).square(), dim=1)


class _SoftAssign(torch.autograd.Function):
    """``u_soft = sum_k softmax_k(-alpha (u - c_k)^2) c_k`` for flat ``u`` (n,) and ``c`` (K,), in chunks.

    Only ``u`` and ``c`` are saved; the backward recomputes each chunk's probabilities and
    applies, with ``g`` the incoming gradient,

        d u_soft / d u   = 2 alpha sum_k p_k (c_k - u_soft)(c_k - u)
        d u_soft / d c_k = p_k (1 - 2 alpha (c_k - u_soft)(c_k - u)).
    """

    @staticmethod
    def forward(ctx, u: torch.Tensor, c: torch.Tensor, alpha: float) -> torch.Tensor:
        ctx.save_for_backward(u, c)
        ctx.alpha = alpha
        out = torch.empty_like(u)
        rows = _rows_per_chunk(c.numel())
        for start in range(0, u.numel(), rows):
            out[start : start + rows] = _probabilities(u[start : start + rows], c, alpha) @ c
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        u, c = ctx.saved_tensors
        alpha = ctx.alpha
        grad_u = torch.empty_like(u) if ctx.needs_input_grad[0] else None
        grad_c = torch.zeros_like(c) if ctx.needs_input_grad[1] else None
        rows = _rows_per_chunk(c.numel())
        for start in range(0, u.numel(), rows):
            uc = u[start : start + rows]
            p = _probabilities(uc, c, alpha)
            gp = grad[start : start + rows, None] * p
            # gp_k (c_k - u_soft)(c_k - u): the term both gradients share.
            t = gp * (c[None, :] - (p @ c)[:, None]) * (c[None, :] - uc[:, None])
            if grad_u is not None:
                grad_u[start : start + rows] = 2.0 * alpha * t.sum(dim=1)
            if grad_c is not None:
                grad_c += gp.sum(dim=0) - 2.0 * alpha * t.sum(dim=0)
        return grad_u, grad_c, None


@torch.no_grad()
def _nearest(u: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Index of the nearest centroid, ``argmin_k |u - c_k|`` (first on ties): u (n,), c (K,) -> (n,) int64."""
    idx = torch.empty(u.shape, dtype=torch.long, device=u.device)
    rows = _rows_per_chunk(c.numel())
    for start in range(0, u.numel(), rows):
        idx[start : start + rows] = (u[start : start + rows, None] - c[None, :]).abs().argmin(dim=1)
    return idx


def _check_centroids(centroids: torch.Tensor) -> None:
    if centroids.dim() != 1 or centroids.numel() == 0:
        raise ValueError(f"centroids must be a non-empty 1-D tensor, got shape {tuple(centroids.shape)}")


def gq_fake_quant(
    weight: torch.Tensor, centroids: torch.Tensor, alpha: float, hard: bool, mu: float = 255.0
) -> torch.Tensor:
    """Quantize-dequantize ``weight`` with GQ's soft (or straight-through hard) centroid assignment.

    Args:
        weight: any shape, float.
        centroids: (K,) centroids in the companded domain, normally ``sorted_centroids(raw)``
            of a layer's own parameter; gradients flow back to them.
        alpha: softmax sharpness (>= 0); larger is closer to nearest-centroid rounding.
        hard: if True every output is exactly ``expand(c_k) * s`` for the nearest ``c_k``
            (bit-identical to ``gq_codes``' ``codebook[indices]``), with the soft gradients.
            These are a surrogate: near decision boundaries they differ from the gradient
            of the hard loss, so large steps can make the loss oscillate.
        mu: companding strength.
    Returns:
        tensor like ``weight``.
    """
    _check_centroids(centroids)
    if not (alpha >= 0 and math.isfinite(alpha)):
        raise ValueError(f"alpha must be non-negative and finite, got {alpha}")
    s = weight_scale(weight)
    u = compand(weight / s, mu).reshape(-1)
    c = centroids.to(weight.dtype)
    u_soft = _SoftAssign.apply(u, c, float(alpha))
    if not hard:
        return (expand(u_soft, mu) * s).view_as(weight)
    idx = _nearest(u.detach(), c.detach())
    # The straight-through value: forward u_hard, gradient of u_soft (then through expand at u_hard).
    u_st = c.detach()[idx] + (u_soft - u_soft.detach())
    w_st = expand(u_st, mu) * s
    # expand(u_st) * s may differ from the codebook entry in the last bit (vectorised and
    # scalar kernels round differently), so take the value from the codebook and only the
    # gradient from w_st: x - x.detach() is exactly zero.
    codebook = expand(c.detach(), mu) * s
    return (codebook[idx] + (w_st - w_st.detach())).view_as(weight)


@torch.no_grad()
def gq_codes(
    weight: torch.Tensor, centroids: torch.Tensor, mu: float = 255.0
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Deployable form of the hard quantizer: nearest-centroid indices and the codebook.

    Args:
        weight: any shape, float.
        centroids: (K,) companded centroids, K <= 256.
        mu: companding strength.
    Returns:
        indices: uint8 tensor shaped like ``weight``, values in ``0..K-1``.
        codebook: (K,) float32 levels in the weight domain, ``expand(c) * s``, so that
            ``codebook[indices]`` equals ``gq_fake_quant(weight, centroids, alpha, True, mu)``.
    """
    _check_centroids(centroids)
    if centroids.numel() > 2**MAX_BITS:
        raise ValueError(f"{centroids.numel()} centroids do not fit uint8 codes")
    s = weight_scale(weight)
    u = compand(weight / s, mu).reshape(-1)
    c = centroids.to(weight.dtype)
    idx = _nearest(u, c)
    codebook = expand(c, mu) * s  # computed exactly as in gq_fake_quant
    return idx.to(torch.uint8).view(weight.shape), codebook.float()


def init_centroids(
    weight: torch.Tensor, bits: int, method: str = "quantile", mu: float = 255.0
) -> torch.Tensor:
    """Initial (sorted) companded centroids for a ``bits``-bit quantizer of ``weight``.

    ``"quantile"``: the midpoints in probability mass of ``2^b`` equal-mass bins, i.e. the
    ``(k + 1/2) / 2^b`` quantiles of ``compand(W / s)`` (for 1 bit, about ``+-median|u|``),
    so every level starts with the same share of weights. ``"linspace"``: the midpoints of
    ``2^b`` equal-width bins of ``[-1, 1]``, independent of the weights (the endpoints
    ``+-1`` would only ever hold the single largest weight). A tensor with many equal
    values (e.g. constant or mostly zero) gives coincident quantile centroids, which then
    receive identical gradients and never separate; ``"linspace"`` avoids that.

    Args:
        weight: any shape, float (non-empty for ``"quantile"``).
        bits: 1..8.
        method: ``"quantile"`` or ``"linspace"``.
        mu: companding strength.
    Returns:
        (2^bits,) float32 tensor, sorted, in ``[-1, 1]``.
    """
    if not 1 <= bits <= MAX_BITS:
        raise ValueError(f"GQ supports 1..{MAX_BITS} bits, got {bits}")
    k = 2**bits
    if method == "linspace":
        return torch.linspace(-1.0 + 1.0 / k, 1.0 - 1.0 / k, k)
    if method != "quantile":
        raise ValueError(f"unknown init method {method!r}; expected one of {INIT_METHODS}")
    if weight.numel() == 0:
        raise ValueError("cannot take quantiles of an empty weight")
    w = weight.detach().double()
    u = compand(w / weight_scale(w), mu).reshape(-1).sort().values
    # Linear interpolation between order statistics (torch.quantile's default, which
    # refuses inputs above 2^24 elements).
    pos = (torch.arange(k, dtype=torch.float64) + 0.5) / k * (u.numel() - 1)
    lo = pos.floor().long()
    hi = pos.ceil().long()
    q = u[lo] + (pos - lo) * (u[hi] - u[lo])
    return q.clamp(-1.0, 1.0).float()


class GeneralQuantizer(nn.Module):
    """One tensor's GQ quantizer: ``2^bits`` learnable companded centroids.

    The quantizer holds no reference to the weight; call ``init_from_weight`` once the
    float weight is known (the centroids start as ``init_centroids(..., "linspace")``).

    Args:
        bits: 1..8.
        mu: companding strength; 255 is the telephony mu-law value.
    """

    def __init__(self, bits: int, mu: float = 255.0):
        super().__init__()
        if not 1 <= bits <= MAX_BITS:
            raise ValueError(f"GQ supports 1..{MAX_BITS} bits, got {bits}")
        _check_mu(mu)
        self.bits = bits
        self.mu = float(mu)
        # Unconstrained; ``centroids()`` clamps and sorts it on every use.
        self.raw_centroids = nn.Parameter(init_centroids(torch.empty(0), bits, "linspace", self.mu))

    @property
    def num_levels(self) -> int:
        """Number of centroids, ``2^bits``."""
        return 2**self.bits

    @torch.no_grad()
    def init_from_weight(self, weight: torch.Tensor, method: str = "quantile") -> None:
        """Reset the centroids from ``weight`` (see ``init_centroids`` for the methods)."""
        self.raw_centroids.copy_(init_centroids(weight, self.bits, method, self.mu))

    def centroids(self) -> torch.Tensor:
        """(2^bits,) sorted centroids in ``[-1, 1]`` (companded domain), differentiable."""
        return sorted_centroids(self.raw_centroids)

    def forward(self, weight: torch.Tensor, alpha: float, hard: bool = False) -> torch.Tensor:
        """Fake-quantized ``weight`` (any shape -> same shape); see ``gq_fake_quant``."""
        return gq_fake_quant(weight, self.centroids(), alpha, hard, self.mu)

    def codes(self, weight: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(uint8 indices shaped like ``weight``, (2^bits,) float32 codebook); see ``gq_codes``."""
        return gq_codes(weight, self.centroids(), self.mu)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, mu={self.mu:g}"


@dataclass
class GQSchedule:
    """Annealing of GQ's sharpness ``alpha`` and the switch to hard (straight-through) mode.

    ``alpha`` rises geometrically from ``alpha_start`` to ``alpha_end`` over
    ``anneal_steps`` training steps and stays at ``alpha_end`` afterwards; the quantizer
    runs hard from step ``hard_after`` on (default: when the anneal ends).

    Defaults. ``p_k`` is a Gaussian bump of standard deviation ``1 / sqrt(2 alpha)`` in
    the companded domain, so how hard a given alpha is depends on the centroid spacing:
    with quantile initialisation on Gaussian weights the spacing is ~1.3 at 1 bit, ~0.22
    at 2, ~0.06 at 4, ~0.015 at 6 and ~0.004 at 8 bits.

    - ``alpha_start = 5`` (width ~0.3) is clearly soft for every codebook of 2 or more
      bits (1 bit is already nearly hard), so weights and centroids all get gradients at
      first. The soft weight is then about half its norm away from the float one: when
      fine-tuning a trained model expect a loss jump, or start higher (at ~100 the soft
      error is about the hard one).
    - ``alpha_end = 1e5`` leaves the soft output within ~8% of the hard one (mean absolute
      gap relative to the quantization error) up to 6 bits, ~50% at 8 bits; 5e3 would be
      that hard only up to 3 bits (~11% at 4, ~40% at 5), so switching to hard mode would
      jolt the 5- and 6-bit models. It is not larger because the soft path's gradient
      w.r.t. a weight vanishes away from the decision boundaries as alpha grows, which
      freezes the weights (the centroids keep learning).
    - Geometric growth spends equal time on every order of magnitude of alpha.
    - ``anneal_steps = 10_000`` is a short fine-tuning run; set it to about yours.
    - ``hard_after = anneal_steps``: hard mode starts when the anneal ends.

    Args:
        alpha_start: alpha at step 0 (> 0).
        alpha_end: alpha from step ``anneal_steps`` on (> 0).
        anneal_steps: length of the geometric ramp (0 = ``alpha_end`` from the start).
        hard_after: first hard step; ``None`` means ``anneal_steps``.
    """

    alpha_start: float = 5.0
    alpha_end: float = 1e5
    anneal_steps: int = 10_000
    hard_after: Optional[int] = None

    def __post_init__(self) -> None:
        if not (self.alpha_start > 0 and self.alpha_end > 0):
            raise ValueError("alpha_start and alpha_end must be positive")
        if not (math.isfinite(self.alpha_start) and math.isfinite(self.alpha_end)):
            raise ValueError("alpha_start and alpha_end must be finite")
        if self.anneal_steps < 0:
            raise ValueError(f"anneal_steps must be >= 0, got {self.anneal_steps}")
        if self.hard_after is None:
            self.hard_after = self.anneal_steps

    def alpha(self, step: int) -> float:
        """Sharpness at training step ``step`` (0-based): geometric ramp, then constant."""
        if step >= self.anneal_steps:
            return float(self.alpha_end)
        if step <= 0:
            return float(self.alpha_start)
        frac = step / self.anneal_steps
        return float(self.alpha_start * (self.alpha_end / self.alpha_start) ** frac)

    def is_hard(self, step: int) -> bool:
        """Whether step ``step`` uses the hard (straight-through) forward."""
        return step >= self.hard_after
