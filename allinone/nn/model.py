"""Conformer transducer: encoder, stateless decoder, joiner and the pruned RNN-T loss."""

from dataclasses import asdict, dataclass
from typing import List, Tuple

import torch
import torch.nn as nn

from allinone.losses import get_rnnt_backend
from allinone.nn.conformer import ConformerEncoder
from allinone.nn.decoder import StatelessDecoder
from allinone.nn.joiner import Joiner
from allinone.subnet import FULL, SubnetConfig


@dataclass
class ModelConfig:
    """Hyper-parameters of ``Transducer``; stored in every checkpoint."""

    vocab_size: int
    blank_id: int = 0
    num_features: int = 80
    d_model: int = 144
    num_layers: int = 6
    num_heads: int = 4
    ffn_dim: int = 576
    kernel_size: int = 15
    dropout: float = 0.1
    decoder_dim: int = 256
    joiner_dim: int = 256
    context_size: int = 2

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        return cls(**d)


def pad_labels(labels: List[List[int]], pad_value: int, device=None) -> torch.Tensor:
    """Right-pad label sequences.

    Args:
        labels: N lists of token ids.
        pad_value: filler id.
    Returns:
        (N, max_len) long tensor.
    """
    max_len = max((len(seq) for seq in labels), default=0)
    out = torch.full((len(labels), max_len), pad_value, dtype=torch.long)
    for i, seq in enumerate(labels):
        out[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    return out.to(device)


class Transducer(nn.Module):
    """Stateless RNN-T with a trivial-joiner "simple" loss that picks the pruning ranges.

    Args:
        config: model hyper-parameters.
        loss_backend: "torch" (default, pure PyTorch) or "k2" (needs ``import k2``).
    """

    def __init__(self, config: ModelConfig, loss_backend: str = "torch"):
        super().__init__()
        self.config = config
        self.encoder = ConformerEncoder(
            num_features=config.num_features,
            d_model=config.d_model,
            num_layers=config.num_layers,
            num_heads=config.num_heads,
            ffn_dim=config.ffn_dim,
            kernel_size=config.kernel_size,
            dropout=config.dropout,
        )
        self.decoder = StatelessDecoder(
            config.vocab_size, config.decoder_dim, config.blank_id, config.context_size
        )
        self.joiner = Joiner(config.d_model, config.decoder_dim, config.joiner_dim, config.vocab_size)
        self.simple_am_proj = nn.Linear(config.d_model, config.vocab_size)
        self.simple_lm_proj = nn.Linear(config.decoder_dim, config.vocab_size)
        get_rnnt_backend(loss_backend)  # fail at construction, not at the first step
        self.loss_backend = loss_backend

    @property
    def _rnnt(self):
        # Looked up on use: a module attribute would break deepcopy/pickle of the model.
        return get_rnnt_backend(self.loss_backend)

    def encode(
        self, features: torch.Tensor, feature_lens: torch.Tensor, subnet: SubnetConfig = FULL
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Run the encoder of ``subnet``.

        Args:
            features: (N, T, num_features).
            feature_lens: (N,).
        Returns:
            (encoder_out, encoder_out_lens): (N, T', d_model), (N,).
        """
        return self.encoder(features, feature_lens, subnet)

    def forward(
        self,
        features: torch.Tensor,
        feature_lens: torch.Tensor,
        labels: List[List[int]],
        prune_range: int = 5,
        am_scale: float = 0.0,
        lm_scale: float = 0.25,
        subnet: SubnetConfig = FULL,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Per-utterance simple and pruned transducer losses.

        Args:
            features: (N, T, num_features).
            feature_lens: (N,).
            labels: N token-id lists (no blanks).
            prune_range: symbols kept per frame in the pruned loss.
            am_scale, lm_scale: weights of the am-only / lm-only smoothing terms of the
                simple loss.
            subnet: encoder slice to train.
        Returns:
            (simple_loss, pruned_loss): each (N,), summed over each utterance's frames.
        """
        encoder_out, encoder_out_lens = self.encode(features, feature_lens, subnet)
        return self.transducer_loss(encoder_out, encoder_out_lens, labels, prune_range, am_scale, lm_scale)

    def transducer_loss(
        self,
        encoder_out: torch.Tensor,
        encoder_out_lens: torch.Tensor,
        labels: List[List[int]],
        prune_range: int = 5,
        am_scale: float = 0.0,
        lm_scale: float = 0.25,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Simple and pruned losses of given encoder frames (decoder and joiner included).

        Args:
            encoder_out: (N, T, d_model).
            encoder_out_lens: (N,).
            labels, prune_range, am_scale, lm_scale: as in ``forward``.
        Returns:
            (simple_loss, pruned_loss): each (N,).
        """
        device = encoder_out.device
        blank = self.config.blank_id
        label_lens = torch.tensor([len(y) for y in labels], dtype=torch.long, device=device)
        symbols = pad_labels(labels, blank, device)
        decoder_in = pad_labels([[blank] + y for y in labels], blank, device)
        decoder_out = self.decoder(decoder_in, need_pad=True)  # (N, S+1, decoder_dim)

        boundary = torch.zeros(len(labels), 4, dtype=torch.long, device=device)
        boundary[:, 2] = label_lens
        boundary[:, 3] = encoder_out_lens

        # The trivial joiner is cheap over the whole (T, S) lattice; its occupation
        # probabilities tell the full joiner which few symbols per frame matter.
        simple_loss, (px_grad, py_grad) = self._rnnt.rnnt_loss_smoothed(
            lm=self.simple_lm_proj(decoder_out).float(),
            am=self.simple_am_proj(encoder_out).float(),
            symbols=symbols,
            termination_symbol=blank,
            lm_only_scale=lm_scale,
            am_only_scale=am_scale,
            boundary=boundary,
            reduction="none",
            return_grad=True,
        )
        ranges = self._rnnt.get_rnnt_prune_ranges(px_grad, py_grad, boundary, prune_range)
        am_pruned, lm_pruned = self._rnnt.do_rnnt_pruning(
            self.joiner.encoder_proj(encoder_out), self.joiner.decoder_proj(decoder_out), ranges
        )
        logits = self.joiner(am_pruned, lm_pruned, project_input=False)
        pruned_loss = self._rnnt.rnnt_loss_pruned(
            logits.float(), symbols, ranges, blank, boundary, reduction="none"
        )
        return simple_loss, pruned_loss
