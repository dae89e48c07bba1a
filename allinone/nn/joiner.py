"""Transducer joint network."""

from typing import Optional

import torch
import torch.nn as nn

from allinone.quant.annealing import Annealing
from allinone.quant.layers import QLinear, run_at_bits
from allinone.subnet import FLOAT_BITS


class Joiner(nn.Module):
    """Combines encoder and decoder frames into output-token logits.

    ``project_encoder`` and ``project_decoder`` are exposed so that search and the pruned
    loss can project each side once and call the joiner with ``project_input=False``.

    Args:
        encoder_dim: encoder output dimension.
        decoder_dim: decoder output dimension.
        joiner_dim: hidden dimension of the joint network.
        vocab_size: number of output tokens, blank included.
        quantized: build the three linear layers as ``QLinear``, so every call can run them
            at a subnet's bit-width (``bits``); float ``nn.Linear`` layers otherwise.
    """

    def __init__(
        self, encoder_dim: int, decoder_dim: int, joiner_dim: int, vocab_size: int, quantized: bool = False
    ):
        super().__init__()
        linear = QLinear if quantized else nn.Linear
        self.encoder_proj = linear(encoder_dim, joiner_dim)
        self.decoder_proj = linear(decoder_dim, joiner_dim)
        self.output_linear = linear(joiner_dim, vocab_size)

    def project_encoder(
        self, encoder_out: torch.Tensor, bits: int = FLOAT_BITS, annealing: Optional[Annealing] = None
    ) -> torch.Tensor:
        """(..., encoder_dim) -> (..., joiner_dim)."""
        return run_at_bits(self.encoder_proj, encoder_out, bits, annealing)

    def project_decoder(
        self, decoder_out: torch.Tensor, bits: int = FLOAT_BITS, annealing: Optional[Annealing] = None
    ) -> torch.Tensor:
        """(..., decoder_dim) -> (..., joiner_dim)."""
        return run_at_bits(self.decoder_proj, decoder_out, bits, annealing)

    def forward(
        self,
        encoder_out: torch.Tensor,
        decoder_out: torch.Tensor,
        project_input: bool = True,
        bits: int = FLOAT_BITS,
        annealing: Optional[Annealing] = None,
    ) -> torch.Tensor:
        """Joint logits.

        Args:
            encoder_out: (..., encoder_dim), or (..., joiner_dim) if already projected.
            decoder_out: (..., decoder_dim), or (..., joiner_dim) if already projected;
                broadcastable against ``encoder_out``.
            project_input: apply ``encoder_proj``/``decoder_proj`` first.
            bits: weight bit-width of the calling subnet's heads (quantized joiners only).
            annealing: quantizer annealing state of this step (None: not annealing).
        Returns:
            (..., vocab_size) unnormalised logits.
        """
        if project_input:
            encoder_out = self.project_encoder(encoder_out, bits, annealing)
            decoder_out = self.project_decoder(decoder_out, bits, annealing)
        return run_at_bits(self.output_linear, torch.tanh(encoder_out + decoder_out), bits, annealing)
