"""Relative-position multi-head self-attention (Transformer-XL style, as in Conformer)."""

import math
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from allinone.quant.annealing import Annealing
from allinone.quant.layers import QLinear
from allinone.subnet import FLOAT_BITS


class RelPositionalEncoding(nn.Module):
    """Sinusoidal embeddings of relative positions ``T-1, ..., 0, ..., -(T-1)``.

    Args:
        d_model: embedding dimension (even).
        dropout: dropout applied to the position embeddings.
    """

    def __init__(self, d_model: int, dropout: float = 0.1):
        super().__init__()
        if d_model % 2:
            raise ValueError(f"d_model must be even, got {d_model}")
        self.d_model = d_model
        self.dropout = nn.Dropout(dropout)

    def forward(self, num_frames: int, device=None, dtype=None) -> torch.Tensor:
        """Embeddings for every relative offset of a sequence of ``num_frames``.

        Returns:
            (1, 2 * num_frames - 1, d_model); row j encodes offset ``num_frames - 1 - j``.
        """
        offsets = torch.arange(num_frames - 1, -num_frames, -1, device=device, dtype=torch.float32)
        inv_freq = torch.exp(
            torch.arange(0, self.d_model, 2, device=device, dtype=torch.float32)
            * (-math.log(10000.0) / self.d_model)
        )
        angles = offsets[:, None] * inv_freq[None, :]
        pe = torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(1)
        return self.dropout(pe.to(dtype or torch.float32).unsqueeze(0))


def rel_shift(scores: torch.Tensor) -> torch.Tensor:
    """Re-index position scores from relative offsets to key positions.

    Args:
        scores: (N, H, T, 2T-1); column j holds the score for offset ``T-1-j``.
    Returns:
        (N, H, T, T); entry (i, k) is the score for offset ``i - k``.
    """
    t = scores.size(2)
    i = torch.arange(t, device=scores.device)
    index = (t - 1 - i)[:, None] + i[None, :]  # column of offset i-k
    return scores.gather(3, index.expand(scores.size(0), scores.size(1), t, t))


class RelPositionMultiheadAttention(nn.Module):
    """Multi-head self-attention whose logits add content and relative-position terms.

    The query, key and value projections are three quantized layers (``q_proj``,
    ``k_proj``, ``v_proj``): each has its own scale or codebook and, in mixed precision, its
    own bit-width, as three separately quantized projections would. The matmul stays
    fused: their quantized weights are concatenated and applied to the input at once.

    Args:
        d_model: model dimension.
        num_heads: number of heads; must divide ``d_model``.
        dropout: attention-weight dropout.
    """

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide d_model={d_model}")
        self.num_heads = num_heads
        self.head_dim = d_model // num_heads
        # The three projections start as the rows of one fused (3 d_model, d_model) layer with
        # Xavier weights, drawing from the RNG exactly as that layer did (they are built
        # without drawing), so a float model is initialised as before they were split.
        with torch.random.fork_rng(devices=[]):
            self.q_proj, self.k_proj, self.v_proj = (QLinear(d_model, d_model) for _ in range(3))
        fused = nn.Linear(d_model, 3 * d_model)
        self.linear_pos = QLinear(d_model, d_model, bias=False)
        self.out_proj = QLinear(d_model, d_model)
        # Learned global content and position biases (u and v of Transformer-XL).
        self.pos_bias_u = nn.Parameter(torch.zeros(num_heads, self.head_dim))
        self.pos_bias_v = nn.Parameter(torch.zeros(num_heads, self.head_dim))
        self.dropout = dropout
        nn.init.xavier_uniform_(fused.weight)
        nn.init.xavier_uniform_(self.linear_pos.weight)
        with torch.no_grad():
            for i, proj in enumerate(self.qkv_projections()):
                proj.weight.copy_(fused.weight[i * d_model : (i + 1) * d_model])
                proj.bias.copy_(fused.bias[i * d_model : (i + 1) * d_model])
                proj.reset_steps()
        self.linear_pos.reset_steps()
        self._register_load_state_dict_pre_hook(_split_fused_in_proj, with_module=True)

    def qkv_projections(self) -> Tuple[QLinear, QLinear, QLinear]:
        return self.q_proj, self.k_proj, self.v_proj

    def forward(
        self,
        x: torch.Tensor,
        pos_emb: torch.Tensor,
        key_padding_mask: Optional[torch.Tensor] = None,
        bits: int = FLOAT_BITS,
        annealing: Optional[Annealing] = None,
    ) -> torch.Tensor:
        """Attend.

        Args:
            x: (N, T, d_model).
            pos_emb: (1, 2T-1, d_model) from ``RelPositionalEncoding``.
            key_padding_mask: (N, T) bool, True at padded frames.
            bits: weight bit-width of the projections.
            annealing: quantizer annealing state of this step (None: not annealing).
        Returns:
            (N, T, d_model).
        """
        n, t, d = x.shape
        h, dk = self.num_heads, self.head_dim
        projections = self.qkv_projections()
        weight = torch.cat([proj.quantized_weight(bits, annealing=annealing) for proj in projections])
        bias = torch.cat([proj.bias for proj in projections])
        q, k, v = F.linear(x, weight, bias).view(n, t, 3, h, dk).unbind(2)  # each (N, T, H, dk)
        p = self.linear_pos(pos_emb, bits, annealing).view(1, -1, h, dk)

        k = k.transpose(1, 2)  # (N, H, T, dk)
        v = v.transpose(1, 2)
        content = torch.matmul((q + self.pos_bias_u).transpose(1, 2), k.transpose(2, 3))
        position = torch.matmul((q + self.pos_bias_v).transpose(1, 2), p.permute(0, 2, 3, 1))
        scores = (content + rel_shift(position)) / math.sqrt(dk)  # (N, H, T, T)

        if key_padding_mask is not None:
            scores = scores.masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
        weights = F.dropout(torch.softmax(scores, dim=-1), p=self.dropout, training=self.training)
        out = torch.matmul(weights, v).transpose(1, 2).reshape(n, t, d)
        return self.out_proj(out, bits, annealing)


def _split_fused_in_proj(module, state_dict, prefix, *args) -> None:
    """Load a state dict saved when Q, K and V were one fused ``in_proj`` layer.

    Its weight and bias are split into thirds; quantizer state with one row per output unit
    (per-channel or per-group LSQ steps) is split too, and per-tensor state (an LSQ step, GQ
    centroids, bit-width logits, the finalised bit-width) is given to all three, which is
    what the fused layer applied to each third.
    """
    old = prefix + "in_proj."
    keys = [k for k in state_dict if k.startswith(old)]
    if not keys:
        return
    rows = 3 * module.head_dim * module.num_heads
    for key in keys:
        value = state_dict.pop(key)
        rest = key[len(old) :]
        for i, name in enumerate(("q_proj", "k_proj", "v_proj")):
            if value.dim() > 0 and value.shape[0] == rows:
                part = value.chunk(3, dim=0)[i].clone()
            else:
                part = value.clone()
            state_dict[f"{prefix}{name}.{rest}"] = part
