"""Load a model for decoding and decode whole test sets."""

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch
from tqdm import tqdm

from allinone.data.tokenizer import BpeTokenizer
from allinone.decoding.ctc_search import CTC_METHODS, CtcSearcher
from allinone.decoding.transducer_search import greedy_search_batch, modified_beam_search
from allinone.nn.model import ModelConfig, Transducer
from allinone.subnet import FULL, SubnetConfig, SubnetError, full_subnet
from allinone.utils.checkpoint import CheckpointError, average_state_dicts, load_checkpoint

TRANSDUCER_METHODS = ("greedy_search", "modified_beam_search")
DECODING_METHODS = TRANSDUCER_METHODS + CTC_METHODS


def _model_from_state(state: Dict) -> Transducer:
    model = Transducer(ModelConfig.from_dict(state["model_config"]))
    model.eval()
    return model


def _average_samples(state: Dict, path: Path) -> int:
    """How many weight snapshots ``state["model_avg"]`` is the mean of.

    ``train.py`` folds the weights in every ``average_period`` batches, at the batch indices
    that are multiples of it, so after batch n the average holds n // period snapshots.
    """
    period = int((state.get("train_config") or {}).get("average_period", 1))
    if period < 1:
        raise CheckpointError(f"{path}: bad average_period {period}")
    return state["batch_idx_train"] // period


def averaged_model_between(start_path: Path, end_path: Path) -> Dict[str, torch.Tensor]:
    """Mean of the weights over the training steps between two checkpoints.

    Each checkpoint's ``model_avg`` is the mean of the k weight snapshots taken since step 0
    (``_average_samples``), so the mean of the snapshots after the start checkpoint is
    ``(k_end * avg_end - k_start * avg_start) / (k_end - k_start)``. Counting batches
    instead of snapshots is wrong whenever a checkpoint falls between two snapshots, and
    the error grows with how far the weights moved since step 0: statistics and LSQ steps
    that shrank 30-fold came out negative that way.
    """
    start, end = load_checkpoint(start_path), load_checkpoint(end_path)
    k0, k1 = _average_samples(start, start_path), _average_samples(end, end_path)
    if start["model_avg"] is None or end["model_avg"] is None:
        raise CheckpointError(f"{start_path} or {end_path} holds no averaged model")
    if k1 <= k0:
        raise CheckpointError(
            f"{end_path} (batch {end['batch_idx_train']}) holds no averaged snapshot after "
            f"{start_path} (batch {start['batch_idx_train']})"
        )
    out = {}
    for k, v_end in end["model_avg"].items():
        v_start = start["model_avg"][k]
        if v_end.is_floating_point():
            out[k] = ((v_end.double() * k1 - v_start.double() * k0) / (k1 - k0)).to(v_end.dtype)
        else:
            out[k] = v_end
    return out


def trained_subnets(state: Dict, path: Path) -> List[SubnetConfig]:
    """The training grid recorded in a checkpoint (largest first); the full model for old ones."""
    num_layers = state["model_config"]["num_layers"]
    names = state.get("subnets") or [full_subnet(num_layers).name]
    try:
        return [SubnetConfig.from_name(n).resolved(num_layers) for n in names]
    except SubnetError as e:
        raise CheckpointError(f"{path}: bad subnet list {names}: {e}") from None


def load_for_decoding(
    exp_dir: Path, epoch: int, avg: int = 1, use_averaged_model: bool = True
) -> Tuple[Transducer, List[SubnetConfig]]:
    """Build the model of ``epoch-<epoch>.pt``, averaged over ``avg`` epochs.

    Args:
        exp_dir: experiment directory holding ``epoch-N.pt``.
        epoch: last epoch to use.
        avg: number of epochs to average (``epoch-avg+1 .. epoch``).
        use_averaged_model: average the running-average weights over the steps of those
            epochs (needs ``epoch-<epoch-avg>.pt`` unless ``epoch == avg``); otherwise
            average the final weights of each epoch.
    Returns:
        (model in eval mode, the subnets it was trained with, largest first).
    """
    sd, end_state = decoding_weights(exp_dir, epoch, avg, use_averaged_model)
    model = _model_from_state(end_state)
    model.load_state_dict(sd)
    return model, trained_subnets(end_state, Path(exp_dir) / f"epoch-{epoch}.pt")


def decoding_weights(
    exp_dir: Path, epoch: int, avg: int = 1, use_averaged_model: bool = True
) -> Tuple[Dict[str, torch.Tensor], Dict]:
    """The weights ``decode.py --epoch --avg --use-averaged-model`` scores, and ``epoch-<epoch>.pt``.

    With ``use_averaged_model`` this is the mean of the weights over the steps of the last
    ``avg`` epochs (not the average since step 0 that ``model_avg`` holds, which still
    includes the untrained early weights); otherwise the mean of the epochs' final weights.
    """
    exp_dir = Path(exp_dir)
    end_path = exp_dir / f"epoch-{epoch}.pt"
    end_state = load_checkpoint(end_path)
    if avg < 1 or avg > epoch:
        raise ValueError(f"--avg must be in 1..{epoch}, got {avg}")
    if use_averaged_model:
        if epoch - avg == 0:
            if end_state["model_avg"] is None:
                raise CheckpointError(f"{end_path} holds no averaged model")
            sd = end_state["model_avg"]
        else:
            sd = averaged_model_between(exp_dir / f"epoch-{epoch - avg}.pt", end_path)
        logging.info(f"averaged model over the steps of epochs {epoch - avg + 1}..{epoch}")
    else:
        sd = average_state_dicts([exp_dir / f"epoch-{e}.pt" for e in range(epoch - avg + 1, epoch + 1)])
    return sd, end_state


@dataclass
class DecodeStats:
    audio_seconds: float = 0.0
    decode_seconds: float = 0.0

    @property
    def rtf(self) -> float:
        return self.decode_seconds / max(self.audio_seconds, 1e-9)


@torch.no_grad()
def decode_dataset(
    model: Transducer,
    loader,
    tokenizer: BpeTokenizer,
    method: str = "modified_beam_search",
    beam: int = 4,
    subnet: SubnetConfig = FULL,
    desc: str = "decoding",
    ctc_searcher: Optional[CtcSearcher] = None,
    blank_penalty: float = 0.0,
) -> Tuple[List[Tuple[str, List[str], List[str]]], DecodeStats]:
    """Decode every batch of ``loader``.

    Transducer methods search with the decoder and joiner, ``blank_penalty`` subtracted
    from the blank logit; CTC methods (``CTC_METHODS``) need ``ctc_searcher``, built once
    per method so graphs are loaded once.

    Returns:
        (results, stats): results are ``(cut_id, ref_words, hyp_words)``; stats hold the
        audio duration and the wall time spent in the model and search (the real-time
        factor excludes data loading).
    """
    if method not in DECODING_METHODS:
        raise ValueError(f"unknown decoding method {method!r}; choose from {DECODING_METHODS}")
    if method in CTC_METHODS and (ctc_searcher is None or ctc_searcher.method != method):
        raise ValueError(f"decoding method {method} needs a CtcSearcher for it")
    if method in CTC_METHODS and blank_penalty != 0:
        raise ValueError(f"a blank penalty applies to transducer search, not to {method}")
    model.eval()
    head_bits = model.head_bits(subnet)
    results = []
    stats = DecodeStats()
    for batch in tqdm(loader, desc=desc, leave=False):
        sup = batch["supervisions"]
        features = batch["inputs"][sup["sequence_idx"]]
        feature_lens = sup["num_frames"].long()
        t0 = time.perf_counter()
        enc, enc_lens = model.encode(features, feature_lens, subnet)
        if method in CTC_METHODS:
            words = ctc_searcher(model.ctc_log_probs(enc, head_bits), enc_lens)
        elif method == "greedy_search":
            hyps = greedy_search_batch(model, enc, enc_lens, head_bits=head_bits, blank_penalty=blank_penalty)
            words = [tokenizer.decode(h).split() for h in hyps]
        else:
            hyps = modified_beam_search(
                model, enc, enc_lens, beam=beam, head_bits=head_bits, blank_penalty=blank_penalty
            )
            words = [tokenizer.decode(h).split() for h in hyps]
        stats.decode_seconds += time.perf_counter() - t0
        for cut, text, hyp in zip(sup["cut"], sup["text"], words):
            stats.audio_seconds += cut.duration
            results.append((cut.id, text.split(), hyp))
    return results, stats
