"""One subnet of a (nested) model as a standalone packed low-bit model file, and back.

The file (``allinone.quant.pack``) holds what the subnet runs and nothing else:

- the physical encoder blocks it uses (renumbered), at its FFN width, with the
  BatchNorm statistics of its slot(s) and any unfolding relaxation;
- every quantized weight as packed integer codes plus its steps (LSQ, any granularity)
  or as b-bit indices plus a codebook (GQ), at the subnet's (or a mixed layer's
  finalised) bit-width; float weights where the subnet runs at 32 bits;
- every other parameter as float32 (norms, biases, decoder, joiner, CTC head; the
  training-only simple-loss projections and quantizer search state are left out);
- the standalone model's config and the subnet it runs (float, since the stored codes
  are dequantized on loading), in the header.

Loading rebuilds a plain float ``Transducer`` whose outputs equal the fake-quantized
subnet's, so any decoder runs it unchanged. With ``keep_codes`` the quantized weights stay
in memory as the file's packed codes and are dequantized each time a layer runs
(:class:`PackedWeight`), so the resident model is about as small as the file.
"""

from dataclasses import replace
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
from torch.nn.utils import parametrize

from allinone.deploy.accounting import (
    LAYER_PREFIXES,
    TRAINING_ONLY,
    TRANSDUCER_ONLY,
    float_model_bytes,
    layer_index,
    subnet_footprint,
)
from allinone.deploy.naming import weight_class
from allinone.nn.build import build_model, grid_state
from allinone.nn.model import ModelConfig, Transducer
from allinone.nn.ssl import SSL_KINDS
from allinone.quant.layers import QUANT_LAYERS
from allinone.quant.pack import (
    PackedFileError,
    TensorRecord,
    payload_bytes,
    read_packed_file,
    unpack_bits,
    write_packed_file,
)
from allinone.quant.quantizer import QuantConfig, quantizer_for_side
from allinone.subnet import FLOAT_BITS, HEAD_CLASS, MIXED_BITS, SubnetConfig, SubnetError
from allinone.unfold import occurrences

FORMAT = "allinone-packed-subnet"
# State of the training objective or of the quantizers: never part of a deployed model.
SKIPPED = TRAINING_ONLY + ("steps.", "centroids.", "mp_logits", "mp_bits")


def _skipped(cfg: ModelConfig) -> Tuple[str, ...]:
    """Name parts of the tensors a deployed model of ``cfg`` does not hold."""
    return SKIPPED + (() if cfg.use_transducer else tuple(f"{p}." for p in TRANSDUCER_ONLY))


def _standalone(model: Transducer, subnet: SubnetConfig) -> Tuple[ModelConfig, SubnetConfig, Tuple[int, ...]]:
    """Config of the smallest plain model that runs ``subnet``, the subnet it runs, and its blocks."""
    cfg = model.config
    if isinstance(subnet.ffn_ratio, tuple):
        raise SubnetError(f"cannot export {subnet.name}: per-layer FFN widths need a per-layer ffn_dim")
    schedule = subnet.schedule(cfg.num_layers)
    used = tuple(sorted(set(schedule)))
    local = tuple(used.index(b) for b in schedule)
    unfold = None if local == tuple(range(len(local))) else local
    run = SubnetConfig(depth=len(local), unfold=unfold)
    ffn_dim = cfg.ffn_dim
    extra = {}
    if cfg.encoder == "conformer":
        ffn_dim = model.encoder.layers[0].ff.hidden_units(subnet.ffn_ratio)
    elif cfg.encoder in SSL_KINDS:
        ffn_dim = model.encoder.hidden_units(subnet.ffn_ratio)
        extra["ssl_config"] = {**cfg.ssl_config, "num_hidden_layers": len(used), "intermediate_size": ffn_dim}
    small = replace(
        cfg,
        **extra,
        num_layers=len(used),
        ffn_dim=ffn_dim,
        **grid_state(len(used), [run], unfold_relax=bool(cfg.unfold_relax)),
        # The stored weights load dequantized into float layers: default (unused) quantizers.
        quantizer=QuantConfig().method,
        quant_granularity=QuantConfig().granularity,
        mp_candidates="",
        quantize_heads=False,  # the file's quantized heads load as float (dequantized) weights
    )
    return small, run, used


def _source_name(name: str, used: Tuple[int, ...]) -> str:
    """The parameter of the nested model that standalone parameter ``name`` comes from."""
    block = layer_index(name)
    if block is None:
        return name
    prefix = next(p for p in LAYER_PREFIXES if name.startswith(p))
    rest = name[len(prefix) :].split(".", 1)[1]
    return f"{prefix}{used[block]}.{rest}"


def _ffn_slice(name: str, units: int) -> Tuple[Optional[int], Optional[int]]:
    """(out_units, in_units) of a width-sliced FFN tensor, (None, None) for every other tensor."""
    conformer_ffn = ".ff." in name or ".ff_macaron." in name
    if (conformer_ffn and ".linear1." in name) or ".feed_forward.intermediate_dense." in name:
        return units, None  # rows (and the bias) of the first FFN layer
    if (conformer_ffn and ".linear2.weight" in name) or ".feed_forward.output_dense.weight" in name:
        return None, units  # columns of the second
    return None, None


def _quantized_record(layer: nn.Module, w: torch.Tensor, bits: int, out_units, in_units) -> TensorRecord:
    """Codes of the sliced weight ``w`` of ``layer`` at ``bits`` with its steps or codebook."""
    codes, side = layer.quantizer.codes(w, bits, out_units, in_units)
    return TensorRecord.from_codes(codes, bits, side=side)


@torch.no_grad()
def export_subnet(model: Transducer, subnet: SubnetConfig, path) -> Dict:
    """Write ``subnet`` of ``model`` to the packed file ``path``.

    Returns:
        {"path", "file_bytes", "accounted_bytes", "config", "run_subnet"}.
    """
    model = model.eval()
    subnet = subnet.resolved(model.config.num_layers)
    small_cfg, run, used = _standalone(model, subnet)
    small = build_model(small_cfg)
    big = dict(model.named_parameters())
    big.update(dict(model.named_buffers()))
    big_modules = dict(model.named_modules())
    schedule = subnet.schedule(model.config.num_layers)
    # statistics slot of the k-th use of a block: the same key in both models
    slot_of = {k: model.encoder.norm_slot(subnet, k) for k in set(occurrences(schedule))}
    k_units = small_cfg.ffn_dim
    records: Dict[str, TensorRecord] = {}
    skipped = _skipped(small_cfg)
    for name, target in small.state_dict().items():
        if any(name.startswith(s) or f".{s}" in name for s in skipped):
            continue
        src_name = _source_name(name, used)
        src = big[src_name]
        out_units, in_units = _ffn_slice(name, k_units)
        if name.endswith(("running_mean", "running_var")):
            keys = small.encoder.norm_slots or {run.name: 0}
            src = torch.stack([src[slot_of[_occurrence(key)]] for key in keys])
        elif name.startswith("encoder.unfold_"):
            src = src[list(used), : target.shape[1]]
        else:
            src = src[:out_units] if out_units else src
            src = src[:, :in_units] if in_units else src
        owner = big_modules.get(src_name.rsplit(".", 1)[0])
        if isinstance(owner, QUANT_LAYERS) and name.endswith(".weight"):
            cls = weight_class(name)
            bits = model.head_bits(subnet) if cls == HEAD_CLASS else subnet.bits_for(cls)
            if bits == MIXED_BITS:
                bits = owner.chosen_bits()
            if bits != FLOAT_BITS:
                records[name] = _quantized_record(owner, src, bits, out_units, in_units)
                continue
        if src.shape != target.shape:
            raise RuntimeError(f"export of {name}: {tuple(src.shape)} does not fit {tuple(target.shape)}")
        records[name] = TensorRecord.from_float(src)
    meta = {
        "format": FORMAT,
        "config": small_cfg.to_dict(),
        "run_subnet": run.name,
        "source_subnet": subnet.name,
        "granularity": model.config.quant_granularity,
        "group_size": model.config.quant_group_size,
        "params": subnet_footprint(model, subnet).params,
        "float_model_bytes": float_model_bytes(model),
    }
    write_packed_file(path, meta, records)
    return {
        "path": str(path),
        "file_bytes": Path(path).stat().st_size,
        "payload_bytes": payload_bytes(records),
        "accounted_bytes": subnet_footprint(model, subnet).stored_bytes,
        "config": small_cfg.to_dict(),
        "run_subnet": run.name,
    }


def _occurrence(key: str) -> int:
    return int(key.rsplit("@", 1)[1]) if "@" in key else 0


def _dequantize(rec: TensorRecord, granularity: str, group_size: int) -> torch.Tensor:
    """Float weight of a packed record; the side arrays stored tell which quantizer wrote it."""
    cfg = QuantConfig(granularity=granularity, group_size=group_size)
    return quantizer_for_side(rec.side).decode(rec.unpacked_codes(), rec.bits, rec.side, cfg)


class PackedWeight(nn.Module):
    """A parametrization that keeps a weight as its packed b-bit codes.

    Registered on a layer's ``weight`` (``torch.nn.utils.parametrize``, over a uint8
    buffer of the codes), it dequantizes on every access: ``layer.weight`` is the same
    float tensor ``load_packed_model`` would have stored, but only the codes and the
    record's side arrays (steps or codebook) stay resident between forwards.

    Args:
        rec: the packed record.
        shape: the weight's shape in the model.
        granularity, group_size: the file's LSQ step layout.
    """

    def __init__(self, rec: TensorRecord, shape: Tuple[int, ...], granularity: str, group_size: int):
        super().__init__()
        self.bits, self.numel, self.code_shape, self.shape = rec.bits, rec.numel, rec.shape, tuple(shape)
        self.cfg = QuantConfig(granularity=granularity, group_size=group_size)
        self.decoder = quantizer_for_side(rec.side)
        self.side_names = tuple(rec.side)
        for name, value in rec.side.items():
            self.register_buffer(f"side_{name}", value)

    def forward(self, packed: torch.Tensor) -> torch.Tensor:
        """packed: (ceil(numel * bits / 8),) uint8 -> the float weight of ``shape``."""
        side = {name: getattr(self, f"side_{name}") for name in self.side_names}
        codes = unpack_bits(packed, self.bits, self.numel).view(self.code_shape)
        return self.decoder.decode(codes, self.bits, side, self.cfg).reshape(self.shape)


def _keep_packed(model: nn.Module, name: str, rec: TensorRecord, meta: Dict) -> bool:
    """Hold parameter ``name`` as ``rec``'s codes behind a :class:`PackedWeight`; False
    (nothing changed) for a tensor that is not a layer's own ``weight`` parameter."""
    module_name, _, attr = name.rpartition(".")
    module = model.get_submodule(module_name)
    param = module._parameters.get(attr)
    if attr != "weight" or param is None or parametrize.is_parametrized(module, attr):
        return False
    shape = tuple(param.shape)
    del module._parameters[attr]
    module.register_buffer(attr, rec.data)
    keeper = PackedWeight(rec, shape, meta["granularity"], meta["group_size"])
    parametrize.register_parametrization(module, attr, keeper, unsafe=True)
    return True


def load_packed_model(path, keep_codes: bool = False) -> Tuple[Transducer, SubnetConfig, Dict]:
    """Rebuild the model a packed file holds.

    Args:
        keep_codes: hold every quantized layer weight as its packed codes, dequantized at
            each use (:class:`PackedWeight`): the same outputs in less memory, for a
            dequantization per forward.
    Returns:
        (float ``Transducer`` in eval mode, the subnet to run it with, the file's meta).
    Raises:
        PackedFileError: naming ``path`` for a damaged file, one that is not a packed
            subnet, or one whose tensors do not fit the model its header describes.
    """
    meta, records = read_packed_file(path)
    if meta.get("format") != FORMAT:
        raise PackedFileError(f"{path}: not a packed subnet file (format {meta.get('format')!r})")
    try:
        cfg = ModelConfig.from_dict(meta["config"])
        model = build_model(cfg)
        state = model.state_dict()
        for name, rec in records.items():
            if name not in state:
                raise KeyError(f"unexpected tensor {name}")
            if rec.kind != "float" and keep_codes:
                continue  # stays packed: checked below, set by _keep_packed
            value = (
                rec.data if rec.kind == "float" else _dequantize(rec, meta["granularity"], meta["group_size"])
            )
            state[name] = value.reshape(state[name].shape)
        skipped = _skipped(cfg)
        missing = [
            n for n in state if n not in records and not any(n.startswith(s) or f".{s}" in n for s in skipped)
        ]
        if missing:
            raise KeyError(f"missing tensors {missing[:5]}")
        model.load_state_dict(state)
        if keep_codes:
            for name, rec in records.items():
                if rec.kind != "float" and not _keep_packed(model, name, rec, meta):
                    with torch.no_grad():  # not a layer weight: stored dequantized
                        value = _dequantize(rec, meta["granularity"], meta["group_size"])
                        model.get_parameter(name).copy_(value.reshape(model.get_parameter(name).shape))
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise PackedFileError(f"{path}: tensors do not match the model in its header ({e})") from None
    return model.eval(), SubnetConfig.from_name(meta["run_subnet"]), meta


def resident_weight_bytes(model: nn.Module) -> int:
    """Bytes of every parameter and buffer the model holds (packed codes at their size)."""
    tensors = {id(t): t for t in list(model.parameters()) + list(model.buffers())}
    return sum(t.numel() * t.element_size() for t in tensors.values())


@torch.no_grad()
def round_trip_error(model: Transducer, subnet: SubnetConfig, path) -> float:
    """How far the model in packed file ``path`` is from ``subnet`` of ``model``.

    Both run a fixed random batch (features (2, 300, num_features), lengths 300 and 217,
    or for a waveform encoder samples (2, 8000), lengths 8000 and 5800; seed 0): the
    encoders, and the heads as a deployed system runs them (quantized, with
    ``quantize_heads``): CTC log-probabilities and joiner logits on two token contexts.

    Returns:
        the largest absolute difference of any output (0 up to float rounding when the
        export is exact).
    """
    model = model.eval()
    reloaded, run, _ = load_packed_model(path)
    torch.manual_seed(0)
    if model.config.encoder in SSL_KINDS:
        x, lens = torch.randn(2, 8000), torch.tensor([8000, 5800])
    else:
        x, lens = torch.randn(2, 300, model.config.num_features), torch.tensor([300, 217])
    ref, _ = model.encoder(x, lens, subnet)
    got, _ = reloaded.encoder(x, lens, run)
    diffs = [(ref - got).abs().max()]
    bits = model.head_bits(subnet)
    if model.ctc_output is not None:
        diffs.append((model.ctc_log_probs(ref, bits) - reloaded.ctc_log_probs(got)).abs().max())
    if model.config.use_transducer:
        y = torch.tensor([[model.config.blank_id, 1], [2, 3]])
        want = model.joiner(ref[:, :, None], model.decoder(y, bits=bits)[:, None], bits=bits)
        diffs.append((want - reloaded.joiner(got[:, :, None], reloaded.decoder(y)[:, None])).abs().max())
    return float(max(diffs))


def file_vs_accounting(info: Dict) -> float:
    """Relative difference of the file size from the accounted stored size."""
    return info["file_bytes"] / info["accounted_bytes"] - 1.0
