"""Run exported ONNX models with onnxruntime alone: checks, sessions and a search adapter.

``OnnxTransducer`` gives onnxruntime sessions the interface the repository's transducer
searches use (``allinone.decoding.transducer_search``; ``allinone.decoding.onnx_recipe``
runs them), so greedy and modified beam search over ONNX files are the very algorithms
``decode.py`` runs, for environments with onnxruntime but without sherpa-onnx.
``check_onnx_model`` is what stands between a damaged file and sherpa-onnx, whose C++
loader aborts the process on one.
"""

from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import torch

from allinone.deploy.onnx_export import INPUTS, OUTPUTS, REQUIRED_METADATA
from allinone.subnet import FLOAT_BITS


class OnnxModelError(ValueError):
    """An ONNX file that cannot serve as the part it is meant for, named in the message."""


def open_session(path: Path, num_threads: int = 1, optimization: str = "all"):
    """An onnxruntime CPU session of ``path`` with ``num_threads`` intra-op threads.

    ``optimization="basic"`` stops onnxruntime from fusing ``DequantizeLinear`` into int8
    matrix products (an "extended" rewrite), so an ``int8-codes`` model then computes
    exactly what its float twin computes; "all" (the default, and sherpa-onnx's) runs the
    int8 kernels.

    Raises:
        OnnxModelError: naming ``path`` when it is missing or not a model onnxruntime loads
            (truncated, corrupt, not ONNX).
    """
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise OnnxModelError(f"{path}: no such ONNX file")
    options = ort.SessionOptions()
    options.intra_op_num_threads = num_threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    levels = {
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    options.graph_optimization_level = levels[optimization]
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    # onnxruntime raises its own exception types per failure (protobuf parse, graph, shape);
    # the user needs the file's name and the reason whichever it is.
    except Exception as e:  # noqa: BLE001
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise OnnxModelError(f"{path}: not a loadable ONNX model ({reason})") from None


def check_onnx_model(path: Path, part: str, session=None) -> Dict[str, str]:
    """Check that ``path`` is a loadable ``part`` ("encoder", "decoder", "joiner", "ctc").

    The input and output names must be the ones the part is exported with, and the
    metadata keys sherpa-onnx reads must be present.

    Returns:
        the model's metadata.
    Raises:
        OnnxModelError: naming ``path`` and what is wrong.
    """
    session = session or open_session(path)
    inputs = [i.name for i in session.get_inputs()]
    outputs = [o.name for o in session.get_outputs()]
    if inputs != INPUTS[part] or outputs != OUTPUTS[part]:
        raise OnnxModelError(
            f"{path}: not an exported {part}: inputs {inputs}, outputs {outputs} "
            f"(expected {INPUTS[part]} -> {OUTPUTS[part]})"
        )
    metadata = dict(session.get_modelmeta().custom_metadata_map)
    missing = [k for k in REQUIRED_METADATA.get(part, ()) if k not in metadata]
    if missing:
        raise OnnxModelError(
            f"{path}: the {part} lacks the metadata {', '.join(missing)} that sherpa-onnx reads"
        )
    return metadata


class _DecoderAdapter:
    """The ONNX decoder behind ``StatelessDecoder``'s search-time call."""

    def __init__(self, session, blank_id: int, context_size: int):
        self.session, self.blank_id, self.context_size = session, blank_id, context_size

    def __call__(self, y: torch.Tensor, need_pad: bool = False, bits: int = FLOAT_BITS) -> torch.Tensor:
        (out,) = self.session.run(None, {"y": y.cpu().numpy().astype(np.int64)})
        return torch.from_numpy(out).unsqueeze(1)  # (M, 1, joiner_dim): already projected


class _JoinerAdapter:
    """The ONNX joiner behind ``Joiner``'s search-time calls; both inputs arrive projected."""

    def __init__(self, session):
        self.session = session

    def project_encoder(self, x: torch.Tensor, bits: int = FLOAT_BITS) -> torch.Tensor:
        return x

    def project_decoder(self, x: torch.Tensor, bits: int = FLOAT_BITS) -> torch.Tensor:
        return x

    def __call__(
        self, enc: torch.Tensor, dec: torch.Tensor, project_input: bool = False, bits: int = FLOAT_BITS
    ):
        feeds = {"encoder_out": enc.contiguous().numpy(), "decoder_out": dec.contiguous().numpy()}
        (logit,) = self.session.run(None, feeds)
        return torch.from_numpy(logit)


class OnnxTransducer:
    """Encoder, decoder and joiner sessions with the interface of ``Transducer`` in search.

    Args:
        paths: part -> ONNX file ("encoder", "decoder", "joiner").
        num_threads: intra-op threads of each session.
        optimization: onnxruntime graph optimisation, "all" or "basic" (``open_session``).
    """

    def __init__(self, paths: Dict[str, Path], num_threads: int = 1, optimization: str = "all"):
        sessions = {}
        metadata = {}
        for part in ("encoder", "decoder", "joiner"):
            sessions[part] = open_session(paths[part], num_threads, optimization)
            metadata[part] = check_onnx_model(paths[part], part, sessions[part])
        decoder_meta = metadata["decoder"]
        self.encoder_session = sessions["encoder"]
        self.feature_dim = int(metadata["encoder"].get("feature_dim", 80))
        self.takes_waveform = False  # the transducer export is of fbank models
        self.vocab_size = int(decoder_meta["vocab_size"])
        blank_id = int(decoder_meta.get("blank_id", 0))
        self.decoder = _DecoderAdapter(sessions["decoder"], blank_id, int(decoder_meta["context_size"]))
        self.joiner = _JoinerAdapter(sessions["joiner"])

    def encode(self, x: torch.Tensor, x_lens: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(N, T, F), (N,) -> projected encoder frames (N, T', joiner_dim), (N,)."""
        out, lens = self.encoder_session.run(
            None, {"x": x.numpy(), "x_lens": x_lens.numpy().astype(np.int64)}
        )
        return torch.from_numpy(out), torch.from_numpy(lens)


class OnnxCtc:
    """A ``ctc-*.onnx`` session: features -> CTC log-probabilities."""

    def __init__(self, path: Path, num_threads: int = 1, optimization: str = "all"):
        self.session = open_session(path, num_threads, optimization)
        metadata = check_onnx_model(path, "ctc", self.session)
        self.feature_dim = int(metadata.get("feature_dim", 80))
        self.takes_waveform = metadata.get("input") == "waveform"
        self.blank_id = int(metadata.get("blank_id", 0))

    def log_probs(self, x: torch.Tensor, x_lens: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(N, T, F) features or (N, S) samples, (N,) -> (N, T', V) log-probabilities, (N,)."""
        if self.takes_waveform and x.dim() == 3:
            x = x.squeeze(-1)
        out, lens = self.session.run(None, {"x": x.numpy(), "x_lens": x_lens.numpy().astype(np.int64)})
        return torch.from_numpy(out), torch.from_numpy(lens)


def parts_for(onnx_dir: Path, stem: str, variant: str, ctc: bool = False) -> Dict[str, Path]:
    """The files of one exported subnet and variant, as ``onnx_path`` names them."""
    from allinone.deploy.onnx_export import onnx_path

    parts = ("ctc",) if ctc else ("encoder", "decoder", "joiner")
    return {p: onnx_path(onnx_dir, p, stem, variant) for p in parts}


def max_abs_diff(a: np.ndarray, b: np.ndarray, lens: Optional[np.ndarray] = None) -> float:
    """Largest |a - b| over the valid frames (first ``lens[i]`` of row i) of two (N, T, ...) arrays."""
    if lens is None:
        return float(np.abs(a - b).max())
    return float(max(np.abs(a[i, :n] - b[i, :n]).max() for i, n in enumerate(lens) if n > 0))
