"""int8 variants of an exported ONNX model.

Two ways to int8, for two different questions:

- ``quantize_dynamic_int8``: onnxruntime's dynamic post-training quantization, as
  deployment recipes apply it to any float model (``*.int8.onnx``). Only ``MatMul``
  weights are quantized (int8, one scale per tensor, activations quantized per call);
  ``Conv`` (subsampling, depthwise and decoder convolutions), ``Gemm`` (the joiner and
  the decoder projection, which see 2-D inputs), the embedding, norms and biases stay
  float. Applied to a subnet trained at b <= 8 bits it rounds its weights a second time.
- ``int8_from_codes``: the subnet's own codes stored as 8-bit initializers
  (``*.int8-codes.onnx``). Every weight the subnet quantized with per-tensor or
  per-channel LSQ steps that a MatMul, Gemm or Conv reads is found by its rows and stored as int8 codes behind
  ``DequantizeLinear``; a GQ weight stored whole as one tensor becomes its uint8 centroid
  indices and codebook behind ``Gather`` (times its row scales, per channel). The values
  are the fake-quantized ones exactly (as the packed file decodes them), so there is no
  second rounding. Per-group LSQ steps, and GQ weights fused with others into one tensor
  (each brings its own codebook), stay float.
"""

import logging
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch

from allinone.quant.lsq import unoffset_codes
from allinone.quant.pack import TensorRecord

# Operators whose second input is a weight the codes may replace.
WEIGHT_OPS = ("MatMul", "Gemm", "Conv")


def quantize_dynamic_int8(src: Path, dst: Path) -> Path:
    """onnxruntime dynamic int8 quantization of ``src`` (MatMul weights, per tensor) into ``dst``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = Path(dst).with_name(Path(dst).name + ".tmp")
    logging.disable(logging.WARNING)  # its advice to run shape inference first, once per file
    try:
        quantize_dynamic(str(src), str(tmp), op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8)
    finally:
        logging.disable(logging.NOTSET)
    tmp.replace(dst)
    return Path(dst)


RowTable = Dict[bytes, Tuple[np.ndarray, float]]
# float32 bytes of a whole GQ weight (or of its transpose) -> (uint8 indices laid out like
# those bytes, codebook (K,), row scales or None, axis of the rows)
CodebookTable = Dict[bytes, Tuple[np.ndarray, np.ndarray, object, int]]


def codebook_tensors(
    records: Mapping[str, TensorRecord], weights: Mapping[str, torch.Tensor]
) -> CodebookTable:
    """Every GQ-coded weight of a packed file, keyed by its float32 bytes as stored and transposed."""
    table: CodebookTable = {}
    for name, rec in records.items():
        if rec.kind != "packed" or "codebook" not in rec.side:
            continue
        w = weights[name].detach().float().numpy()
        idx = rec.unpacked_codes().reshape(w.shape).numpy().astype(np.uint8)
        book = rec.side["codebook"].float().numpy()
        scale = rec.side["channel_scale"].float().numpy().reshape(-1) if "channel_scale" in rec.side else None
        table[np.ascontiguousarray(w).tobytes() + bytes(str(w.shape), "ascii")] = (idx, book, scale, 0)
        if w.ndim == 2:
            t = np.ascontiguousarray(w.T)
            table[t.tobytes() + bytes(str(t.shape), "ascii")] = (np.ascontiguousarray(idx.T), book, scale, 1)
    return table


def code_rows(
    records: Mapping[str, TensorRecord], weights: Mapping[str, torch.Tensor], granularity: str
) -> RowTable:
    """Every row of every LSQ-coded weight: float32 row bytes -> (int8 codes of the row, step).

    Args:
        records: a packed file's records (``read_packed_file``).
        weights: name -> dequantized float weight of the model the file rebuilds (its shape).
        granularity: the file's LSQ granularity; "group" steps have no per-row form.
    """
    table: RowTable = {}
    if granularity == "group":
        return table
    for name, rec in records.items():
        if rec.kind != "packed" or set(rec.side) != {"scale"}:
            continue  # float tensors, and GQ codebooks
        w = weights[name].detach().float()
        codes = unoffset_codes(rec.unpacked_codes(), rec.bits).reshape(w.shape)
        step = rec.side["scale"].float().reshape(-1)
        rows = w.shape[0]
        steps = step.expand(rows) if step.numel() == 1 else step
        if steps.numel() != rows:
            continue
        code_rows_ = codes.reshape(rows, -1)
        values = (code_rows_.float() * steps[:, None]).numpy()
        w_rows = w.reshape(rows, -1).numpy()
        if not np.array_equal(values, w_rows):
            raise ValueError(f"{name}: codes x steps do not reproduce the stored weight")
        for i in range(rows):
            table[np.ascontiguousarray(w_rows[i]).tobytes()] = (
                code_rows_[i].numpy().astype(np.int8),
                float(steps[i]),
            )
    return table


def _match_rows(array: np.ndarray, table: RowTable, axis: int):
    """(codes like ``array``, per-slice steps) if every slice along ``axis`` is a coded row."""
    moved = np.moveaxis(array, axis, 0)
    rows = np.ascontiguousarray(moved.reshape(moved.shape[0], -1))
    found = [table.get(r.tobytes()) for r in rows]
    if not found or any(f is None for f in found):
        return None
    codes = np.stack([f[0] for f in found]).reshape(moved.shape)
    steps = np.array([f[1] for f in found], dtype=np.float32)
    return np.moveaxis(codes, 0, axis), steps


def _gather_nodes(name: str, idx: np.ndarray, book: np.ndarray, scale, axis: int):
    """Initializers and nodes that rebuild weight ``name`` from GQ indices and codebook."""
    from onnx import helper, numpy_helper

    inits = [
        numpy_helper.from_array(idx, f"{name}_indices"),
        numpy_helper.from_array(book, f"{name}_codebook"),
    ]
    nodes = [
        helper.make_node("Cast", [f"{name}_indices"], [f"{name}_indices_i32"], to=6),  # int32
        helper.make_node(
            "Gather",
            [f"{name}_codebook", f"{name}_indices_i32"],
            [f"{name}_unscaled" if scale is not None else name],
        ),  # fmt: skip
    ]
    if scale is not None:
        shape = [1] * idx.ndim
        shape[axis] = -1
        inits.append(numpy_helper.from_array(scale.reshape(shape).astype(np.float32), f"{name}_row_scale"))
        nodes.append(helper.make_node("Mul", [f"{name}_unscaled", f"{name}_row_scale"], [name]))
    return inits, nodes


def int8_from_codes(
    src: Path, dst: Path, table: RowTable, codebooks: Optional[CodebookTable] = None
) -> Dict[str, float]:
    """Write ``dst``: ``src`` with every weight initializer found in ``table`` (LSQ rows) or
    ``codebooks`` (whole GQ tensors) stored as the subnet's 8-bit codes.

    Returns:
        {"replaced": initializers replaced, "int8_params": their elements,
         "float_params": elements of the weight initializers left float}.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    weight_inputs = {n.input[1] for n in graph.node if n.op_type in WEIGHT_OPS and len(n.input) > 1}
    kept: List = []
    nodes: List = []
    stats = {"replaced": 0, "int8_params": 0, "float_params": 0}
    for init in graph.initializer:
        if init.name not in weight_inputs or init.data_type != onnx.TensorProto.FLOAT:
            kept.append(init)
            continue
        array = numpy_helper.to_array(init)
        gq = (codebooks or {}).get(np.ascontiguousarray(array).tobytes() + bytes(str(array.shape), "ascii"))
        if gq is not None:
            inits, new_nodes = _gather_nodes(init.name, *gq)
            kept += inits
            nodes += new_nodes
            stats["replaced"] += 1
            stats["int8_params"] += array.size
            continue
        match = None
        for axis in (0, array.ndim - 1) if array.ndim > 1 else ():
            match = _match_rows(array, table, axis)
            if match is not None:
                break
        if match is None:
            kept.append(init)
            stats["float_params"] += array.size
            continue
        codes, steps = match
        kept += [
            numpy_helper.from_array(codes.astype(np.int8), f"{init.name}_codes"),
            numpy_helper.from_array(steps, f"{init.name}_step"),
            numpy_helper.from_array(np.zeros_like(steps, dtype=np.int8), f"{init.name}_zero"),
        ]
        nodes.append(
            helper.make_node(
                "DequantizeLinear",
                [f"{init.name}_codes", f"{init.name}_step", f"{init.name}_zero"],
                [init.name],
                name=f"{init.name}_dequantize",
                axis=axis,
            )
        )
        stats["replaced"] += 1
        stats["int8_params"] += array.size
    del graph.initializer[:]
    graph.initializer.extend(kept)
    old_nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + old_nodes)  # producers first: the graph stays topologically sorted
    onnx.checker.check_model(model)
    tmp = Path(dst).with_name(Path(dst).name + ".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(dst)
    return stats
