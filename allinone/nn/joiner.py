"""Transducer joint network."""

import torch
import torch.nn as nn


class Joiner(nn.Module):
    """Combines encoder and decoder frames into output-token logits.

    ``encoder_proj`` and ``decoder_proj`` are exposed so that search and the pruned
    loss can project each side once and call the joiner with ``project_input=False``.

    Args:
        encoder_dim: encoder output dimension.
        decoder_dim: decoder output dimension.
        joiner_dim: hidden dimension of the joint network.
        vocab_size: number of output tokens, blank included.
    """

    def __init__(self, encoder_dim: int, decoder_dim: int, joiner_dim: int, vocab_size: int):
        super().__init__()
        self.encoder_proj = nn.Linear(encoder_dim, joiner_dim)
        self.decoder_proj = nn.Linear(decoder_dim, joiner_dim)
        self.output_linear = nn.Linear(joiner_dim, vocab_size)

    def forward(
        self, encoder_out: torch.Tensor, decoder_out: torch.Tensor, project_input: bool = True
    ) -> torch.Tensor:
        """Joint logits.

        Args:
            encoder_out: (..., encoder_dim), or (..., joiner_dim) if already projected.
            decoder_out: (..., decoder_dim), or (..., joiner_dim) if already projected;
                broadcastable against ``encoder_out``.
            project_input: apply ``encoder_proj``/``decoder_proj`` first.
        Returns:
            (..., vocab_size) unnormalised logits.
        """
        if project_input:
            encoder_out = self.encoder_proj(encoder_out)
            decoder_out = self.decoder_proj(decoder_out)
        return self.output_linear(torch.tanh(encoder_out + decoder_out))
