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
(``allinone.quant.annealing.GQSchedule``; the value of a step reaches the layer as an
``Annealing``), which turns the soft assignment into the nearest-centroid one; in "hard"
mode the forward value is exactly the nearest centroid ``u_hard`` and the gradients
follow a straight-through estimator: by default the identity through the assignment
(``u_hard + (u - u.detach())``, the picked centroid taking the gradient of its weights), or
the soft path (``u_soft + (u_hard - u_soft).detach()``, ``hard_grad="soft"``). The
output is ``expand(value) * s`` with ``expand`` the exact inverse of the companding. There
is no regulariser: the task loss alone moves the centroids.

``GQQuantizer`` is the layer-facing implementation of ``allinone.quant.quantizer.Quantizer``:
one centroid vector per bit-width, stored as b-bit indices plus a codebook.

The ``numel x K`` distance matrix is never materialised for a whole tensor: the soft
assignment is a custom autograd function that works on chunks of ``CHUNK_ENTRIES``
entries and recomputes the probabilities in its backward pass, so the memory kept for
backward is ``O(numel + K)`` (a 576x144 weight at 8 bits would otherwise keep several
``82944 x 256`` matrices alive).
"""

import math
from typing import Dict, Optional, Tuple

import torch
from torch.autograd.function import once_differentiable

from allinone.quant.annealing import Annealing
from allinone.quant.quantizer import QuantConfig, Quantizer, register_quantizer
from allinone.subnet import FLOAT_BITS

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


def weight_scale(weight: torch.Tensor, per_channel: bool = False) -> torch.Tensor:
    """GQ's scale ``max|W|``, detached and at least 1e-8 (so an all-zero tensor divides safely).

    Args:
        weight: (C_out, ...) any shape.
        per_channel: one scale per output channel (row) instead of one for the tensor.
    Returns:
        a scalar tensor, or (C_out, 1, ...) broadcastable against ``weight``; ``weight``'s dtype.
    """
    w = weight.detach().abs()
    if per_channel and weight.dim() > 1:
        return w.amax(dim=tuple(range(1, weight.dim())), keepdim=True).clamp(min=1e-8)
    return w.max().clamp(min=1e-8)


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
    weight: torch.Tensor,
    centroids: torch.Tensor,
    alpha: float,
    hard: bool,
    mu: float = 255.0,
    hard_grad: str = "ste",
    per_channel: bool = False,
) -> torch.Tensor:
    """Quantize-dequantize ``weight`` with GQ's soft (or straight-through hard) centroid assignment.

    Args:
        weight: any shape, float.
        centroids: (K,) centroids in the companded domain, normally ``sorted_centroids(raw)``
            of a layer's own parameter; gradients flow back to them.
        alpha: softmax sharpness (>= 0); larger is closer to nearest-centroid rounding.
        hard: if True every output is exactly ``expand(c_k) * s`` for the nearest ``c_k``
            (bit-identical to ``gq_codes``' ``codebook[indices]``), with the gradients
            ``hard_grad`` names.
        mu: companding strength.
        hard_grad: gradients of the hard forward. "ste": straight through the assignment,
            ``d u_hard / d u = 1`` for the weight and ``d u_hard / d c_k = [k nearest]``
            for the centroids, so weights keep training however sharp alpha is. "soft":
            the soft assignment's gradients at ``alpha``, a surrogate that vanishes for
            weights away from a decision boundary as alpha grows (at alpha = 1e5 most
            4-bit weights get almost none), leaving only the centroids to learn.
        per_channel: normalise each output channel by its own ``max|W|`` (one shared codebook
            of companded centroids, stored with one scale per channel).
    Returns:
        tensor like ``weight``.
    """
    _check_centroids(centroids)
    if not (alpha >= 0 and math.isfinite(alpha)):
        raise ValueError(f"alpha must be non-negative and finite, got {alpha}")
    if hard_grad not in ("ste", "soft"):
        raise ValueError(f"hard_grad must be 'ste' or 'soft', got {hard_grad!r}")
    s = weight_scale(weight, per_channel)
    u = compand(weight / s, mu).reshape(-1)
    c = centroids.to(weight.dtype)
    if not hard:
        return expand(_SoftAssign.apply(u, c, float(alpha)), mu).view_as(weight) * s
    idx = _nearest(u.detach(), c.detach())
    # The straight-through value: forward u_hard; the gradient of u (to the weight) plus the
    # gather c[idx] (to the picked centroid), or that of u_soft; then through expand at u_hard.
    if hard_grad == "ste":
        u_st = c[idx] + (u - u.detach())
    else:
        u_soft = _SoftAssign.apply(u, c, float(alpha))
        u_st = c.detach()[idx] + (u_soft - u_soft.detach())
    # expand(u_st) * s may differ from the codebook entry in the last bit (vectorised and
    # scalar kernels round differently), so take the value from the codebook and only the
    # gradient from w_st: x - x.detach() is exactly zero.
    if per_channel:
        w_st = expand(u_st, mu).view_as(weight) * s
        return _channel_values(idx.view(weight.shape), expand(c.detach(), mu), s) + (w_st - w_st.detach())
    w_st = expand(u_st, mu) * s
    codebook = expand(c.detach(), mu) * s
    return (codebook[idx] + (w_st - w_st.detach())).view_as(weight)


def _channel_values(indices: torch.Tensor, unit_codebook: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``unit_codebook[indices] * scale``: the one formula of per-channel GQ values, shared by the
    forward and the packed file's decoding so both give the same bits."""
    return unit_codebook[indices.long()] * scale


@torch.no_grad()
def gq_channel_codes(
    weight: torch.Tensor, centroids: torch.Tensor, mu: float = 255.0
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-channel GQ's deployable form: indices, the unit codebook ``expand(c)`` and the scales.

    Returns:
        indices: uint8 like ``weight``; unit_codebook: (K,) float32; scale: (C_out,) float32,
        such that ``unit_codebook[indices] * scale`` (per row) is the hard forward's value.
    """
    _check_centroids(centroids)
    if centroids.numel() > 2**MAX_BITS:
        raise ValueError(f"{centroids.numel()} centroids do not fit uint8 codes")
    s = weight_scale(weight, per_channel=True)
    c = centroids.to(weight.dtype)
    idx = _nearest(compand(weight / s, mu).reshape(-1), c)
    return idx.to(torch.uint8).view(weight.shape), expand(c, mu).float(), s.reshape(-1).float()


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
        return torch.linspace(-1.0 + 1.0 / k, 1.0 - 1.0 / k, k, device=weight.device)
    if method != "quantile":
        raise ValueError(f"unknown init method {method!r}; expected one of {INIT_METHODS}")
    if weight.numel() == 0:
        raise ValueError("cannot take quantiles of an empty weight")
    w = weight.detach().double()
    u = compand(w / weight_scale(w), mu).reshape(-1).sort().values
    # Linear interpolation between order statistics (torch.quantile's default, which
    # refuses inputs above 2^24 elements).
    pos = (torch.arange(k, dtype=torch.float64, device=u.device) + 0.5) / k * (u.numel() - 1)
    lo = pos.floor().long()
    hi = pos.ceil().long()
    q = u[lo] + (pos - lo) * (u[hi] - u[lo])
    return q.clamp(-1.0, 1.0).float()


@register_quantizer("gq")
class GQQuantizer(Quantizer):
    """GQ centroids per bit-width: ``centroids.b<bits>`` of shape (2^bits,), unconstrained.

    The centroids used are ``sorted_centroids`` of the parameter (clamped to ``[-1, 1]``
    and sorted), so the optimizer may move the raw values anywhere.
    """

    state_name = "centroids"
    side_names = ("codebook",)
    optional_side_names = ("channel_scale",)

    @classmethod
    def check_config(cls, cfg: QuantConfig) -> None:
        if cfg.granularity not in ("tensor", "channel"):
            raise ValueError(
                "the general quantizer scales per tensor or per output channel: "
                "quant_granularity=tensor|channel"
            )
        _check_mu(cfg.mu)

    @property
    def per_channel(self) -> bool:
        return self.cfg.granularity == "channel"

    @classmethod
    def state_shape(cls, weight_shape: Tuple[int, ...], bits: int, cfg: QuantConfig) -> Tuple[int, ...]:
        return (2**bits,)

    @torch.no_grad()
    def init_from(self, weight: torch.Tensor) -> None:
        for key, raw in self.items():
            raw.copy_(init_centroids(weight, int(key[1:]), "quantile", self.cfg.mu))

    def fake_quant(
        self,
        w: torch.Tensor,
        bits: int,
        out_units: Optional[int] = None,
        in_units: Optional[int] = None,
        *,
        annealing: Annealing,
    ) -> torch.Tensor:
        # Per tensor: a slice is scaled by its own max|w|, so no state needs slicing.
        c = sorted_centroids(self[f"b{bits}"])
        return gq_fake_quant(
            w, c, annealing.gq_alpha, annealing.gq_hard, self.cfg.mu, annealing.gq_hard_grad, self.per_channel
        )

    def codes(
        self, w: torch.Tensor, bits: int, out_units: Optional[int] = None, in_units: Optional[int] = None
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        centroids = sorted_centroids(self[f"b{bits}"])
        if self.per_channel:
            indices, unit_codebook, scale = gq_channel_codes(w, centroids, self.cfg.mu)
            return indices, {"codebook": unit_codebook, "channel_scale": scale}
        indices, codebook = gq_codes(w, centroids, self.cfg.mu)
        return indices, {"codebook": codebook}

    def storage_bits(
        self, numel: int, bits: int, out_units: Optional[int] = None, in_units: Optional[int] = None
    ) -> int:
        scales = 0
        if self.per_channel:
            scales = out_units if out_units is not None else self.weight_shape[0]
        return numel * bits + 2**bits * FLOAT_BITS + scales * FLOAT_BITS

    @classmethod
    def decode(
        cls, codes: torch.Tensor, bits: int, side: Dict[str, torch.Tensor], cfg: QuantConfig
    ) -> torch.Tensor:
        if "channel_scale" in side:
            scale = side["channel_scale"].view(-1, *[1] * (codes.dim() - 1))
            return _channel_values(codes, side["codebook"], scale)
        return side["codebook"][codes.long()]
