"""Conformer encoder whose depth and FFN width are chosen per call.

Layer layout (Gulati et al., 2020): half-step macaron FFN, relative-position
self-attention, convolution module, half-step FFN, layer norm. The convolution
module normalises with LayerNorm over channels rather than BatchNorm: BatchNorm's
running statistics would depend on which sub-network produced them, and on CPU
the small batches used here make them noisy anyway.
"""

from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from allinone.nn.attention import RelPositionalEncoding, RelPositionMultiheadAttention
from allinone.nn.normalize import utterance_cmvn
from allinone.nn.subsampling import Conv2dSubsampling
from allinone.subnet import FULL, SubnetConfig


def make_pad_mask(lengths: torch.Tensor, max_len: Optional[int] = None) -> torch.Tensor:
    """Padding mask.

    Args:
        lengths: (N,) valid lengths.
        max_len: mask width; defaults to ``lengths.max()``.
    Returns:
        (N, max_len) bool, True at padded positions.
    """
    max_len = int(lengths.max()) if max_len is None else max_len
    return torch.arange(max_len, device=lengths.device)[None, :] >= lengths[:, None]


class FeedForward(nn.Module):
    """Position-wise FFN whose hidden units form nested prefixes.

    Running with ``hidden`` units uses rows ``0..hidden-1`` of the first weight and the
    matching columns of the second, so every narrower FFN is a slice of the wider one.

    Args:
        d_model: input/output dimension.
        ffn_dim: full hidden dimension.
        dropout: dropout after the activation.
    """

    def __init__(self, d_model: int, ffn_dim: int, dropout: float = 0.1):
        super().__init__()
        self.ffn_dim = ffn_dim
        self.linear1 = nn.Linear(d_model, ffn_dim)
        self.linear2 = nn.Linear(ffn_dim, d_model)
        self.dropout = nn.Dropout(dropout)

    def hidden_units(self, ratio: float) -> int:
        """Number of hidden units used at width ``ratio`` (at least one)."""
        return max(1, int(round(self.ffn_dim * ratio)))

    def forward(self, x: torch.Tensor, ratio: float = 1.0) -> torch.Tensor:
        """Apply the FFN.

        Args:
            x: (N, T, d_model).
            ratio: fraction of hidden units to use, in (0, 1].
        Returns:
            (N, T, d_model).
        """
        k = self.hidden_units(ratio)
        hidden = F.silu(F.linear(x, self.linear1.weight[:k], self.linear1.bias[:k]))
        return F.linear(self.dropout(hidden), self.linear2.weight[:, :k], self.linear2.bias)


class ConvolutionModule(nn.Module):
    """Pointwise conv + GLU, depthwise conv, normalisation, SiLU, pointwise conv.

    Args:
        d_model: channels.
        kernel_size: odd depthwise kernel size.
        norm: "batchnorm" (the Conformer paper's choice; statistics over batch and time
            make early training markedly faster here) or "layernorm" (per frame, no
            running statistics).
    """

    def __init__(self, d_model: int, kernel_size: int = 31, norm: str = "batchnorm"):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        if norm not in ("batchnorm", "layernorm"):
            raise ValueError(f"conv-module norm must be 'batchnorm' or 'layernorm', got {norm!r}")
        self.pointwise1 = nn.Conv1d(d_model, 2 * d_model, 1)
        self.depthwise = nn.Conv1d(d_model, d_model, kernel_size, padding=kernel_size // 2, groups=d_model)
        self.norm_type = norm
        self.norm = nn.BatchNorm1d(d_model) if norm == "batchnorm" else nn.LayerNorm(d_model)
        self.pointwise2 = nn.Conv1d(d_model, d_model, 1)

    def forward(self, x: torch.Tensor, pad_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Apply the module.

        Args:
            x: (N, T, d_model).
            pad_mask: (N, T) bool, True at padding; padded frames are zeroed before the
                depthwise conv so they cannot leak into valid frames.
        Returns:
            (N, T, d_model).
        """
        y = F.glu(self.pointwise1(x.transpose(1, 2)), dim=1)  # (N, C, T)
        if pad_mask is not None:
            y = y.masked_fill(pad_mask[:, None, :], 0.0)
        y = self.depthwise(y)
        if self.norm_type == "batchnorm":
            y = F.silu(self.norm(y))
        else:
            y = F.silu(self.norm(y.transpose(1, 2))).transpose(1, 2)
        return self.pointwise2(y).transpose(1, 2)


class ConformerLayer(nn.Module):
    """One Conformer block (pre-norm residual sub-blocks).

    Args:
        d_model: model dimension.
        num_heads: attention heads.
        ffn_dim: hidden units of each macaron FFN.
        kernel_size: depthwise convolution kernel.
        dropout: residual dropout.
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        ffn_dim: int,
        kernel_size: int,
        dropout: float = 0.1,
        conv_norm: str = "batchnorm",
    ):
        super().__init__()
        self.ff_macaron = FeedForward(d_model, ffn_dim, dropout)
        self.self_attn = RelPositionMultiheadAttention(d_model, num_heads, dropout=0.0)
        self.conv = ConvolutionModule(d_model, kernel_size, conv_norm)
        self.ff = FeedForward(d_model, ffn_dim, dropout)
        self.norm_ff_macaron = nn.LayerNorm(d_model)
        self.norm_mha = nn.LayerNorm(d_model)
        self.norm_conv = nn.LayerNorm(d_model)
        self.norm_ff = nn.LayerNorm(d_model)
        self.norm_final = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        pos_emb: torch.Tensor,
        pad_mask: Optional[torch.Tensor] = None,
        ffn_ratio: float = 1.0,
    ) -> torch.Tensor:
        """Apply the block.

        Args:
            x: (N, T, d_model).
            pos_emb: (1, 2T-1, d_model).
            pad_mask: (N, T) bool, True at padding.
            ffn_ratio: FFN width fraction used by both macaron FFNs.
        Returns:
            (N, T, d_model).
        """
        x = x + 0.5 * self.dropout(self.ff_macaron(self.norm_ff_macaron(x), ffn_ratio))
        x = x + self.dropout(self.self_attn(self.norm_mha(x), pos_emb, pad_mask))
        x = x + self.dropout(self.conv(self.norm_conv(x), pad_mask))
        x = x + 0.5 * self.dropout(self.ff(self.norm_ff(x), ffn_ratio))
        return self.norm_final(x)


class ConformerEncoder(nn.Module):
    """Subsampling front-end, a stack of Conformer layers and a shared output norm.

    Args:
        num_features: input feature dimension.
        d_model: model dimension (the encoder output dimension).
        num_layers: number of Conformer layers.
        num_heads: attention heads.
        ffn_dim: FFN hidden units.
        kernel_size: convolution-module kernel.
        dropout: dropout rate.
        subsampling_channels: channels of the two subsampling convolutions.
        conv_norm: normalisation of the convolution modules ("batchnorm" or "layernorm").
    """

    def __init__(
        self,
        num_features: int = 80,
        d_model: int = 144,
        num_layers: int = 6,
        num_heads: int = 4,
        ffn_dim: int = 576,
        kernel_size: int = 15,
        dropout: float = 0.1,
        subsampling_channels=(8, 32),
        conv_norm: str = "batchnorm",
    ):
        super().__init__()
        self.d_model = d_model
        self.num_layers = num_layers
        self.embed = Conv2dSubsampling(num_features, d_model, subsampling_channels, dropout)
        self.pos_enc = RelPositionalEncoding(d_model, dropout)
        self.layers = nn.ModuleList(
            ConformerLayer(d_model, num_heads, ffn_dim, kernel_size, dropout, conv_norm)
            for _ in range(num_layers)
        )
        self.output_norm = nn.LayerNorm(d_model)

    def forward(
        self, x: torch.Tensor, x_lens: torch.Tensor, subnet: SubnetConfig = FULL
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Encode.

        Args:
            x: (N, T, num_features) features.
            x_lens: (N,) valid frame counts.
            subnet: which layers (1..depth) and FFN width to run.
        Returns:
            (encoder_out, encoder_out_lens): (N, T', d_model) and (N,).
        """
        subnet = subnet.resolved(self.num_layers)
        x, x_lens = self.embed(utterance_cmvn(x, x_lens), x_lens)
        pad_mask = make_pad_mask(x_lens, x.size(1))
        pos_emb = self.pos_enc(x.size(1), device=x.device, dtype=x.dtype)
        for i, layer in enumerate(self.layers[: subnet.depth]):
            x = layer(x, pos_emb, pad_mask, subnet.layer_ratio(i))
        return self.output_norm(x), x_lens
