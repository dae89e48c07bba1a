"""Which weights a checkpoint gives, chosen by an explicit mode, never by its file name.

- ``"epoch-mean"``: the mean of the weights over the steps of the epoch an end-of-epoch
  record closes (``epoch-N.pt`` or ``best-valid-loss.pt``): what ``decode.py --epoch N
  --avg 1 --use-averaged-model true`` scores, so a compression run starts from the model
  the float baseline's WER belongs to;
- ``"final"``: the live weights when the file was written.
"""

from pathlib import Path
from typing import Dict, List, Tuple

import torch

from allinone.checkpoint.averaging import mean_between, mean_of_final_weights
from allinone.checkpoint.io import CheckpointError
from allinone.checkpoint.record import CheckpointRecord, read_record
from allinone.nn.build import build_model
from allinone.nn.model import Transducer
from allinone.subnet import SubnetConfig, SubnetError, full_subnet

WEIGHT_MODES = ("epoch-mean", "final")
StateDict = Dict[str, torch.Tensor]


def epoch_file(exp_dir: Path, epoch: int) -> Path:
    """``<exp_dir>/epoch-<epoch>.pt``, the file train.py writes at the end of an epoch."""
    return Path(exp_dir) / f"epoch-{epoch}.pt"


def epoch_mean(record: CheckpointRecord, exp_dir: Path, epochs: int = 1) -> StateDict:
    """Mean of the weights over the steps of the last ``epochs`` epochs that ``record`` closes.

    The record before them is ``epoch-<N - epochs>.pt`` in ``exp_dir``; when the interval
    starts at step 0 the record's own running average is the answer.
    """
    if record.kind != "train":
        return record.model  # post-training records hold one set of weights
    end = record.completed_epoch
    if end is None:
        raise CheckpointError(
            f"{record.path}: written mid-epoch (batch {record.batch_idx_train}); the epoch mean needs "
            "an end-of-epoch checkpoint (epoch-N.pt, best-valid-loss.pt); read its last weights "
            "with --float-weights final"
        )
    if not 1 <= epochs <= end:
        raise ValueError(f"--avg must be in 1..{end}, got {epochs}")
    if end == epochs:
        if record.model_avg is None:
            raise CheckpointError(f"{record.path} holds no averaged model")
        return record.model_avg
    return mean_between(read_record(epoch_file(exp_dir, end - epochs)), record)


def float_weights(path: Path, mode: str) -> Tuple[StateDict, Dict]:
    """The weights of checkpoint ``path`` in ``mode`` (``WEIGHT_MODES``) and its model config."""
    if mode not in WEIGHT_MODES:
        raise ValueError(f"unknown weights mode {mode!r}; valid: {WEIGHT_MODES}")
    record = read_record(path)
    weights = record.model if mode == "final" else epoch_mean(record, Path(path).parent)
    return weights, record.model_config


def decoding_weights(
    exp_dir: Path, epoch: int, avg: int = 1, use_averaged_model: bool = True
) -> Tuple[StateDict, CheckpointRecord]:
    """The weights ``decode.py --epoch --avg --use-averaged-model`` scores, and ``epoch-<epoch>.pt``.

    With ``use_averaged_model`` the mean over the steps of the last ``avg`` epochs (not
    the average since step 0, which still holds the untrained early weights); otherwise
    the mean of the epochs' final weights.
    """
    end = read_record(epoch_file(exp_dir, epoch))
    if avg < 1 or avg > epoch:
        raise ValueError(f"--avg must be in 1..{epoch}, got {avg}")
    if use_averaged_model:
        return epoch_mean(end, exp_dir, avg), end
    records = [read_record(epoch_file(exp_dir, e)) for e in range(epoch - avg + 1, epoch + 1)]
    return mean_of_final_weights(records), end


def trained_subnets(record: CheckpointRecord) -> List[SubnetConfig]:
    """The grid a checkpoint was trained for (largest first); the full model when it names none."""
    num_layers = record.model_config["num_layers"]
    names = record.subnets or [full_subnet(num_layers).name]
    try:
        return [SubnetConfig.from_name(n).resolved(num_layers) for n in names]
    except SubnetError as e:
        raise CheckpointError(f"{record.path}: bad subnet list {names}: {e}") from None


def model_from_weights(weights: StateDict, record: CheckpointRecord) -> Transducer:
    """The record's model in eval mode with ``weights`` loaded."""
    model = build_model(record.model_config)
    model.load_state_dict(weights)
    return model.eval()


def load_for_decoding(
    exp_dir: Path, epoch: int, avg: int = 1, use_averaged_model: bool = True
) -> Tuple[Transducer, List[SubnetConfig]]:
    """The model ``decode.py`` scores (see ``decoding_weights``) and its trained subnets."""
    weights, end = decoding_weights(exp_dir, epoch, avg, use_averaged_model)
    return model_from_weights(weights, end), trained_subnets(end)
