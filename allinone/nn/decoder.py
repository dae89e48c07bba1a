"""Stateless transducer prediction network: an embedding plus a small context convolution."""

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from allinone.quant.annealing import Annealing
from allinone.quant.layers import QConv1d, run_at_bits
from allinone.subnet import FLOAT_BITS


class StatelessDecoder(nn.Module):
    """Prediction network that sees only the last ``context_size`` tokens.

    Instead of an LSTM, the previous tokens are embedded and mixed by a depthwise
    1-D convolution over the context window (Ghodsi et al., 2020), so the decoder
    state is just the token history and beam search needs no hidden states.

    Args:
        vocab_size: number of output tokens, blank included.
        decoder_dim: embedding and output dimension.
        blank_id: id of the blank token; also used to left-pad the history.
        context_size: number of previous tokens the decoder sees (1 = bigram).
        quantized: build the context convolution as ``QConv1d`` so it can run at a subnet's
            bit-width; the embedding stays float either way.
    """

    def __init__(
        self,
        vocab_size: int,
        decoder_dim: int,
        blank_id: int = 0,
        context_size: int = 2,
        quantized: bool = False,
    ):
        super().__init__()
        if context_size < 1:
            raise ValueError(f"context_size must be >= 1, got {context_size}")
        self.vocab_size = vocab_size
        self.decoder_dim = decoder_dim
        self.blank_id = blank_id
        self.context_size = context_size
        self.embedding = nn.Embedding(vocab_size, decoder_dim)
        if context_size > 1:
            self.conv = (QConv1d if quantized else nn.Conv1d)(
                decoder_dim, decoder_dim, kernel_size=context_size, groups=decoder_dim // 4, bias=False
            )
        else:
            self.conv = None

    def forward(
        self,
        y: torch.Tensor,
        need_pad: bool = True,
        bits: int = FLOAT_BITS,
        annealing: Optional[Annealing] = None,
    ) -> torch.Tensor:
        """Embed a token history.

        Args:
            y: (N, U) token ids. With ``need_pad`` the sequence is left-padded with
               ``context_size - 1`` blanks so the output has one frame per input token;
               without it, ``U`` must be ``context_size`` and the output has one frame
               (the beam-search case).
            need_pad: see above.
            bits: weight bit-width of the calling subnet's heads (quantized convolutions only).
            annealing: quantizer annealing state of this step (None: not annealing).
        Returns:
            (N, U, decoder_dim) when ``need_pad``, else (N, 1, decoder_dim).
        """
        emb = self.embedding(y.clamp(min=0)) * (y >= 0).unsqueeze(-1)
        if self.conv is None:
            return F.relu(emb)
        emb = emb.permute(0, 2, 1)
        if need_pad:
            emb = F.pad(emb, (self.context_size - 1, 0))
        elif emb.size(-1) != self.context_size:
            raise ValueError(
                f"without padding the history must hold exactly {self.context_size} tokens, "
                f"got {emb.size(-1)}"
            )
        return F.relu(run_at_bits(self.conv, emb, bits, annealing).permute(0, 2, 1))
