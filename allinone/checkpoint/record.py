"""The typed, versioned content of a checkpoint file.

Every ``*.pt`` file of this repository holds one ``CheckpointRecord`` as a plain dict
(``to_dict``), so ``torch.load`` alone can still read it. ``kind`` tells what wrote it:

- ``"train"``: ``train.py`` (``epoch-N.pt`` at the end of epoch N, ``checkpoint-N.pt``
  after global batch N, ``best-valid-loss.pt``); resumable, with optimizer, schedule,
  RNG streams and the sampler position.
- ``"ptq"``: post-training quantization of a trained model; weights only.

Format versions: 0 is the untyped dict written before the format was versioned (read
with the values it implies: ``kind`` from the presence of an optimizer state, the
averaging period from its training config); 1 adds ``format_version``, ``kind``,
``average_period``, ``annealing`` and ``source``; 2 adds ``grad_scaler``, ``rng_other_ranks``
and the sampler's own settings (``SamplerPosition.sampler_state``).
"""

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

from allinone.checkpoint.io import CheckpointError, load_checkpoint, save_checkpoint_atomic

FORMAT_VERSION = 2
KINDS = ("train", "ptq")
StateDict = Dict[str, torch.Tensor]


@dataclass
class SamplerPosition:
    """Where in the data a training checkpoint was written; the data order depends on the rest.

    Attributes:
        epoch: the epoch that runs next (``epoch-N.pt`` holds N + 1 with ``batches_done`` 0).
        batches_done: batches of ``epoch`` already trained.
        seed, world_size, max_duration: what the sampler's order depends on.
        sampler_state: the rest of it, lhotse's ``sampler.state_dict()`` without its progress
            counters (None: written before it was recorded). lhotse's own counters run ahead
            of training by the batches the data loader prefetched, so the position is the
            trainer's ``batches_done``, and a resume replays the sampler up to it.
    """

    epoch: int
    batches_done: int
    seed: int
    world_size: int
    max_duration: float
    sampler_state: Optional[Dict[str, Any]] = None


@dataclass
class CheckpointRecord:
    """What one checkpoint file holds.

    Attributes:
        kind: ``"train"`` or ``"ptq"`` (see the module docstring).
        model: the live model's state dict.
        model_config: ``ModelConfig.to_dict()`` of the model.
        subnets: names of the subnets the model was trained (or quantized) for, largest first.
        batch_idx_train: global batches trained when written.
        average_period: batches between snapshots of ``model_avg``.
        model_avg: mean of the weight snapshots since step 0 (``allinone.checkpoint.averaging``).
        optimizer, schedule, rng: resumable training state (``rng`` of rank 0).
        rng_other_ranks: the RNG states of ranks 1.. of a data-parallel run (their SpecAugment
            masks differ from rank 0's), so every rank resumes its own streams.
        grad_scaler: the fp16 gradient scaler's state (None: no fp16).
        sampler: position in the data (training only).
        best_valid_loss: lowest validation loss so far.
        train_seconds, train_cpu_seconds: training-loop time, cumulative over resumes (None:
            not recorded by the code that wrote it).
        nested_plan: signature of the nested training objective (a resume must not change it).
        train_config: the flat training flags (``TrainConfig.to_flat_dict``).
        annealing: the quantizer annealing value of the last step (``Annealing.to_dict``), for
            whoever inspects the file; a resume recomputes it from ``batch_idx_train`` and the
            run's schedule, which gives the same value.
        source: the checkpoint a post-training record was made from.
        format_version: ``FORMAT_VERSION`` of the code that wrote it.
        path: the file it was read from (not saved).
    """

    kind: str
    model: StateDict
    model_config: Dict[str, Any]
    subnets: List[str]
    batch_idx_train: int = 0
    average_period: int = 1
    model_avg: Optional[StateDict] = None
    optimizer: Optional[Dict[str, Any]] = None
    schedule: Optional[Dict[str, Any]] = None
    rng: Optional[Dict[str, Any]] = None
    rng_other_ranks: Optional[List[Dict[str, Any]]] = None
    grad_scaler: Optional[Dict[str, Any]] = None
    sampler: Optional[SamplerPosition] = None
    best_valid_loss: float = math.inf
    train_seconds: Optional[float] = None
    train_cpu_seconds: Optional[float] = None
    nested_plan: Optional[Dict[str, Any]] = None
    train_config: Dict[str, Any] = field(default_factory=dict)
    annealing: Optional[Dict[str, Any]] = None
    source: str = ""
    format_version: int = FORMAT_VERSION
    path: Optional[Path] = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise CheckpointError(f"{self.path or 'checkpoint'}: unknown kind {self.kind!r}; valid: {KINDS}")

    @property
    def completed_epoch(self) -> Optional[int]:
        """N for a record written at the end of epoch N, else None (mid-epoch or not training)."""
        if self.sampler is None or self.sampler.batches_done != 0:
            return None
        return self.sampler.epoch - 1

    def to_dict(self) -> Dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "path"}
        d["sampler"] = asdict(self.sampler) if self.sampler is not None else None
        return d

    @classmethod
    def from_dict(cls, d: Dict[str, Any], path: Optional[Path] = None) -> "CheckpointRecord":
        """A record from a file's dict, of any format version up to ``FORMAT_VERSION``."""
        version = int(d.get("format_version", 0))
        if version > FORMAT_VERSION:
            raise CheckpointError(
                f"{path}: checkpoint format {version} is newer than this code reads ({FORMAT_VERSION})"
            )
        d = dict(d) if version else _upgrade_v0(d)
        known = {f.name for f in fields(cls)} - {"path"}
        missing = [k for k in ("model", "model_config") if k not in d]
        if missing:
            raise CheckpointError(f"{path}: checkpoint lacks {missing}")
        values = {k: v for k, v in d.items() if k in known}
        if values.get("sampler") is not None:
            values["sampler"] = SamplerPosition(**values["sampler"])
        values.setdefault("subnets", [])
        try:
            return cls(**values, path=Path(path) if path is not None else None)
        except TypeError as e:
            raise CheckpointError(f"{path}: not a checkpoint record ({e})") from None


def _upgrade_v0(d: Dict[str, Any]) -> Dict[str, Any]:
    """The values an untyped (format 0) checkpoint dict implies."""
    out = dict(d)
    out["kind"] = "train" if d.get("optimizer") is not None else "ptq"
    out["average_period"] = int((d.get("train_config") or {}).get("average_period", 1))
    out["format_version"] = FORMAT_VERSION
    return out


def write_record(record: CheckpointRecord, path) -> Path:
    """Write ``record`` to ``path`` atomically; returns the path."""
    return save_checkpoint_atomic(record.to_dict(), path)


def read_record(path) -> CheckpointRecord:
    """The record in checkpoint file ``path``.

    Raises:
        CheckpointError: naming ``path`` when it is missing, damaged, or not a checkpoint.
    """
    return CheckpointRecord.from_dict(load_checkpoint(path), Path(path))
