"""Decode whole test sets with a loaded model."""

import time
from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch
from tqdm import tqdm

from allinone.data.batch import unpack_batch
from allinone.data.tokenizer import BpeTokenizer
from allinone.decoding.ctc_search import CTC_METHODS, CtcSearcher
from allinone.decoding.transducer_search import greedy_search_batch, modified_beam_search
from allinone.nn.model import Transducer
from allinone.subnet import FULL, SubnetConfig

TRANSDUCER_METHODS = ("greedy_search", "modified_beam_search")
DECODING_METHODS = TRANSDUCER_METHODS + CTC_METHODS


@dataclass
class DecodeStats:
    """Seconds of audio decoded and of wall time spent in the model and search."""

    audio_seconds: float = 0.0
    decode_seconds: float = 0.0


@torch.no_grad()
def recognize(
    model: Transducer,
    features: torch.Tensor,
    feature_lens: torch.Tensor,
    tokenizer: BpeTokenizer,
    method: str = "modified_beam_search",
    beam: int = 4,
    subnet: SubnetConfig = FULL,
    ctc_searcher: Optional[CtcSearcher] = None,
    blank_penalty: float = 0.0,
) -> List[List[str]]:
    """The words ``subnet`` of ``model`` (in eval mode) recognises in one batch.

    Args:
        features: (N, T, F) fbank frames, on any device (moved to the model's).
        feature_lens: (N,) frames of each utterance.
        tokenizer: the BPE model of the lang dir.
        method: one of ``DECODING_METHODS``; CTC methods need ``ctc_searcher``.
        beam: hypotheses kept by modified beam search.
        blank_penalty: subtracted from the blank logit (transducer methods).
    Returns:
        N lists of words.
    """
    device = next(model.parameters()).device
    head_bits = model.head_bits(subnet)
    enc, enc_lens = model.encode(features.to(device), feature_lens.to(device), subnet)
    if method in CTC_METHODS:
        return ctc_searcher(model.ctc_log_probs(enc, head_bits), enc_lens)
    if method == "greedy_search":
        hyps = greedy_search_batch(model, enc, enc_lens, head_bits=head_bits, blank_penalty=blank_penalty)
    else:
        hyps = modified_beam_search(
            model, enc, enc_lens, beam=beam, head_bits=head_bits, blank_penalty=blank_penalty
        )
    return [tokenizer.decode(h).split() for h in hyps]


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
    device = next(model.parameters()).device
    results = []
    stats = DecodeStats()
    for lhotse_batch in tqdm(loader, desc=desc, leave=False):
        batch = unpack_batch(lhotse_batch)
        t0 = time.perf_counter()
        words = recognize(
            model,
            batch.features,
            batch.feature_lens,
            tokenizer,
            method,
            beam,
            subnet,
            ctc_searcher,
            blank_penalty,
        )
        if device.type == "cuda":
            torch.cuda.synchronize(device)  # the clock must include the queued GPU work
        stats.decode_seconds += time.perf_counter() - t0
        for cut_id, duration, text, hyp in zip(batch.cut_ids, batch.durations, batch.texts, words):
            stats.audio_seconds += duration
            results.append((cut_id, text.split(), hyp))
    return results, stats
