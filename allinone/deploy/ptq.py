"""Post-training int8 weight quantization of a float model: the baseline with no retraining.

Every quantized weight (the encoder's, and the heads' of a model built with
``quantize_heads``) gets symmetric per-output-channel int8 codes with the
max-abs scale ``max|w_row| / 127`` (the weight side of PyTorch's and onnxruntime's
dynamic int8 quantization, whose kernels would not see our sliced ``F.linear`` calls).
The result is a checkpoint record of kind ``"ptq"`` (one set of weights, no training
state) in ``epoch-1.pt``, so ``decode.py --epoch 1`` and ``export.py`` read its subnet
``d<L>-w1.0-b8`` as they read any other; the record's kind, not its name, tells readers
it was never trained (decoding takes its weights as they are, a resume refuses it).
"""

import time
from pathlib import Path
from typing import Dict

import torch

from allinone.checkpoint.record import CheckpointRecord, write_record
from allinone.checkpoint.weights import float_weights
from allinone.nn.build import build_model, init_from_float
from allinone.nn.model import ModelConfig, Transducer
from allinone.quant.layers import quant_layers
from allinone.quant.lsq import LSQQuantizer, flat_rows
from allinone.subnet import SubnetConfig

INT8_LEVELS = 127


@torch.no_grad()
def set_max_abs_steps(model: Transducer, bits: int = 8) -> None:
    """Per-channel steps ``max|w_row| / (2^(bits-1) - 1)`` for every quantized layer (heads included)."""
    layers = quant_layers(model)
    if not all(
        isinstance(m.quantizer, LSQQuantizer) and m.quant_cfg.granularity == "channel" for _, m in layers
    ):
        raise ValueError("max-abs post-training steps need a per-channel LSQ model")
    levels = 2 ** (bits - 1) - 1
    for _, m in layers:
        m.steps[f"b{bits}"].copy_(flat_rows(m.weight).abs().amax(1).clamp(min=1e-8) / levels)


def quantize_checkpoint_int8(float_checkpoint: Path, out_dir: Path, mode: str = "epoch-mean") -> Dict:
    """Write ``out_dir/epoch-1.pt``: the float model with int8 per-channel max-abs weights.

    Args:
        float_checkpoint: the trained float model.
        out_dir: where the record goes.
        mode: which weights of ``float_checkpoint`` to quantize (``WEIGHT_MODES``).

    Returns:
        {"subnet": name, "seconds": wall time of the quantization}.
    """
    start, cpu_start = time.time(), time.process_time()
    weights, cfg = float_weights(Path(float_checkpoint), mode)
    cfg = ModelConfig.from_dict({**cfg, "quant_granularity": "channel", "norm_subnets": ()})
    model = build_model(cfg)
    init_from_float(model, weights, str(float_checkpoint))
    set_max_abs_steps(model)
    subnet = SubnetConfig(depth=cfg.num_layers, bits=8)
    seconds, cpu_seconds = time.time() - start, time.process_time() - cpu_start
    state = model.state_dict()
    record = CheckpointRecord(
        kind="ptq",
        model=state,
        model_avg=state,
        model_config=cfg.to_dict(),
        subnets=[subnet.name],
        train_seconds=seconds,
        train_cpu_seconds=cpu_seconds,
        source=str(float_checkpoint),
    )
    write_record(record, Path(out_dir) / "epoch-1.pt")
    return {"subnet": subnet.name, "seconds": seconds}
