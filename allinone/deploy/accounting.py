"""Parameters used and bytes stored by one subnet of a nested model.

The accounting rule (used in every results table): quantized weights count ``bits`` per
entry plus one 32-bit step per quantized tensor; everything else (biases, norms,
embeddings, decoder, joiner, CTC head, the subnet's BatchNorm running statistics) counts
32 bits. A model built with quantized heads (``ModelConfig.quantize_heads``) counts the
weights of the decoder's context convolution, the joiner and the CTC output layer at the
subnet's "head" bit-width instead; their biases and the decoder's embedding stay 32-bit.
Only what the subnet runs is counted: layers ``1..depth``, the prefix of each
FFN's hidden units. A weight-tied (unfolded) subnet stores each physical block it runs
once, at the widest FFN prefix any of its uses needs, plus the per-occurrence state
of repeats (BatchNorm running statistics, the optional relaxation gain and bias, for
every stored block as many sets as the most repeated block needs). The
simple-loss projections of the transducer are training-only and not part of a deployed
system. Compression ratio = float32 size of the full model /
stored size of the subnet.
"""

from dataclasses import dataclass
from typing import Optional, Tuple

import torch.nn as nn

from allinone.deploy.naming import weight_class
from allinone.nn.conformer import FeedForward, SubnetBatchNorm
from allinone.nn.lstm import RNN_CLASS, LstmEncoder
from allinone.nn.ssl import SslEncoder
from allinone.quant.layers import QUANT_LAYERS
from allinone.quant.quantizer import Quantizer
from allinone.subnet import FLOAT_BITS, MIXED_BITS, SubnetConfig, full_subnet
from allinone.unfold import occurrences

# Parts of a Transducer that only shape the training loss (and the masking embedding of a
# wav2vec 2.0 / HuBERT backbone, used only by training-time time masking).
TRAINING_ONLY = ("simple_am_proj", "simple_lm_proj", "masked_spec_embed")
# What a CTC-only model never runs: the transducer's prediction and joint networks.
TRANSDUCER_ONLY = ("decoder", "joiner")


@dataclass
class Footprint:
    """Parameter count and stored size (in bits) of a (part of a) subnet."""

    params: int = 0
    stored_bits: int = 0

    def add(self, numel: int, bits: int, is_param: bool = True) -> None:
        self.params += numel if is_param else 0
        self.stored_bits += numel * bits

    def __iadd__(self, other: "Footprint") -> "Footprint":
        self.params += other.params
        self.stored_bits += other.stored_bits
        return self

    @property
    def stored_bytes(self) -> float:
        return self.stored_bits / 8


def _quant_weight(fp: Footprint, layer, bits: int, out_units=None, in_units=None) -> None:
    """The (sliced) weight of a quantized layer: codes plus its steps or codebook at ``bits``."""
    fp.params += layer.slice_weight(out_units, in_units).numel()
    fp.stored_bits += layer.weight_storage_bits(bits, out_units, in_units)


def dense_footprint(module: nn.Module, bits: int = FLOAT_BITS) -> Footprint:
    """Every parameter of ``module``; weights of quantizable layers at ``bits``."""
    fp = Footprint()
    for m in module.modules():
        if isinstance(m, Quantizer):
            continue  # steps or centroids: counted with their weight
        for name, p in m.named_parameters(recurse=False):
            if isinstance(m, QUANT_LAYERS) and name == "mp_logits":
                continue  # the bit-width search state; a finalised layer stores its bits only
            if isinstance(m, QUANT_LAYERS) and name == "weight":
                _quant_weight(fp, m, bits)
            else:
                fp.add(p.numel(), FLOAT_BITS)
        if isinstance(m, SubnetBatchNorm):
            fp.add(2 * m.weight.numel(), FLOAT_BITS, is_param=False)  # one slot's running stats
    return fp


def ffn_footprint(ffn: FeedForward, ratio: float, bits: int) -> Footprint:
    """The FFN's first ``hidden_units(ratio)`` hidden units at ``bits``."""
    k = ffn.hidden_units(ratio)
    d = ffn.linear1.in_features
    fp = Footprint()
    _quant_weight(fp, ffn.linear1, bits, out_units=k)
    fp.add(k, FLOAT_BITS)  # linear1 bias
    _quant_weight(fp, ffn.linear2, bits, in_units=k)
    fp.add(d, FLOAT_BITS)  # linear2 bias
    return fp


def lstm_footprint(encoder: LstmEncoder, subnet: SubnetConfig) -> Footprint:
    """What ``subnet`` runs of an LSTM encoder: the front-end, layers 1..depth, the output norm."""
    subnet = encoder.check_subnet(subnet)
    fp = dense_footprint(encoder.embed, subnet.bits_for("subsampling"))
    for layer in encoder.layers[: subnet.depth]:
        fp += dense_footprint(layer, subnet.bits_for(RNN_CLASS))
    fp += dense_footprint(encoder.output_norm)
    return fp


def ssl_footprint(encoder: SslEncoder, subnet: SubnetConfig) -> Footprint:
    """What ``subnet`` runs of a wav2vec 2.0 / HuBERT encoder: the feature encoder and
    projection, the positional convolution, each layer it runs once (attention at "attn"
    bits, the widest intermediate prefix its uses need at "ffn" bits) and the encoder norm.
    The masking embedding only serves training and is not counted."""
    schedule = subnet.schedule(encoder.num_layers)
    subnet = subnet.resolved(encoder.num_layers)
    model = encoder.backbone
    fp = dense_footprint(model.feature_extractor)
    fp += dense_footprint(model.feature_projection)
    fp += dense_footprint(model.encoder.pos_conv_embed)
    widest: dict = {}
    for i, block in enumerate(schedule):
        widest[block] = max(widest.get(block, 0), encoder.hidden_units(subnet.layer_ratio(i)))
    for block, units in sorted(widest.items()):
        layer = model.encoder.layers[block]
        fp += dense_footprint(layer.attention, subnet.bits_for("attn"))
        ff, d = layer.feed_forward, encoder.d_model
        _quant_weight(fp, ff.intermediate_dense, subnet.bits_for("ffn"), out_units=units)
        fp.add(units + d, FLOAT_BITS)  # the two biases
        _quant_weight(fp, ff.output_dense, subnet.bits_for("ffn"), in_units=units)
        fp += dense_footprint(layer.layer_norm)
        fp += dense_footprint(layer.final_layer_norm)
    fp += dense_footprint(model.encoder.layer_norm)
    return fp


def encoder_footprint(encoder: nn.Module, subnet: SubnetConfig) -> Footprint:
    """What ``subnet`` runs of the encoder (Conformer, LSTM or wav2vec 2.0 / HuBERT)."""
    if isinstance(encoder, LstmEncoder):
        return lstm_footprint(encoder, subnet)
    if isinstance(encoder, SslEncoder):
        return ssl_footprint(encoder, subnet)
    schedule = subnet.schedule(encoder.num_layers)
    subnet = subnet.resolved(encoder.num_layers)
    fp = dense_footprint(encoder.embed, subnet.bits_for("subsampling"))
    fp += dense_footprint(encoder.pos_enc)
    widest: dict = {}  # physical block -> widest FFN ratio its uses need
    for i, block in enumerate(schedule):
        widest[block] = max(widest.get(block, 0.0), subnet.layer_ratio(i))
    repeats = [k for k in occurrences(schedule) if k > 0]
    for block, ratio in sorted(widest.items()):
        layer = encoder.layers[block]
        for name, child in layer.named_children():
            if isinstance(child, FeedForward):
                fp += ffn_footprint(child, ratio, subnet.bits_for("ffn"))
            elif name == "self_attn":
                fp += dense_footprint(child, subnet.bits_for("attn"))
            elif name == "conv":
                fp += dense_footprint(child, subnet.bits_for("conv"))
            else:
                fp += dense_footprint(child)
    # A deployed unfolded model keeps, for every block it stores, one set of per-repeat
    # state per repeat of its most repeated block (tensors are (blocks, repeats, C)).
    reps = max(repeats, default=0)
    if reps:
        if encoder.conv_norm == "batchnorm":
            fp.add(len(widest) * reps * 2 * encoder.d_model, FLOAT_BITS, is_param=False)  # statistics
        if encoder.unfold_relax:
            fp.add(len(widest) * reps * 2 * encoder.d_model, FLOAT_BITS)  # output gain and bias
    fp += dense_footprint(encoder.output_norm)
    return fp


def subnet_footprint(model: nn.Module, subnet: SubnetConfig) -> Footprint:
    """Deployable footprint of ``subnet`` of a ``Transducer``: its encoder slice plus the
    heads (their weights at ``model.head_bits(subnet)``; float unless the model quantizes them)."""
    fp = encoder_footprint(model.encoder, subnet)
    head_bits = model.head_bits(subnet)
    unused = TRAINING_ONLY + (() if model.config.use_transducer else TRANSDUCER_ONLY)
    for name, child in model.named_children():
        if name != "encoder" and name not in unused and child is not None:
            fp += dense_footprint(child, head_bits)
    return fp


def float_model_bytes(model: nn.Module) -> float:
    """float32 size of the full model (the numerator of every compression ratio)."""
    return subnet_footprint(model, full_subnet(model.encoder.num_layers)).stored_bytes


def compression_ratio(model: nn.Module, subnet: SubnetConfig) -> float:
    return float_model_bytes(model) / subnet_footprint(model, subnet).stored_bytes


# Where each encoder keeps its layers, and the names of the FFN linears sliced by width.
LAYER_PREFIXES = ("encoder.layers.", "encoder.backbone.encoder.layers.")
FFN_LINEARS = (".ff.linear1", ".ff.linear2", ".ff_macaron.linear1", ".ff_macaron.linear2",
               ".feed_forward.intermediate_dense", ".feed_forward.output_dense")  # fmt: skip


def layer_index(name: str) -> Optional[int]:
    """The encoder layer a module or parameter name belongs to (None: not in a layer)."""
    for prefix in LAYER_PREFIXES:
        if name.startswith(prefix):
            return int(name[len(prefix) :].split(".")[0])
    return None


def _ffn_units(encoder: nn.Module, ratio: float) -> Tuple[int, int]:
    """(all, run at ``ratio``) hidden units of the encoder's FFNs."""
    if isinstance(encoder, SslEncoder):
        return encoder.ffn_dim, encoder.hidden_units(ratio)
    ffn = encoder.layers[0].ff
    return ffn.ffn_dim, ffn.hidden_units(ratio)


def average_weight_bits(model: nn.Module, subnet: SubnetConfig) -> float:
    """Mean bit-width of the weights ``subnet`` quantizes, weighted by their size.

    Counts the weights of the quantized layers of the blocks the subnet runs (each
    physical block once) and of the subsampling front-end, and with quantized heads
    (``ModelConfig.quantize_heads``) those of the decoder, joiner and CTC head;
    mixed-precision layers count at their finalised (or most likely) bit-width.
    """
    subnet = subnet.resolved(model.encoder.num_layers)
    schedule = subnet.schedule(model.encoder.num_layers)
    num = den = 0
    for name, m in model.encoder.named_modules(prefix="encoder"):
        if not isinstance(m, QUANT_LAYERS):
            continue
        block = layer_index(name)
        if block is not None and block not in schedule:
            continue
        bits = subnet.bits_for(weight_class(name + ".weight"))
        bits = m.chosen_bits() if bits == MIXED_BITS else bits
        numel = m.weight.numel()
        if name.endswith(FFN_LINEARS):
            ratio = max(subnet.layer_ratio(i) for i, b in enumerate(schedule) if b == block)
            full, units = _ffn_units(model.encoder, ratio)
            numel = numel // full * units  # the prefix of hidden units run
        num += numel * bits
        den += numel
    if model.config.quantize_heads:
        head_bits = model.head_bits(subnet)
        for name, m in model.named_modules():
            if isinstance(m, QUANT_LAYERS) and not name.startswith("encoder."):
                num += m.weight.numel() * head_bits
                den += m.weight.numel()
    return num / den
