"""Unidirectional (optionally projected) LSTM encoder whose weights quantize like every other layer.

The on-device RNN-T encoder of the General Quantizer paper: the Conformer's subsampling
front-end, then a stack of LSTM layers with a projection of the hidden state (LSTMP, Sak
et al., 2014) and a final LayerNorm. Each layer holds its three weight matrices as
``QLinear`` layers (``lstm_ih``: input-to-hidden, ``lstm_hh``: hidden-to-hidden,
``lstm_proj``: the projection), so they quantize through the repository's ``Quantizer``
interface at any bit-width down to 1 bit, take part in one-stage mixed precision and bit
maps per matrix, and pack into ``.aio`` files like any other weight. Quantization is per
weight matrix, the four gates together: one scale (LSQ) or codebook (GQ) per matrix, or
one scale per gate row with ``quant_granularity=channel``. The recurrence is torch's own
LSTM kernel, called with the quantized matrices, so a 32-bit layer is ``nn.LSTM`` exactly.

Subnets select the depth (the first ``d`` layers) and the bit-widths of weight class
``rnn`` (LSTM matrices) and ``subsampling``; FFN width and unfolding do not apply.
The encoder is streaming-capable: the layers look only backwards, the features are
normalised by a running (causal) mean, and the subsampling front-end looks 6 frames ahead.
"""

from typing import Optional, Tuple

import torch
import torch.nn as nn

from allinone.nn.subsampling import Conv2dSubsampling, subsampled_lengths
from allinone.quant.annealing import Annealing
from allinone.quant.layers import QLinear
from allinone.subnet import FULL, SubnetConfig, SubnetError

RNN_CLASS = "rnn"


def causal_cmn(x: torch.Tensor, x_lens: torch.Tensor) -> torch.Tensor:
    """Subtract from every frame the mean of the frames up to and including it.

    The streaming counterpart of per-utterance CMVN: it removes the channel and level
    offset of the log-mel energies without looking ahead. Padding is set to zero.

    Args:
        x: (N, T, F) features.
        x_lens: (N,) valid frame counts.
    Returns:
        (N, T, F).
    """
    t = torch.arange(1, x.size(1) + 1, device=x.device, dtype=x.dtype)
    mask = (torch.arange(x.size(1), device=x.device)[None, :] < x_lens[:, None]).unsqueeze(-1)
    running_mean = x.cumsum(1) / t[None, :, None]
    return (x - running_mean) * mask


class LstmLayer(nn.Module):
    """One LSTM(P) layer with quantizable weight matrices.

    Args:
        input_size: input dimension.
        hidden_size: cell and gate dimension.
        proj_size: projected hidden-state dimension (0: no projection, the state is
            ``hidden_size`` wide).
    """

    def __init__(self, input_size: int, hidden_size: int, proj_size: int = 0):
        super().__init__()
        state = proj_size or hidden_size
        self.hidden_size, self.proj_size = hidden_size, proj_size
        self.lstm_ih = QLinear(input_size, 4 * hidden_size)
        self.lstm_hh = QLinear(state, 4 * hidden_size)
        self.lstm_proj = QLinear(hidden_size, proj_size, bias=False) if proj_size else None
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """``nn.LSTM``'s initialisation: every weight and bias uniform in +-1/sqrt(hidden_size)."""
        bound = self.hidden_size**-0.5
        for m in (self.lstm_ih, self.lstm_hh, self.lstm_proj):
            if m is None:
                continue
            m.weight.uniform_(-bound, bound)
            if m.bias is not None:
                m.bias.uniform_(-bound, bound)
            m.reset_steps()  # the quantizer follows the new weight

    @property
    def output_size(self) -> int:
        return self.proj_size or self.hidden_size

    def flat_weights(self, bits: int, annealing: Optional[Annealing] = None) -> list:
        """``nn.LSTM``'s weight list for one layer (w_ih, w_hh, b_ih, b_hh[, w_hr]) at ``bits``."""
        weights = [
            self.lstm_ih.quantized_weight(bits, annealing=annealing),
            self.lstm_hh.quantized_weight(bits, annealing=annealing),
            self.lstm_ih.bias,
            self.lstm_hh.bias,
        ]
        if self.lstm_proj is not None:
            weights.append(self.lstm_proj.quantized_weight(bits, annealing=annealing))
        return weights

    def forward(self, x: torch.Tensor, bits: int, annealing: Optional[Annealing] = None) -> torch.Tensor:
        """x: (N, T, input_size) -> (N, T, output_size), from a zero state.

        Frames after an utterance's end do not reach its earlier outputs (the recurrence
        runs forwards), so padded batches need no packing.
        """
        n = x.size(0)
        h0 = x.new_zeros(1, n, self.output_size)
        c0 = x.new_zeros(1, n, self.hidden_size)
        # torch's fused LSTM kernel (what nn.LSTM.forward calls) with the quantized matrices
        out, _, _ = torch._VF.lstm(
            x, (h0, c0), self.flat_weights(bits, annealing), True, 1, 0.0, self.training, False, True
        )
        return out


class LstmEncoder(nn.Module):
    """Subsampling front-end, ``num_layers`` unidirectional LSTM(P) layers and a LayerNorm.

    Args:
        num_features: input feature dimension.
        d_model: the subsampling output and the layers' output (projection) dimension.
        num_layers: LSTM layers.
        hidden_size: cell dimension of every layer (== d_model: no projection).
        dropout: between layers and after the front-end.
        subsampling_channels: channels of the two subsampling convolutions.
    """

    def __init__(
        self,
        num_features: int = 80,
        d_model: int = 144,
        num_layers: int = 4,
        hidden_size: int = 320,
        dropout: float = 0.1,
        subsampling_channels=(8, 32),
    ):
        super().__init__()
        self.d_model, self.num_layers = d_model, num_layers
        self.norm_slots: dict = {}  # no BatchNorm: one behaviour for every subnet
        self.embed = Conv2dSubsampling(num_features, d_model, subsampling_channels, dropout)
        proj = 0 if hidden_size == d_model else d_model
        self.layers = nn.ModuleList(LstmLayer(d_model, hidden_size, proj) for _ in range(num_layers))
        self.dropout = nn.Dropout(dropout)
        self.output_norm = nn.LayerNorm(d_model)

    def norm_slot(self, subnet: SubnetConfig, occurrence: int = 0) -> int:
        """BatchNorm statistics set of a subnet: always 0 (this encoder has none)."""
        return 0

    def check_subnet(self, subnet: SubnetConfig) -> SubnetConfig:
        """``subnet`` resolved against this encoder.

        Raises:
            SubnetError: FFN width or unfolding, which an LSTM encoder does not have.
        """
        if subnet.unfold is not None:
            raise SubnetError(f"subnet {subnet.name}: an LSTM encoder cannot be unfolded")
        if subnet.ffn_ratio != 1.0:
            raise SubnetError(f"subnet {subnet.name}: an LSTM encoder has no FFN width to slice (use w1.0)")
        return subnet.resolved(self.num_layers)

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
        """Encode with layers 1..depth of ``subnet`` at its "rnn" bit-width.

        Args:
            x: (N, T, num_features) features.
            x_lens: (N,) valid frame counts.
        Returns:
            (encoder_out, encoder_out_lens): (N, T', d_model) and (N,).
        """
        subnet = self.check_subnet(subnet)
        x, x_lens = self.embed(causal_cmn(x, x_lens), x_lens, subnet.bits_for("subsampling"), annealing)
        bits = subnet.bits_for(RNN_CLASS)
        for i in range(subnet.depth):
            x = self.layers[i](x, bits, annealing)
            if i < subnet.depth - 1:
                x = self.dropout(x)
        return self.output_norm(x), x_lens
