"""Conformer encoder whose depth, FFN width and weight precision are chosen per call.

Layer layout (Gulati et al., 2020): half-step macaron FFN, relative-position
self-attention, convolution module, half-step FFN, layer norm. Encoder linear and
convolution weights are float masters quantized on the fly at the calling subnet's
bit-width (``allinone.quant``).

The convolution module's BatchNorm is the one component whose state depends on the
subnet: its running statistics summarise the activations of whichever network produced
them. It therefore keeps one set of running statistics per subnet of the training grid
(the affine scale and shift stay shared); ``conv_norm="layernorm"`` avoids running
statistics altogether.

Weight-tied unfolding (``allinone.unfold``) runs some blocks several times. Each
occurrence of a block sees different activations, so it also keeps its own BatchNorm
statistics (slot key ``"<subnet>@<k>"``); optionally (``unfold_relax``) each occurrence
after the first gets a learnable per-channel gain and bias on the block output, a
relaxation of the tying that costs ``2 * d_model`` parameters per occurrence.
"""

from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from allinone.nn.attention import RelPositionalEncoding, RelPositionMultiheadAttention
from allinone.nn.normalize import utterance_cmvn
from allinone.nn.subsampling import Conv2dSubsampling, subsampled_lengths
from allinone.quant.annealing import Annealing
from allinone.quant.layers import QConv1d, QLinear
from allinone.subnet import FLOAT_BITS, FULL, SubnetConfig, SubnetError
from allinone.unfold import occurrence_key, occurrences

LayerBits = Dict[str, int]  # bit-width per weight class of one layer ("ffn", "attn", "conv")


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
        self.linear1 = QLinear(d_model, ffn_dim)
        self.linear2 = QLinear(ffn_dim, d_model)
        self.dropout = nn.Dropout(dropout)

    def hidden_units(self, ratio: float) -> int:
        """Number of hidden units used at width ``ratio`` (at least one)."""
        return max(1, int(round(self.ffn_dim * ratio)))

    def forward(
        self,
        x: torch.Tensor,
        ratio: float = 1.0,
        bits: int = FLOAT_BITS,
        annealing: Optional[Annealing] = None,
    ) -> torch.Tensor:
        """Apply the FFN.

        Args:
            x: (N, T, d_model).
            ratio: fraction of hidden units to use, in (0, 1].
            bits: weight bit-width.
            annealing: quantizer annealing state of this step (None: not annealing).
        Returns:
            (N, T, d_model).
        """
        k = self.hidden_units(ratio)
        w1 = self.linear1.quantized_weight(bits, out_units=k, annealing=annealing)
        w2 = self.linear2.quantized_weight(bits, in_units=k, annealing=annealing)
        hidden = F.silu(F.linear(x, w1, self.linear1.bias[:k]))
        return F.linear(self.dropout(hidden), w2, self.linear2.bias)


class SubnetBatchNorm(nn.Module):
    """BatchNorm over channels with shared affine parameters and per-subnet running statistics.

    Args:
        channels: C.
        num_slots: number of independent running-statistics sets (one per subnet).
        momentum, eps: as in ``nn.BatchNorm1d``.
    """

    def __init__(self, channels: int, num_slots: int = 1, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(num_slots, channels))
        self.register_buffer("running_var", torch.ones(num_slots, channels))
        self.momentum = momentum
        self.eps = eps

    def forward(self, x: torch.Tensor, slot: int = 0) -> torch.Tensor:
        """Normalise x: (N, C, T) with batch statistics (training) or slot ``slot``'s running ones."""
        # Indexing a row gives a view, so the in-place running-stat update lands in the buffer.
        return F.batch_norm(
            x,
            self.running_mean[slot],
            self.running_var[slot],
            self.weight,
            self.bias,
            self.training,
            self.momentum,
            self.eps,
        )


class ConvolutionModule(nn.Module):
    """Pointwise conv + GLU, depthwise conv, normalisation, SiLU, pointwise conv.

    Args:
        d_model: channels.
        kernel_size: odd depthwise kernel size.
        norm: "batchnorm" (the Conformer paper's choice; statistics over batch and time
            make early training markedly faster here) or "layernorm" (per frame, no
            running statistics).
        norm_slots: BatchNorm running-statistics sets (one per subnet of a nested model).
    """

    def __init__(self, d_model: int, kernel_size: int = 31, norm: str = "batchnorm", norm_slots: int = 1):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        if norm not in ("batchnorm", "layernorm"):
            raise ValueError(f"conv-module norm must be 'batchnorm' or 'layernorm', got {norm!r}")
        self.pointwise1 = QConv1d(d_model, 2 * d_model, 1)
        self.depthwise = QConv1d(d_model, d_model, kernel_size, padding=kernel_size // 2, groups=d_model)
        self.norm_type = norm
        self.norm = SubnetBatchNorm(d_model, norm_slots) if norm == "batchnorm" else nn.LayerNorm(d_model)
        self.pointwise2 = QConv1d(d_model, d_model, 1)

    def forward(
        self,
        x: torch.Tensor,
        pad_mask: Optional[torch.Tensor] = None,
        bits: int = FLOAT_BITS,
        norm_slot: int = 0,
        annealing: Optional[Annealing] = None,
    ) -> torch.Tensor:
        """Apply the module.

        Args:
            x: (N, T, d_model).
            pad_mask: (N, T) bool, True at padding; padded frames are zeroed before the
                depthwise conv so they cannot leak into valid frames.
            bits: weight bit-width of the three convolutions.
            norm_slot: which BatchNorm running statistics to use and update.
            annealing: quantizer annealing state of this step (None: not annealing).
        Returns:
            (N, T, d_model).
        """
        y = F.glu(self.pointwise1(x.transpose(1, 2), bits, annealing), dim=1)  # (N, C, T)
        if pad_mask is not None:
            y = y.masked_fill(pad_mask[:, None, :], 0.0)
        y = self.depthwise(y, bits, annealing)
        if self.norm_type == "batchnorm":
            y = F.silu(self.norm(y, norm_slot))
        else:
            y = F.silu(self.norm(y.transpose(1, 2))).transpose(1, 2)
        return self.pointwise2(y, bits, annealing).transpose(1, 2)


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
        norm_slots: int = 1,
    ):
        super().__init__()
        self.ff_macaron = FeedForward(d_model, ffn_dim, dropout)
        self.self_attn = RelPositionMultiheadAttention(d_model, num_heads, dropout=0.0)
        self.conv = ConvolutionModule(d_model, kernel_size, conv_norm, norm_slots)
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
        bits: Optional[LayerBits] = None,
        norm_slot: int = 0,
        annealing: Optional[Annealing] = None,
    ) -> torch.Tensor:
        """Apply the block.

        Args:
            x: (N, T, d_model).
            pos_emb: (1, 2T-1, d_model).
            pad_mask: (N, T) bool, True at padding.
            ffn_ratio: FFN width fraction used by both macaron FFNs.
            bits: bit-width per weight class ("ffn", "attn", "conv"); missing = float.
            norm_slot: the convolution module's BatchNorm statistics set.
            annealing: quantizer annealing state of this step (None: not annealing).
        Returns:
            (N, T, d_model).
        """
        bits = bits or {}
        b_ffn, b_attn, b_conv = (bits.get(c, FLOAT_BITS) for c in ("ffn", "attn", "conv"))
        a = annealing
        x = x + 0.5 * self.dropout(self.ff_macaron(self.norm_ff_macaron(x), ffn_ratio, b_ffn, a))
        x = x + self.dropout(self.self_attn(self.norm_mha(x), pos_emb, pad_mask, b_attn, a))
        x = x + self.dropout(self.conv(self.norm_conv(x), pad_mask, b_conv, norm_slot, a))
        x = x + 0.5 * self.dropout(self.ff(self.norm_ff(x), ffn_ratio, b_ffn, a))
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
        norm_subnets: keys of the BatchNorm running-statistics sets: one per subnet of
            the training grid, plus ``"<subnet>@<k>"`` for the k-th repeat of a block in an
            unfolded subnet; empty = one shared set, for single-system models.
        unfold_relax: repeats per block (occurrences after the first) that get their own
            output gain and bias; 0 = exact weight tying.
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
        norm_subnets: Sequence[str] = (),
        unfold_relax: int = 0,
    ):
        super().__init__()
        self.d_model = d_model
        self.num_layers = num_layers
        self.conv_norm = conv_norm
        self.norm_slots = {name: i for i, name in enumerate(norm_subnets)}
        self.embed = Conv2dSubsampling(num_features, d_model, subsampling_channels, dropout)
        self.pos_enc = RelPositionalEncoding(d_model, dropout)
        self.layers = nn.ModuleList(
            ConformerLayer(
                d_model, num_heads, ffn_dim, kernel_size, dropout, conv_norm, max(1, len(norm_subnets))
            )
            for _ in range(num_layers)
        )
        self.output_norm = nn.LayerNorm(d_model)
        self.unfold_relax = unfold_relax
        if unfold_relax > 0:
            # (block, repeat, channel); identity at initialisation, so relaxing starts tied.
            self.unfold_gain = nn.Parameter(torch.ones(num_layers, unfold_relax, d_model))
            self.unfold_bias = nn.Parameter(torch.zeros(num_layers, unfold_relax, d_model))

    def norm_slot(self, subnet: SubnetConfig, occurrence: int = 0) -> int:
        """BatchNorm statistics set of a resolved ``subnet`` at the ``occurrence``-th use of a block.

        Returns 0 when the model keeps a single set.
        """
        if not self.norm_slots or self.conv_norm != "batchnorm":
            return 0
        key = occurrence_key(subnet.name, occurrence)
        if key not in self.norm_slots:
            raise SubnetError(
                f"subnet {subnet.name} has no BatchNorm statistics in this model; it was trained "
                f"with: {', '.join(k for k in self.norm_slots if '@' not in k)}"
            )
        return self.norm_slots[key]

    def _relax(self, x: torch.Tensor, block: int, occurrence: int, subnet: SubnetConfig) -> torch.Tensor:
        """Per-occurrence output affine of an unfolded block (identity for first uses)."""
        if occurrence == 0 or self.unfold_relax == 0:
            return x
        if occurrence > self.unfold_relax:
            raise SubnetError(
                f"subnet {subnet.name} runs block {block} {occurrence + 1} times; this model relaxes "
                f"at most {self.unfold_relax + 1} uses per block"
            )
        return x * self.unfold_gain[block, occurrence - 1] + self.unfold_bias[block, occurrence - 1]

    def output_lengths(self, feature_lens: torch.Tensor) -> torch.Tensor:
        """(N,) encoder frame counts for (N,) input frame counts (the subsampling's)."""
        return subsampled_lengths(feature_lens)

    def forward(
        self,
        x: torch.Tensor,
        x_lens: torch.Tensor,
        subnet: SubnetConfig = FULL,
        annealing: Optional[Annealing] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Encode.

        Args:
            x: (N, T, num_features) features.
            x_lens: (N,) valid frame counts.
            subnet: which layers (1..depth, or its unfolding schedule), FFN width and weight
                bit-widths to run.
            annealing: quantizer annealing state of this training step (GQ sharpness,
                Gumbel temperature); None: not annealing (evaluation runs the deployed
                quantizers, training the layers' defaults).
        Returns:
            (encoder_out, encoder_out_lens): (N, T', d_model) and (N,).
        """
        schedule = subnet.schedule(self.num_layers)
        subnet = subnet.resolved(self.num_layers)
        bits = {c: subnet.bits_for(c) for c in ("ffn", "attn", "conv")}
        x, x_lens = self.embed(utterance_cmvn(x, x_lens), x_lens, subnet.bits_for("subsampling"), annealing)
        pad_mask = make_pad_mask(x_lens, x.size(1))
        pos_emb = self.pos_enc(x.size(1), device=x.device, dtype=x.dtype)
        for i, (block, occurrence) in enumerate(zip(schedule, occurrences(schedule))):
            slot = self.norm_slot(subnet, occurrence)
            x = self.layers[block](x, pos_emb, pad_mask, subnet.layer_ratio(i), bits, slot, annealing)
            x = self._relax(x, block, occurrence, subnet)
        return self.output_norm(x), x_lens
