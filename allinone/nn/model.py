"""Conformer transducer: encoder, stateless decoder, joiner and the pruned RNN-T loss."""

from dataclasses import asdict, dataclass, field
from typing import Dict, List, NamedTuple, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from allinone.losses import get_rnnt_backend
from allinone.losses.distill import masked_kl
from allinone.nn.conformer import ConformerEncoder
from allinone.nn.decoder import StatelessDecoder
from allinone.nn.joiner import Joiner
from allinone.nn.lstm import LstmEncoder
from allinone.nn.ssl import SSL_KINDS, SslEncoder
from allinone.quant.annealing import Annealing
from allinone.quant.layers import QLinear, configure_quantizers, run_at_bits
from allinone.quant.quantizer import QuantConfig
from allinone.subnet import FLOAT_BITS, FULL, HEAD_CLASS, MIXED_BITS, SubnetConfig, SubnetError
from allinone.utils.device import float32_region


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
    conv_norm: str = "batchnorm"
    use_transducer: bool = True
    use_ctc: bool = False
    # "conformer", or "lstm": unidirectional LSTM(P) layers (allinone.nn.lstm) with
    # lstm_hidden_size cells projected to d_model (no projection when they are equal), or
    # "wav2vec2" / "hubert": a transformers backbone on raw waveforms (allinone.nn.ssl)
    # built from ssl_config (its transformers config as a dict; hidden_size == d_model,
    # num_hidden_layers == num_layers, intermediate_size == ffn_dim).
    encoder: str = "conformer"
    lstm_hidden_size: int = 320
    ssl_config: Dict = field(default_factory=dict)
    # Subnets of the training grid; each keeps its own conv-module BatchNorm statistics.
    norm_subnets: Tuple[str, ...] = ()
    # One set of BatchNorm statistics for every subnet and unfolding repeat: pure weight
    # sharing, as the papers describe it (the default keeps a set per subnet and repeat).
    shared_norm_stats: bool = False
    # Repeats per block with their own output gain/bias in unfolded subnets (0 = exact tying).
    unfold_relax: int = 0
    # Weight quantizers of every encoder layer (allinone.quant.quantizer.QuantConfig).
    quantizer: str = "lsq"
    quant_granularity: str = "tensor"
    quant_group_size: int = 32
    gq_mu: float = 255.0
    # One-stage mixed precision: candidate bit-widths as "2,3,4,6,8" ("" = off).
    mp_candidates: str = ""
    # Quantize the weights of the decoder's context convolution, the joiner and the CTC
    # output layer at each subnet's "head" bit-width too (default: they stay float).
    quantize_heads: bool = False

    def quant_config(self) -> QuantConfig:
        cands = tuple(int(b) for b in self.mp_candidates.split(",") if b.strip())
        return QuantConfig(self.quantizer, self.quant_granularity, self.quant_group_size, self.gq_mu, cands)

    def __post_init__(self):
        if not (self.use_transducer or self.use_ctc):
            raise ValueError("the model needs a transducer head, a CTC head or both")
        if self.encoder not in ENCODERS:
            raise ValueError(f"unknown encoder {self.encoder!r}; choose from {', '.join(ENCODERS)}")
        if self.encoder in SSL_KINDS and self.ssl_config:
            sizes = {"hidden_size": self.d_model, "num_hidden_layers": self.num_layers,
                     "intermediate_size": self.ffn_dim}  # fmt: skip
            wrong = {k: self.ssl_config.get(k) for k, v in sizes.items() if self.ssl_config.get(k) != v}
            if wrong:
                raise ValueError(f"ssl_config disagrees with d_model, num_layers, ffn_dim: {wrong} ({sizes})")
        if self.quantize_heads and self.mp_candidates:
            raise ValueError(
                "one-stage mixed precision searches the encoder's bit-widths only; "
                "quantize_heads cannot be combined with mp_candidates"
            )
        self.norm_subnets = tuple(self.norm_subnets)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        return cls(**d)


ENCODERS = ("conformer", "lstm") + SSL_KINDS


def build_encoder(config: ModelConfig) -> nn.Module:
    """The encoder ``config.encoder`` names, sized by ``config``."""
    if config.encoder in SSL_KINDS:
        if not config.ssl_config:
            raise ValueError(
                f"a {config.encoder} encoder is built from its transformers config: train with "
                "--pretrained-dir (a local checkpoint directory)"
            )
        return SslEncoder(config.encoder, config.ssl_config)
    if config.encoder == "lstm":
        return LstmEncoder(
            num_features=config.num_features,
            d_model=config.d_model,
            num_layers=config.num_layers,
            hidden_size=config.lstm_hidden_size,
            dropout=config.dropout,
        )
    return ConformerEncoder(
        num_features=config.num_features,
        d_model=config.d_model,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        ffn_dim=config.ffn_dim,
        kernel_size=config.kernel_size,
        dropout=config.dropout,
        conv_norm=config.conv_norm,
        norm_subnets=config.norm_subnets,
        unfold_relax=config.unfold_relax,
    )


class DistillTargets(NamedTuple):
    """Detached output distributions of a teacher subnet, for KL distillation.

    Fields:
        lens: (N,) encoder frames.
        ranges: (N, T, R) pruning ranges of the transducer lattice (None without a transducer).
        joiner_log_probs: (N, T, R, V) joiner outputs on those ranges.
        ctc_log_probs: (N, T, V) (None without a CTC head).
    """

    lens: torch.Tensor
    ranges: Optional[torch.Tensor]
    joiner_log_probs: Optional[torch.Tensor]
    ctc_log_probs: Optional[torch.Tensor]


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
        self.encoder = build_encoder(config)
        quantized = config.quantize_heads
        self.decoder = StatelessDecoder(
            config.vocab_size, config.decoder_dim, config.blank_id, config.context_size, quantized
        )
        self.joiner = Joiner(
            config.d_model, config.decoder_dim, config.joiner_dim, config.vocab_size, quantized
        )
        # The simple-loss projections only shape training (never deployed): always float.
        self.simple_am_proj = nn.Linear(config.d_model, config.vocab_size)
        self.simple_lm_proj = nn.Linear(config.decoder_dim, config.vocab_size)
        linear = QLinear if quantized else nn.Linear
        self.ctc_output = linear(config.d_model, config.vocab_size) if config.use_ctc else None
        get_rnnt_backend(loss_backend)  # fail at construction, not at the first step
        self.loss_backend = loss_backend
        quant = config.quant_config()
        if quant != QuantConfig():
            # The layers are built with per-tensor LSQ; only other choices rebuild them, so
            # the parameter order (and with it optimizer state of older runs) is unchanged.
            configure_quantizers(self.encoder, quant)
            if quantized:
                for head in (self.decoder, self.joiner, self.ctc_output):
                    if head is not None:
                        configure_quantizers(head, quant)

    def head_bits(self, subnet: SubnetConfig) -> int:
        """Bit-width at which ``subnet`` runs the heads: its "head" class with quantized
        heads, else float.

        Raises:
            SubnetError: ``subnet`` names a head bit-width this model cannot run (float
                heads, or the mixed-precision "mix").
        """
        bits = subnet.bits_for(HEAD_CLASS)
        if not self.config.quantize_heads:
            if bits != subnet.bits:
                raise SubnetError(
                    f"subnet {subnet.name} sets the heads' bit-width, but this model keeps them "
                    "float (build it with quantize_heads=true)"
                )
            return FLOAT_BITS
        if bits == MIXED_BITS:
            raise SubnetError(f"subnet {subnet.name}: heads take a fixed bit-width (e.g. _head8), not 'mix'")
        return bits

    @property
    def _rnnt(self):
        # Looked up on use: a module attribute would break deepcopy/pickle of the model.
        return get_rnnt_backend(self.loss_backend)

    def encode(
        self,
        features: torch.Tensor,
        feature_lens: torch.Tensor,
        subnet: SubnetConfig = FULL,
        annealing: Optional[Annealing] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Run the encoder of ``subnet``.

        Args:
            features: (N, T, num_features).
            feature_lens: (N,).
            annealing: quantizer annealing state of this training step (None: not annealing).
        Returns:
            (encoder_out, encoder_out_lens): (N, T', d_model), (N,).
        """
        return self.encoder(features, feature_lens, subnet, annealing)

    def forward(
        self,
        features: torch.Tensor,
        feature_lens: torch.Tensor,
        labels: List[List[int]],
        prune_range: int = 5,
        am_scale: float = 0.0,
        lm_scale: float = 0.25,
        subnet: SubnetConfig = FULL,
        teacher: Optional[DistillTargets] = None,
        return_targets: bool = False,
        annealing: Optional[Annealing] = None,
    ):
        """Per-utterance losses of every head the model has.

        Args:
            features: (N, T, num_features).
            feature_lens: (N,).
            labels: N token-id lists (no blanks).
            prune_range: symbols kept per frame in the pruned loss.
            am_scale, lm_scale: weights of the am-only / lm-only smoothing terms of the
                simple loss.
            subnet: encoder slice to train.
            teacher: distribution targets of a teacher subnet; adds the KL terms.
            return_targets: also return this subnet's detached ``DistillTargets``.
            annealing: quantizer annealing state of this training step (GQ sharpness,
                Gumbel temperature), for every quantized layer of the encoder and heads;
                None: not annealing (``allinone.quant.annealing``).
        Returns:
            dict with "simple" and "pruned" (transducer head) and/or "ctc" (CTC head),
            each (N,), summed over each utterance's frames; with ``teacher``, also "kl"
            (transducer joiner outputs on the teacher's pruned lattice) and/or "kl_ctc".
            With ``return_targets``, the pair (losses, targets).
        """
        encoder_out, encoder_out_lens = self.encode(features, feature_lens, subnet, annealing)
        bits = self.head_bits(subnet)
        losses: Dict[str, torch.Tensor] = {}
        ranges = joiner_log_probs = ctc_log_probs = None
        if self.config.use_transducer:
            losses["simple"], losses["pruned"], ranges, logits, decoder_out = self._transducer_terms(
                encoder_out, encoder_out_lens, labels, prune_range, am_scale, lm_scale, bits, annealing
            )
            if teacher is not None:
                on_teacher = self.pruned_logits(encoder_out, decoder_out, teacher.ranges, bits, annealing)
                losses["kl"] = masked_kl(
                    teacher.joiner_log_probs, on_teacher.float().log_softmax(-1), encoder_out_lens
                )
            if return_targets:
                joiner_log_probs = logits.detach().float().log_softmax(-1)
                ranges = ranges.detach()
        if self.config.use_ctc:
            ctc_log_probs = self.ctc_log_probs(encoder_out, bits, annealing)
            losses["ctc"] = self.ctc_loss(ctc_log_probs, encoder_out_lens, labels)
            if teacher is not None:
                losses["kl_ctc"] = masked_kl(teacher.ctc_log_probs, ctc_log_probs, encoder_out_lens)
        if not return_targets:
            return losses
        targets = DistillTargets(
            encoder_out_lens.detach(),
            ranges if self.config.use_transducer else None,
            joiner_log_probs,
            ctc_log_probs.detach() if ctc_log_probs is not None else None,
        )
        return losses, targets

    def lattice_inputs(
        self,
        encoder_out_lens: torch.Tensor,
        labels: List[List[int]],
        head_bits: int = FLOAT_BITS,
        annealing: Optional[Annealing] = None,
    ):
        """Padded symbols (N, S), k2-style boundary (N, 4) and decoder output (N, S+1, decoder_dim)
        (the decoder at ``head_bits``)."""
        device = encoder_out_lens.device
        blank = self.config.blank_id
        symbols = pad_labels(labels, blank, device)
        decoder_out = self.decoder(
            pad_labels([[blank] + y for y in labels], blank, device),
            need_pad=True,
            bits=head_bits,
            annealing=annealing,
        )
        boundary = torch.zeros(len(labels), 4, dtype=torch.long, device=device)
        boundary[:, 2] = torch.tensor([len(y) for y in labels], dtype=torch.long, device=device)
        boundary[:, 3] = encoder_out_lens
        return symbols, boundary, decoder_out

    def simple_loss_and_ranges(
        self,
        encoder_out: torch.Tensor,
        decoder_out: torch.Tensor,
        symbols: torch.Tensor,
        boundary: torch.Tensor,
        prune_range: int,
        am_scale: float,
        lm_scale: float,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Smoothed trivial-joiner loss (N,) and the prune ranges (N, T, prune_range) it implies.

        The trivial joiner is cheap over the whole (T, S) lattice; its occupation
        probabilities tell the full joiner which few symbols per frame matter.
        """
        lm, am = self.simple_lm_proj(decoder_out), self.simple_am_proj(encoder_out)
        with float32_region(am.device.type):
            simple_loss, (px_grad, py_grad) = self._rnnt.rnnt_loss_smoothed(
                lm=lm.float(),
                am=am.float(),
                symbols=symbols,
                termination_symbol=self.config.blank_id,
                lm_only_scale=lm_scale,
                am_only_scale=am_scale,
                boundary=boundary,
                reduction="none",
                return_grad=True,
            )
        ranges = self._rnnt.get_rnnt_prune_ranges(px_grad, py_grad, boundary, prune_range)
        return simple_loss, ranges

    def pruned_logits(
        self,
        encoder_out: torch.Tensor,
        decoder_out: torch.Tensor,
        ranges: torch.Tensor,
        head_bits: int = FLOAT_BITS,
        annealing: Optional[Annealing] = None,
    ) -> torch.Tensor:
        """Joiner logits (N, T, R, vocab) on the pruned lattice of ``ranges`` (N, T, R),
        the joiner at ``head_bits``."""
        am_pruned, lm_pruned = self._rnnt.do_rnnt_pruning(
            self.joiner.project_encoder(encoder_out, head_bits, annealing),
            self.joiner.project_decoder(decoder_out, head_bits, annealing),
            ranges,
        )
        return self.joiner(am_pruned, lm_pruned, project_input=False, bits=head_bits, annealing=annealing)

    def pruned_loss(
        self,
        encoder_out: torch.Tensor,
        decoder_out: torch.Tensor,
        symbols: torch.Tensor,
        boundary: torch.Tensor,
        ranges: torch.Tensor,
        head_bits: int = FLOAT_BITS,
        annealing: Optional[Annealing] = None,
    ) -> torch.Tensor:
        """Full-joiner RNN-T loss (N,) on the pruned lattice given by ``ranges``."""
        return self._loss_of_pruned_logits(
            self.pruned_logits(encoder_out, decoder_out, ranges, head_bits, annealing),
            symbols,
            ranges,
            boundary,
        )

    def _loss_of_pruned_logits(self, logits, symbols, ranges, boundary) -> torch.Tensor:
        # The losses run in float32 under --use-fp16/--use-bf16 autocast: their log-sum-exp
        # recursions lose the alignment mass in half precision.
        with float32_region(logits.device.type):
            return self._rnnt.rnnt_loss_pruned(
                logits.float(), symbols, ranges, self.config.blank_id, boundary, reduction="none"
            )

    def ctc_log_probs(
        self, encoder_out: torch.Tensor, head_bits: int = FLOAT_BITS, annealing: Optional[Annealing] = None
    ) -> torch.Tensor:
        """CTC log-posteriors (N, T, vocab) of encoder frames (N, T, d_model), the output
        layer at ``head_bits``."""
        if self.ctc_output is None:
            raise ValueError("this model has no CTC head (trained without --use-ctc)")
        logits = run_at_bits(self.ctc_output, encoder_out, head_bits, annealing)
        with float32_region(logits.device.type):
            return logits.float().log_softmax(-1)

    def ctc_loss(
        self, log_probs: torch.Tensor, encoder_out_lens: torch.Tensor, labels: List[List[int]]
    ) -> torch.Tensor:
        """Per-utterance CTC loss (N,) of ``ctc_log_probs`` (N, T, V), the transducer's blank as CTC blank."""
        device = log_probs.device
        targets = torch.tensor([t for y in labels for t in y], dtype=torch.long, device=device)
        target_lens = torch.tensor([len(y) for y in labels], dtype=torch.long, device=device)
        # Infinite losses (too few frames for the labels) are kept so the trainer can
        # report and drop those utterances instead of silently zeroing them.
        with float32_region(device.type):
            return F.ctc_loss(
                log_probs.float().transpose(0, 1),
                targets,
                encoder_out_lens,
                target_lens,
                blank=self.config.blank_id,
                reduction="none",
                zero_infinity=False,
            )

    def transducer_loss(
        self,
        encoder_out: torch.Tensor,
        encoder_out_lens: torch.Tensor,
        labels: List[List[int]],
        prune_range: int = 5,
        am_scale: float = 0.0,
        lm_scale: float = 0.25,
        head_bits: int = FLOAT_BITS,
        annealing: Optional[Annealing] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Simple and pruned losses of given encoder frames (decoder and joiner included).

        Args:
            encoder_out: (N, T, d_model).
            encoder_out_lens: (N,).
            labels, prune_range, am_scale, lm_scale, annealing: as in ``forward``.
            head_bits: bit-width of the decoder and joiner (``head_bits(subnet)``).
        Returns:
            (simple_loss, pruned_loss): each (N,).
        """
        return self._transducer_terms(
            encoder_out, encoder_out_lens, labels, prune_range, am_scale, lm_scale, head_bits, annealing
        )[:2]

    def _transducer_terms(
        self,
        encoder_out,
        encoder_out_lens,
        labels,
        prune_range,
        am_scale,
        lm_scale,
        head_bits=FLOAT_BITS,
        annealing: Optional[Annealing] = None,
    ):
        """(simple_loss (N,), pruned_loss (N,), ranges (N, T, R), pruned logits (N, T, R, V), decoder_out)."""
        symbols, boundary, decoder_out = self.lattice_inputs(encoder_out_lens, labels, head_bits, annealing)
        simple_loss, ranges = self.simple_loss_and_ranges(
            encoder_out, decoder_out, symbols, boundary, prune_range, am_scale, lm_scale
        )
        logits = self.pruned_logits(encoder_out, decoder_out, ranges, head_bits, annealing)
        pruned_loss = self._loss_of_pruned_logits(logits, symbols, ranges, boundary)
        return simple_loss, pruned_loss, ranges, logits, decoder_out
