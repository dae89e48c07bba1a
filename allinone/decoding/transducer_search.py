"""Batched greedy and modified beam search for stateless transducers.

Both searches emit at most a fixed number of symbols per encoder frame and work on
``model.decoder`` (a :class:`~allinone.nn.decoder.StatelessDecoder`) and ``model.joiner``
(a :class:`~allinone.nn.joiner.Joiner`). Utterances are processed longest-first so
that, at frame ``t``, the utterances still running are a prefix of the sorted batch;
results are returned in the caller's order.

A hypothesis history starts with ``context_size - 1`` entries of ``-1`` followed by
one blank. The decoder maps negative ids to a zero embedding, which is exactly what
training sees through ``need_pad=True`` (zero left padding before the blank "start"
token), so search and training condition on the same start context.
"""

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from allinone.subnet import FLOAT_BITS

Context = tuple[int, ...]


@dataclass
class Hypothesis:
    """One partial label sequence and its accumulated log-probability.

    Args:
        ys: token history including the ``context_size`` start entries.
        log_prob: log of the summed probability of all alignments merged into it.
    """

    ys: tuple[int, ...]
    log_prob: float

    @property
    def key(self) -> tuple[int, ...]:
        """Identity used for merging: the full token history."""
        return self.ys


class HypothesisList:
    """Hypotheses of one utterance, keyed by token sequence.

    Adding a hypothesis whose sequence is already present log-adds the two scores,
    because they are different alignments of the same labels.
    """

    def __init__(self, hyps: Sequence[Hypothesis] | None = None):
        self._data: dict[tuple[int, ...], Hypothesis] = {}
        for hyp in hyps or ():
            self.add(hyp)

    def add(self, hyp: Hypothesis) -> None:
        """Insert ``hyp``, merging it with an existing hypothesis of the same sequence."""
        old = self._data.get(hyp.key)
        if old is None:
            self._data[hyp.key] = hyp
        else:
            old.log_prob = _log_add(old.log_prob, hyp.log_prob)

    def get_most_probable(self) -> Hypothesis:
        """Return the hypothesis with the largest total log-probability."""
        if not self._data:
            raise ValueError("empty HypothesisList")
        return max(self._data.values(), key=lambda h: h.log_prob)

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[Hypothesis]:
        return iter(self._data.values())


def _log_add(a: float, b: float) -> float:
    """Numerically stable ``log(exp(a) + exp(b))`` for python floats."""
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    hi, lo = (a, b) if a >= b else (b, a)
    return hi + math.log1p(math.exp(lo - hi))


def _check_inputs(encoder_out: torch.Tensor, encoder_out_lens: torch.Tensor) -> list[int]:
    """Validate shapes and return the lengths as python ints."""
    if encoder_out.dim() != 3:
        raise ValueError(f"encoder_out must be (N, T, C), got shape {tuple(encoder_out.shape)}")
    lens = [int(x) for x in encoder_out_lens.tolist()]
    if len(lens) != encoder_out.size(0):
        raise ValueError(f"{len(lens)} lengths for a batch of {encoder_out.size(0)} utterances")
    if any(n < 0 or n > encoder_out.size(1) for n in lens):
        raise ValueError(f"lengths {lens} out of range for T={encoder_out.size(1)}")
    return lens


def _start_context(decoder: nn.Module) -> tuple[int, ...]:
    """Initial history: ``context_size - 1`` padding ids and one blank."""
    return (-1,) * (decoder.context_size - 1) + (decoder.blank_id,)


def _penalise_blank(logits: torch.Tensor, blank_id: int, penalty: float) -> torch.Tensor:
    """(H, V) joiner logits with ``penalty`` subtracted from the blank column (a copy)."""
    if penalty == 0:
        return logits
    logits = logits.clone()
    logits[:, blank_id] -= penalty
    return logits


def _project_decoder(
    model: nn.Module, contexts: list[Context], device: torch.device, head_bits: int = FLOAT_BITS
) -> torch.Tensor:
    """Run the decoder on a batch of contexts and project into the joiner space.

    Args:
        model: transducer with ``decoder`` and ``joiner``.
        contexts: M tuples of ``context_size`` token ids.
        device: device of the encoder output.
        head_bits: bit-width of the decoder and joiner weights.
    Returns:
        (M, joiner_dim) projected decoder output.
    """
    y = torch.tensor(contexts, dtype=torch.long, device=device)
    dec = model.decoder(y, need_pad=False, bits=head_bits)  # (M, 1, decoder_dim)
    return model.joiner.project_decoder(dec.squeeze(1), head_bits)


@torch.no_grad()
def greedy_search_batch(
    model: nn.Module,
    encoder_out: torch.Tensor,
    encoder_out_lens: torch.Tensor,
    max_sym_per_frame: int = 1,
    head_bits: int = FLOAT_BITS,
    blank_penalty: float = 0.0,
) -> list[list[int]]:
    """Greedy transducer decoding of a padded batch.

    At each frame, every running utterance takes the arg-max token; a non-blank
    token is appended and, while fewer than ``max_sym_per_frame`` symbols have been
    emitted on this frame, the same frame is scored again with the updated decoder.

    Args:
        model: transducer with ``decoder`` (StatelessDecoder) and ``joiner`` (Joiner).
        encoder_out: (N, T, encoder_dim) encoder output.
        encoder_out_lens: (N,) number of valid frames per utterance.
        max_sym_per_frame: maximum number of non-blank symbols per frame (>= 1).
        head_bits: bit-width of the decoder and joiner weights (``model.head_bits(subnet)``).
        blank_penalty: subtracted from the blank logit before the search (> 0: fewer
            deletions, at the price of insertions).
    Returns:
        N token-id lists (blank removed), in the input order.
    """
    if max_sym_per_frame < 1:
        raise ValueError(f"max_sym_per_frame must be >= 1, got {max_sym_per_frame}")
    lens = _check_inputs(encoder_out, encoder_out_lens)
    n = len(lens)
    if n == 0:
        return []
    device = encoder_out.device
    blank_id = model.decoder.blank_id
    context_size = model.decoder.context_size

    order = sorted(range(n), key=lambda i: -lens[i])
    sorted_lens = [lens[i] for i in order]
    # Project every frame once; the per-step loop then only adds and runs the output layer.
    enc_proj = model.joiner.project_encoder(encoder_out[order], head_bits)  # (N, T, joiner_dim)

    hyps: list[list[int]] = [list(_start_context(model.decoder)) for _ in range(n)]
    dec_proj = _project_decoder(model, [tuple(h[-context_size:]) for h in hyps], device, head_bits)

    num_frames = sorted_lens[0]
    for t in range(num_frames):
        # Longest-first order makes the running utterances a prefix of the batch.
        batch_size = sum(1 for x in sorted_lens if x > t)
        rows = torch.arange(batch_size, device=device)
        for _ in range(max_sym_per_frame):
            logits = model.joiner(enc_proj[rows, t], dec_proj[rows], project_input=False, bits=head_bits)
            tokens = _penalise_blank(logits, blank_id, blank_penalty).argmax(dim=-1)
            emitted = tokens != blank_id
            if not bool(emitted.any()):
                break
            rows = rows[emitted]
            for r, tok in zip(rows.tolist(), tokens[emitted].tolist()):
                hyps[r].append(tok)
            # Only utterances that emitted have a new context, so only they are re-run.
            dec_proj[rows] = _project_decoder(
                model, [tuple(hyps[r][-context_size:]) for r in rows.tolist()], device, head_bits
            )

    results: list[list[int]] = [[] for _ in range(n)]
    for sorted_idx, orig_idx in enumerate(order):
        results[orig_idx] = hyps[sorted_idx][context_size:]
    return results


@torch.no_grad()
def modified_beam_search(
    model: nn.Module,
    encoder_out: torch.Tensor,
    encoder_out_lens: torch.Tensor,
    beam: int = 4,
    head_bits: int = FLOAT_BITS,
    blank_penalty: float = 0.0,
) -> list[list[int]]:
    """Batched modified beam search (at most one symbol per frame).

    Per frame, all live hypotheses of all running utterances are scored with one
    decoder call (only for contexts not seen on the previous frame) and one joiner
    call. For each utterance the ``beam`` best (hypothesis, token) expansions are
    kept, and expansions that yield the same token sequence are merged by log-add.
    The final answer is the hypothesis with the largest total log-probability.

    Args:
        model: transducer with ``decoder`` (StatelessDecoder) and ``joiner`` (Joiner).
        encoder_out: (N, T, encoder_dim) encoder output.
        encoder_out_lens: (N,) number of valid frames per utterance.
        beam: number of expansions kept per utterance and frame (>= 1).
        head_bits: bit-width of the decoder and joiner weights (``model.head_bits(subnet)``).
        blank_penalty: subtracted from the blank logit before the log-softmax.
    Returns:
        N token-id lists (blank removed), in the input order.
    """
    if beam < 1:
        raise ValueError(f"beam must be >= 1, got {beam}")
    lens = _check_inputs(encoder_out, encoder_out_lens)
    n = len(lens)
    if n == 0:
        return []
    device = encoder_out.device
    context_size = model.decoder.context_size
    order = sorted(range(n), key=lambda i: -lens[i])
    sorted_lens = [lens[i] for i in order]
    enc_proj = model.joiner.project_encoder(encoder_out[order], head_bits)  # (N, T, joiner_dim)

    start = _start_context(model.decoder)
    beams = [HypothesisList([Hypothesis(ys=start, log_prob=0.0)]) for _ in range(n)]
    # Context -> projected decoder output. A blank expansion keeps its context, so most
    # hypotheses reuse last frame's decoder output; the cache is pruned to the surviving
    # contexts every frame so its size stays bounded by N * beam.
    cache: dict[Context, torch.Tensor] = {}
    for t in range(sorted_lens[0]):
        # Longest-first order makes the running utterances a prefix of the batch.
        batch_size = sum(1 for x in sorted_lens if x > t)
        flat = [h for b in range(batch_size) for h in beams[b]]
        counts = [len(beams[b]) for b in range(batch_size)]
        contexts = [h.ys[-context_size:] for h in flat]
        dec = _cached_decoder_rows(model, contexts, cache, device, head_bits)  # (H, joiner_dim)
        enc = enc_proj[:batch_size, t].repeat_interleave(torch.tensor(counts, device=device), dim=0)
        logits = model.joiner(enc, dec, project_input=False, bits=head_bits)  # (H, V)
        scores = _expansion_scores(logits, flat, model.decoder.blank_id, blank_penalty)
        beams[:batch_size] = _best_expansions(scores, flat, counts, beam, model.decoder.blank_id)
        alive = {h.ys[-context_size:] for b in range(batch_size) for h in beams[b]}
        cache = {c: v for c, v in cache.items() if c in alive}

    results: list[list[int]] = [[] for _ in range(n)]
    for sorted_idx, orig_idx in enumerate(order):
        results[orig_idx] = list(beams[sorted_idx].get_most_probable().ys[context_size:])
    return results


def _cached_decoder_rows(
    model: nn.Module,
    contexts: list[Context],
    cache: dict[Context, torch.Tensor],
    device: torch.device,
    head_bits: int,
) -> torch.Tensor:
    """(H, joiner_dim) projected decoder output of each context; the decoder runs once on
    the contexts not yet in ``cache``, which it fills."""
    missing = list(dict.fromkeys(c for c in contexts if c not in cache))
    if missing:
        for c, row in zip(missing, _project_decoder(model, missing, device, head_bits)):
            cache[c] = row
    return torch.stack([cache[c] for c in contexts])


def _expansion_scores(
    logits: torch.Tensor, flat: list[Hypothesis], blank_id: int, blank_penalty: float
) -> torch.Tensor:
    """(H, V) total log-probability of each hypothesis extended by each token (or blank).

    Args:
        logits: (H, V) joiner output, one row per hypothesis in ``flat``.
    """
    logits = _penalise_blank(logits, blank_id, blank_penalty)
    # Scores are accumulated in float64: they are sums over many frames and log-adds
    # of merged alignments, where float32 rounding could reorder near-tied hypotheses.
    log_probs = logits.log_softmax(dim=-1).double()
    prev = torch.tensor([h.log_prob for h in flat], dtype=torch.float64, device=logits.device)
    return log_probs + prev.unsqueeze(1)


def _best_expansions(
    scores: torch.Tensor, flat: list[Hypothesis], counts: list[int], beam: int, blank_id: int
) -> list[HypothesisList]:
    """Per utterance, the ``beam`` best expansions, merged by token sequence.

    Args:
        scores: (H, V) from :func:`_expansion_scores`; rows are the hypotheses of ``flat``,
            utterance by utterance, ``counts[b]`` of utterance ``b``.
    Returns:
        one :class:`HypothesisList` per utterance.
    """
    top_scores, top_idx, offsets = _topk_per_utterance(scores, counts, beam)
    vocab = scores.size(1)
    beams = []
    for b in range(len(counts)):
        new_list = HypothesisList()
        for score, idx in zip(top_scores[b], top_idx[b]):
            h, tok = divmod(idx, vocab)
            if h >= counts[b]:
                continue  # padding slot; only reached when this utterance has few hyps
            src = flat[offsets[b] + h]
            ys = src.ys if tok == blank_id else src.ys + (tok,)
            new_list.add(Hypothesis(ys=ys, log_prob=score))
        beams.append(new_list)
    return beams


def _topk_per_utterance(
    scores: torch.Tensor, counts: list[int], beam: int
) -> tuple[list[list[float]], list[list[int]], list[int]]:
    """The ``beam`` best entries of each utterance's block of rows of ``scores``.

    Returns:
        (scores, flat indices ``hyp * V + token`` within the utterance's block, offset of
        each block's first row), as python lists.
    """
    device = scores.device
    batch_size, vocab = len(counts), scores.size(1)
    counts_t = torch.tensor(counts, device=device)
    # Scatter into (B, max_hyps, V) padded with -inf so one topk serves the batch.
    max_hyps = max(counts)
    utt = torch.repeat_interleave(torch.arange(batch_size, device=device), counts_t)
    offsets = torch.cumsum(counts_t, 0) - counts_t
    slot = torch.arange(scores.size(0), device=device) - offsets[utt]
    padded = scores.new_full((batch_size, max_hyps, vocab), -math.inf)
    padded[utt, slot] = scores
    top_scores, top_idx = padded.view(batch_size, -1).topk(min(beam, max_hyps * vocab), dim=-1)
    return top_scores.tolist(), top_idx.tolist(), offsets.tolist()
