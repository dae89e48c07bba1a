"""Checkpoints: atomic files, the typed record they hold, and the weights read from them.

- ``io``: atomic writes, raw reads with errors that name the file, RNG state.
- ``record``: ``CheckpointRecord``, the versioned content of every ``*.pt`` file that
  training and post-training quantization write and decoding, export and reports read.
- ``averaging``: the running average training keeps and its inverse, the mean of the
  weights over an interval of steps.
- ``weights``: which weights a checkpoint gives, chosen by an explicit mode.
"""

from allinone.checkpoint.io import CheckpointError
from allinone.checkpoint.record import CheckpointRecord, SamplerPosition, read_record, write_record

__all__ = [
    "CheckpointError",
    "CheckpointRecord",
    "SamplerPosition",
    "read_record",
    "write_record",
]
