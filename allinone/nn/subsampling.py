"""Convolutional 4x frame-rate reduction in front of the Conformer."""

from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from allinone.quant.annealing import Annealing
from allinone.quant.layers import QConv2d, QLinear
from allinone.subnet import FLOAT_BITS


def subsampled_lengths(x_lens: torch.Tensor) -> torch.Tensor:
    """Frame counts after ``Conv2dSubsampling`` (two 3x3 convs with stride 2, no padding).

    Args:
        x_lens: (N,) input frame counts.
    Returns:
        (N,) output frame counts, ``((T - 1) // 2 - 1) // 2``.
    """
    return ((x_lens - 1) // 2 - 1) // 2


class Conv2dSubsampling(nn.Module):
    """Two strided 2-D convolutions over (time, frequency), then a projection to ``d_model``.

    The channel counts stay narrow on purpose: with ``d_model`` channels the front-end
    dominates CPU training time (measured about 20x slower) for no accuracy gain here.

    Args:
        num_features: input feature dimension (e.g. 80 fbank bins).
        d_model: output dimension.
        channels: output channels of the two convolutions.
        dropout: dropout after the projection.
    """

    def __init__(self, num_features: int, d_model: int, channels=(8, 32), dropout: float = 0.1):
        super().__init__()
        c1, c2 = channels
        self.conv1 = QConv2d(1, c1, kernel_size=3, stride=2)
        self.conv2 = QConv2d(c1, c2, kernel_size=3, stride=2)
        freq_out = ((num_features - 1) // 2 - 1) // 2
        self.out = QLinear(c2 * freq_out, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        x_lens: torch.Tensor,
        bits: int = FLOAT_BITS,
        annealing: Optional[Annealing] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Subsample.

        Args:
            x: (N, T, num_features) features.
            x_lens: (N,) valid frame counts.
            bits: weight bit-width of the convolutions and the projection.
            annealing: quantizer annealing state of this step (None: not annealing).
        Returns:
            (y, y_lens): (N, T', d_model) and (N,), with T' = ((T - 1) // 2 - 1) // 2.
        """
        y = F.silu(self.conv1(x.unsqueeze(1), bits, annealing))
        y = F.silu(self.conv2(y, bits, annealing))  # (N, C, T', F')
        n, c, t, f = y.shape
        y = self.out(y.permute(0, 2, 1, 3).reshape(n, t, c * f), bits, annealing)
        return self.dropout(y), subsampled_lengths(x_lens)
