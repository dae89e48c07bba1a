"""Self-supervised speech encoders (wav2vec 2.0, HuBERT) from Hugging Face ``transformers`` as
nested, quantizable encoders.

``SslEncoder`` holds a ``Wav2Vec2Model`` or ``HubertModel`` and runs it the way a subnet
asks: the transformer layers of its depth (or unfolding schedule), a prefix of every
feed-forward's intermediate units, and the attention and feed-forward weights at the
subnet's "attn" / "ffn" bit-widths. The layers' ``nn.Linear`` modules are replaced by
``SubnetLinear`` (a ``QLinear``), so the weights quantize through the repository's
quantizer interface and pack like every other weight, while the layer code that runs is
``transformers``' own (attention implementation, dropout, LayerDrop semantics): at 32
bits and full width a subnet computes exactly what the ``transformers`` model computes.

``transformers`` is imported only here, when such an encoder is built.

Input is the raw waveform (N, S) at 16 kHz with its lengths in samples, normalised per
utterance (``normalize_waveform``) as these checkpoints expect; the output frames are the
convolutional feature encoder's (20 ms). The transformer always sees a padding
mask built from the lengths (``transformers`` applies it only when asked); for a single
unpadded utterance that is the same computation.
"""

from pathlib import Path
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from allinone.quant.annealing import Annealing
from allinone.quant.layers import QLinear
from allinone.subnet import FLOAT_BITS, FULL, SubnetConfig
from allinone.unfold import occurrences

SSL_KINDS = ("wav2vec2", "hubert")
# Files a local checkpoint directory in the Hub's layout must hold (weights: either one).
CONFIG_FILE = "config.json"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def normalize_waveform(x: torch.Tensor, x_lens: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Zero mean and unit variance over each utterance's valid samples; padding stays zero.

    What wav2vec 2.0 / HuBERT checkpoints are trained on (their feature extractor's
    ``do_normalize``); applied to every input, in pretraining, fine-tuning and decoding.

    Args:
        x: (N, S) samples.
        x_lens: (N,) valid samples.
    Returns:
        (N, S).
    """
    mask = torch.arange(x.size(1), device=x.device)[None, :] < x_lens[:, None]
    count = x_lens.clamp(min=1).to(x.dtype)[:, None]
    mean = (x * mask).sum(1, keepdim=True) / count
    var = (((x - mean) * mask) ** 2).sum(1, keepdim=True) / count
    return (x - mean) / (var + eps).sqrt() * mask


class PretrainedDirError(ValueError):
    """A ``--pretrained-dir`` that is missing or incomplete; the message names what is missing."""


class SubnetLinear(QLinear):
    """A ``QLinear`` that ``transformers``' layer code calls with one argument.

    The calling subnet's bit-width and unit slice reach it as call attributes that
    ``SslEncoder`` sets right before running the layer and clears afterwards
    (``configure_call``): the layer code is not ours to give extra arguments to.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__(in_features, out_features, bias)
        self.configure_call()

    def configure_call(
        self,
        bits: int = FLOAT_BITS,
        out_units: Optional[int] = None,
        in_units: Optional[int] = None,
        annealing: Optional[Annealing] = None,
    ) -> None:
        self.call_bits, self.out_units, self.in_units, self.annealing = bits, out_units, in_units, annealing

    def forward(self, x: torch.Tensor, *_, **__) -> torch.Tensor:
        """x: (..., in_units or in_features) -> (..., out_units or out_features)."""
        w = self.quantized_weight(self.call_bits, self.out_units, self.in_units, self.annealing)
        b = self.bias if self.bias is None or self.out_units is None else self.bias[: self.out_units]
        return F.linear(x, w, b)

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> "SubnetLinear":
        new = cls(linear.in_features, linear.out_features, linear.bias is not None)
        with torch.no_grad():
            new.weight.copy_(linear.weight)
            if linear.bias is not None:
                new.bias.copy_(linear.bias)
        new.reset_steps()
        return new


ATTENTION_LINEARS = ("q_proj", "k_proj", "v_proj", "out_proj")
# State-dict entries of the quantizers, which a transformers checkpoint does not have.
QUANTIZER_STATE = (".steps.", ".centroids.", ".mp_logits", ".mp_bits")
FFN_LINEARS = ("intermediate_dense", "output_dense")


def _swap_linears(layer: nn.Module) -> None:
    """Replace a transformer layer's attention and feed-forward ``nn.Linear``s by ``SubnetLinear``s."""
    for parent, names in ((layer.attention, ATTENTION_LINEARS), (layer.feed_forward, FFN_LINEARS)):
        for name in names:
            setattr(parent, name, SubnetLinear.from_linear(getattr(parent, name)))


def _classes(kind: str):
    import transformers

    if kind == "wav2vec2":
        return transformers.Wav2Vec2Config, transformers.Wav2Vec2Model
    if kind == "hubert":
        return transformers.HubertConfig, transformers.HubertModel
    raise ValueError(f"unknown self-supervised encoder {kind!r}; choose from {', '.join(SSL_KINDS)}")


def check_pretrained_dir(path: Path) -> Path:
    """``path`` if it holds a checkpoint in the Hub's layout.

    Raises:
        PretrainedDirError: naming the directory and the missing file(s).
    """
    path = Path(path)
    if not path.is_dir():
        raise PretrainedDirError(f"{path}: no such directory (--pretrained-dir wants a local checkpoint)")
    missing = [] if (path / CONFIG_FILE).is_file() else [CONFIG_FILE]
    if not any((path / f).is_file() for f in WEIGHT_FILES):
        missing.append(" or ".join(WEIGHT_FILES))
    if missing:
        raise PretrainedDirError(f"{path}: incomplete checkpoint directory, missing {', '.join(missing)}")
    return path


def read_pretrained_config(kind: str, path: Path) -> Dict:
    """The ``transformers`` config (as a dict) of the checkpoint in ``path``."""
    config_class, _ = _classes(kind)
    return config_class.from_pretrained(str(check_pretrained_dir(path)), local_files_only=True).to_dict()


class SslEncoder(nn.Module):
    """A wav2vec 2.0 / HuBERT backbone run as a subnet: depth, FFN width, bit-widths.

    Args:
        kind: "wav2vec2" or "hubert".
        hf_config: the ``transformers`` config as a dict (``Wav2Vec2Config.to_dict()``).
        pretrained_dir: load the backbone's weights from this local checkpoint directory
            (the Hub's layout; a ``...ForCTC`` or ``...ForPreTraining`` checkpoint works too);
            None: initialise as ``transformers`` does.
        freeze_feature_encoder: keep the convolutional feature encoder fixed (fine-tuning default).
    """

    def __init__(
        self,
        kind: str,
        hf_config: Dict,
        pretrained_dir: Optional[Path] = None,
        freeze_feature_encoder: bool = True,
    ):
        super().__init__()
        config_class, model_class = _classes(kind)
        config = config_class.from_dict(dict(hf_config))
        if pretrained_dir is not None:
            path = str(check_pretrained_dir(pretrained_dir))
            self.backbone = model_class.from_pretrained(path, config=config, local_files_only=True)
        else:
            self.backbone = model_class(config)
        for layer in self.backbone.encoder.layers:
            _swap_linears(layer)
        if freeze_feature_encoder:
            self.backbone.feature_extractor._freeze_parameters()  # both models' feature encoders have it
        self.kind = kind
        self.config = self.backbone.config
        self.d_model = self.config.hidden_size
        self.num_layers = self.config.num_hidden_layers
        self.ffn_dim = self.config.intermediate_size
        self.norm_slots: dict = {}  # LayerNorm only: one behaviour for every subnet

    @torch.no_grad()
    def load_pretrained(self, path: Path) -> None:
        """The backbone's weights from a local checkpoint directory (the Hub's layout); the
        quantizers are initialised from them.

        Raises:
            PretrainedDirError: naming the directory and what it lacks.
            ValueError: a checkpoint of another architecture than this encoder's config.
        """
        _, model_class = _classes(self.kind)
        source = model_class.from_pretrained(
            str(check_pretrained_dir(path)), config=self.config, local_files_only=True
        )
        missing, unexpected = self.backbone.load_state_dict(source.state_dict(), strict=False)
        missing = [k for k in missing if not any(s in k for s in QUANTIZER_STATE)]
        if missing or unexpected:
            raise ValueError(
                f"{path}: does not fit the encoder (missing {missing[:3]}, unexpected {unexpected[:3]})"
            )
        for m in self.modules():
            if isinstance(m, SubnetLinear):
                m.reset_steps()

    def norm_slot(self, subnet: SubnetConfig, occurrence: int = 0) -> int:
        """BatchNorm statistics set of a subnet: always 0 (no BatchNorm in these encoders)."""
        return 0

    def hidden_units(self, ratio: float) -> int:
        """Feed-forward intermediate units a width ``ratio`` runs (at least one)."""
        return max(1, int(round(self.ffn_dim * ratio)))

    def output_lengths(self, sample_lens: torch.Tensor) -> torch.Tensor:
        """(N,) frame counts of the feature encoder for (N,) sample counts."""
        return self.backbone._get_feat_extract_output_lengths(sample_lens).to(torch.long)

    def _configure_layer(self, layer: nn.Module, bits: Dict[str, int], units: int, annealing) -> None:
        for name in ATTENTION_LINEARS:
            getattr(layer.attention, name).configure_call(bits["attn"], annealing=annealing)
        ff = layer.feed_forward
        ff.intermediate_dense.configure_call(bits["ffn"], out_units=units, annealing=annealing)
        ff.output_dense.configure_call(bits["ffn"], in_units=units, annealing=annealing)

    def _reset_layers(self) -> None:
        for m in self.modules():
            if isinstance(m, SubnetLinear):
                m.configure_call()

    def forward(
        self,
        x: torch.Tensor,
        x_lens: torch.Tensor,
        subnet: SubnetConfig = FULL,
        annealing: Optional[Annealing] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Encode waveforms (normalised here per utterance).

        Args:
            x: (N, S) samples (a trailing channel axis of size 1 is dropped).
            x_lens: (N,) valid samples.
        Returns:
            (encoder_out, encoder_out_lens): (N, T', hidden_size), (N,).
        """
        from transformers.masking_utils import create_bidirectional_mask

        if x.dim() == 3:
            x = x.squeeze(-1)
        schedule = subnet.schedule(self.num_layers)
        subnet = subnet.resolved(self.num_layers)
        bits = {c: subnet.bits_for(c) for c in ("attn", "ffn")}
        model, encoder = self.backbone, self.backbone.encoder
        features = model.feature_extractor(normalize_waveform(x, x_lens)).transpose(1, 2)
        lens = self.output_lengths(x_lens)
        mask = torch.arange(features.size(1), device=x.device)[None, :] < lens[:, None]
        projected = model.feature_projection(features)
        hidden = projected[0] if isinstance(projected, tuple) else projected
        hidden = model._mask_hidden_states(hidden, attention_mask=mask)
        # the encoder's own preamble (padding zeroed, positional convolution, norm, dropout)
        hidden = hidden.masked_fill(~mask[..., None], 0.0)
        attention_mask = create_bidirectional_mask(self.config, inputs_embeds=hidden, attention_mask=mask)
        hidden = hidden + encoder.pos_conv_embed(hidden)
        stable = self.config.do_stable_layer_norm
        if not stable:
            hidden = encoder.layer_norm(hidden)
        hidden = encoder.dropout(hidden)
        try:
            for i, (block, _) in enumerate(zip(schedule, occurrences(schedule))):
                if self.training and self.config.layerdrop > 0 and torch.rand([]) < self.config.layerdrop:
                    continue  # LayerDrop, as transformers applies it
                layer = encoder.layers[block]
                self._configure_layer(layer, bits, self.hidden_units(subnet.layer_ratio(i)), annealing)
                hidden = layer(hidden, attention_mask=attention_mask)
        finally:
            self._reset_layers()
        if stable:
            hidden = encoder.layer_norm(hidden)
        return hidden, lens
