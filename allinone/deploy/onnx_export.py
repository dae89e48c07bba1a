"""One subnet as ONNX models in the layout sherpa-onnx's offline recognisers load.

Files written for a subnet (``<stem>`` is its name unless given):

- ``encoder-<stem>.onnx``: ``x`` (N, T, num_features) float32 and ``x_lens`` (N,) int64
  -> ``encoder_out`` (N, T', joiner_dim) and ``encoder_out_lens`` (N,) int64. The joiner's
  encoder projection is folded in, so a search projects each frame once.
- ``decoder-<stem>.onnx``: ``y`` (N, context_size) int64 -> ``decoder_out`` (N, joiner_dim),
  the joiner's decoder projection folded in; metadata ``vocab_size`` and ``context_size``
  (sherpa-onnx refuses a decoder without them).
- ``joiner-<stem>.onnx``: ``encoder_out`` (N, joiner_dim), ``decoder_out`` (N, joiner_dim)
  -> ``logit`` (N, vocab_size).
- ``ctc-<stem>.onnx`` (models with a CTC head; the only graph of a CTC-only model):
  ``x``, ``x_lens`` -> ``log_probs``
  (N, T', vocab_size) and ``log_probs_len`` (N,); the loader sherpa-onnx calls
  ``zipformer_ctc`` reads exactly this signature and takes the vocabulary from the
  output's last dimension, which therefore stays static. For wav2vec 2.0 / HuBERT models
  ``x`` is the waveform (N, S) and ``x_lens`` counts samples (metadata ``input=waveform``);
  sherpa-onnx's CTC loaders feed fbank, so those graphs decode with onnxruntime.

The graphs run the standalone float model a packed file rebuilds
(``allinone.deploy.export``): the subnet's blocks, FFN widths and BatchNorm statistics,
its quantized weights as their dequantized values. The float ONNX therefore computes the
fake-quantized subnet; the int8 variants are in ``allinone.deploy.onnx_int8``.
"""

import math
import warnings
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple

import torch
import torch.nn as nn

from allinone.nn.model import Transducer
from allinone.nn.ssl import SSL_KINDS
from allinone.subnet import SubnetConfig

OPSET = 17
ONNX_PARTS = ("encoder", "decoder", "joiner", "ctc")
# The names sherpa-onnx's offline transducer and CTC loaders bind by position; kept as
# icefall's exports name them so that every tool of that ecosystem reads our files.
INPUTS = {
    "encoder": ["x", "x_lens"],
    "decoder": ["y"],
    "joiner": ["encoder_out", "decoder_out"],
    "ctc": ["x", "x_lens"],
}
OUTPUTS = {
    "encoder": ["encoder_out", "encoder_out_lens"],
    "decoder": ["decoder_out"],
    "joiner": ["logit"],
    "ctc": ["log_probs", "log_probs_len"],
}
REQUIRED_METADATA = {"decoder": ("vocab_size", "context_size")}


class EncoderForOnnx(nn.Module):
    """The subnet's encoder followed by the joiner's encoder projection.

    forward: x (N, T, F), x_lens (N,) -> (N, T', joiner_dim), (N,).
    """

    def __init__(self, model: Transducer, subnet: SubnetConfig):
        super().__init__()
        self.model, self.subnet = model, subnet

    def forward(self, x: torch.Tensor, x_lens: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        encoder_out, encoder_out_lens = self.model.encoder(x, x_lens, self.subnet)
        return self.model.joiner.project_encoder(encoder_out), encoder_out_lens


class DecoderForOnnx(nn.Module):
    """The stateless decoder on one history per row, then the joiner's decoder projection.

    forward: y (N, context_size) int64 (-1 pads a short history) -> (N, joiner_dim).
    """

    def __init__(self, model: Transducer):
        super().__init__()
        self.model = model

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        decoder_out = self.model.decoder(y, need_pad=False).squeeze(1)
        return self.model.joiner.project_decoder(decoder_out)


class JoinerForOnnx(nn.Module):
    """The joint network on projected frames: (N, joiner_dim) x 2 -> logits (N, vocab_size)."""

    def __init__(self, model: Transducer):
        super().__init__()
        self.model = model

    def forward(self, encoder_out: torch.Tensor, decoder_out: torch.Tensor) -> torch.Tensor:
        return self.model.joiner(encoder_out, decoder_out, project_input=False)


class CtcForOnnx(nn.Module):
    """The subnet's encoder and CTC head: x, x_lens -> log-probs (N, T', V), lengths (N,)."""

    def __init__(self, model: Transducer, subnet: SubnetConfig):
        super().__init__()
        self.model, self.subnet = model, subnet

    def forward(self, x: torch.Tensor, x_lens: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        encoder_out, encoder_out_lens = self.model.encoder(x, x_lens, self.subnet)
        return self.model.ctc_log_probs(encoder_out), encoder_out_lens


def onnx_path(out_dir: Path, part: str, stem: str, variant: str = "fp32") -> Path:
    """``<out_dir>/<part>-<stem>.onnx``; ``.int8.onnx`` / ``.int8-codes.onnx`` for the int8 variants."""
    tail = {"fp32": ".onnx", "int8": ".int8.onnx", "int8-codes": ".int8-codes.onnx"}
    if variant not in tail:
        raise ValueError(f"unknown ONNX variant {variant!r}; expected one of {', '.join(tail)}")
    return Path(out_dir) / f"{part}-{stem}{tail[variant]}"


def takes_waveform(cfg) -> bool:
    """Whether the model's graphs read samples (N, S) rather than fbank (N, T, F)."""
    return cfg.encoder in SSL_KINDS


def _example_inputs(model: Transducer) -> Dict[str, Tuple[torch.Tensor, ...]]:
    """Inputs the graphs are traced with (two utterances of different lengths)."""
    cfg = model.config
    if takes_waveform(cfg):
        x, x_lens = torch.randn(2, 16000), torch.tensor([16000, 12345], dtype=torch.int64)
    else:
        x, x_lens = torch.randn(2, 200, cfg.num_features), torch.tensor([200, 163], dtype=torch.int64)
    y = torch.full((2, cfg.context_size), cfg.blank_id, dtype=torch.int64)
    y[0, :-1] = -1  # the start of an utterance: padding, then one blank
    projected = torch.randn(2, cfg.joiner_dim)
    return {"encoder": (x, x_lens), "decoder": (y,), "joiner": (projected, projected), "ctc": (x, x_lens)}


DYNAMIC_AXES = {
    "encoder": {"x": {0: "N", 1: "T"}, "x_lens": {0: "N"}, "encoder_out": {0: "N", 1: "T_out"},
                "encoder_out_lens": {0: "N"}},
    "decoder": {"y": {0: "N"}, "decoder_out": {0: "N"}},
    "joiner": {"encoder_out": {0: "N"}, "decoder_out": {0: "N"}, "logit": {0: "N"}},
    "ctc": {"x": {0: "N", 1: "T"}, "x_lens": {0: "N"}, "log_probs": {0: "N", 1: "T_out"},
            "log_probs_len": {0: "N"}},
}  # fmt: skip


def add_metadata(path: Path, metadata: Mapping[str, object]) -> None:
    """Add string ``metadata_props`` to the ONNX model at ``path`` (rewritten in place)."""
    import onnx

    proto = onnx.load(str(path))
    existing = {p.key: p for p in proto.metadata_props}
    for key, value in metadata.items():
        prop = existing.get(key) or proto.metadata_props.add()
        prop.key, prop.value = key, str(value)
    onnx.save(proto, str(path))


def read_metadata(path: Path) -> Dict[str, str]:
    """The ``metadata_props`` of the ONNX model at ``path``."""
    import onnx

    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


@torch.no_grad()
def export_onnx(
    model: Transducer,
    subnet: SubnetConfig,
    out_dir: Path,
    stem: str,
    metadata: Optional[Mapping[str, object]] = None,
    opset: int = OPSET,
) -> Dict[str, Path]:
    """Write the fp32 ONNX files of ``subnet`` of the (standalone, float) ``model``.

    Args:
        model: a float ``Transducer``, e.g. from ``load_packed_model``.
        subnet: the subnet ``model`` runs (``run_subnet`` of the packed file).
        out_dir: created if missing.
        stem: the files' name part (``encoder-<stem>.onnx``...).
        metadata: more ``metadata_props`` for every file (e.g. the source subnet's name).
    Returns:
        part -> path, for "encoder", "decoder", "joiner" and (with a CTC head) "ctc".
    Raises:
        ValueError: a projected LSTM encoder, which ONNX's LSTM operator cannot express, or
            the transducer of a waveform encoder.
    """
    if takes_waveform(model.config) and model.config.use_transducer:
        raise ValueError(
            "the transducer graphs read fbank (N, T, 80); a waveform encoder's transducer does not export "
            "(its CTC head does: train it with --use-transducer false)"
        )
    if model.config.encoder == "lstm" and model.config.lstm_hidden_size != model.config.d_model:
        raise ValueError(
            "ONNX's LSTM operator has no projection: only LSTM encoders with "
            f"lstm_hidden_size == d_model export (this one: {model.config.lstm_hidden_size} cells, "
            f"d_model {model.config.d_model})"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    cfg = model.config
    wrappers = {}
    if cfg.use_transducer:
        wrappers = {"encoder": EncoderForOnnx(model, subnet), "decoder": DecoderForOnnx(model),
                    "joiner": JoinerForOnnx(model)}  # fmt: skip
    if cfg.use_ctc and model.ctc_output is not None:
        wrappers["ctc"] = CtcForOnnx(model, subnet)
    waveform = takes_waveform(cfg)
    common = {
        "model_author": "allinone",
        "model_type": f"{cfg.encoder}-{'transducer' if cfg.use_transducer else 'ctc'}",
        "input": "waveform" if waveform else "fbank",
        "feature_dim": 1 if waveform else cfg.num_features,
        # input samples (waveform) or fbank frames per output frame
        "subsampling_factor": math.prod(cfg.ssl_config["conv_stride"]) if waveform else 4,
        "vocab_size": cfg.vocab_size,
        "blank_id": cfg.blank_id,
        **(metadata or {}),
    }
    per_part = {"decoder": {"context_size": cfg.context_size}, "joiner": {"joiner_dim": cfg.joiner_dim}}
    inputs = _example_inputs(model)
    paths = {}
    for part, wrapper in wrappers.items():
        path = onnx_path(out_dir, part, stem)
        tmp = path.with_name(path.name + ".tmp")
        with warnings.catch_warnings():
            # The subnet is fixed, so the Python branches the tracer warns about are the
            # graph's intended constants; the TorchScript exporter is chosen on purpose
            # (dynamic time axes of a data-dependent relative-position encoding).
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                wrapper.eval(),
                inputs[part],
                str(tmp),
                input_names=INPUTS[part],
                output_names=OUTPUTS[part],
                dynamic_axes=DYNAMIC_AXES[part],
                opset_version=opset,
                dynamo=False,
            )
        add_metadata(tmp, {**common, **per_part.get(part, {})})
        tmp.replace(path)  # a half-written file never carries the final name
        paths[part] = path
    return paths


def write_tokens(bpe_model: Path, vocab_size: int, path: Path) -> Path:
    """sherpa-onnx's ``tokens.txt`` (``<piece> <id>`` per line, in id order) from a BPE model.

    Raises:
        ValueError: naming ``bpe_model`` when its size is not the model's vocabulary.
    """
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(bpe_model))
    if sp.get_piece_size() != vocab_size:
        raise ValueError(f"{bpe_model}: {sp.get_piece_size()} pieces, the model has {vocab_size} tokens")
    lines = [f"{sp.id_to_piece(i)} {i}" for i in range(vocab_size)]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Path(path)
