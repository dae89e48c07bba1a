"""Tests for batched greedy search and modified beam search."""

import itertools
import math

import pytest
import torch
from torch import nn

from allinone.decoding.transducer_search import (
    Hypothesis,
    HypothesisList,
    greedy_search_batch,
    modified_beam_search,
)
from allinone.nn.decoder import StatelessDecoder
from allinone.nn.joiner import Joiner


class TinyTransducer(nn.Module):
    """Just the parts the searches use: ``decoder`` and ``joiner``."""

    def __init__(
        self,
        vocab_size,
        encoder_dim=12,
        decoder_dim=16,
        joiner_dim=16,
        context_size=2,
        seed=0,
        logit_scale=1.0,
    ):
        super().__init__()
        torch.manual_seed(seed)
        self.decoder = StatelessDecoder(vocab_size, decoder_dim, blank_id=0, context_size=context_size)
        self.joiner = Joiner(encoder_dim, decoder_dim, joiner_dim, vocab_size)
        # Random init gives nearly flat posteriors; sharpening them makes the searches
        # emit real tokens and makes the decoder context matter.
        with torch.no_grad():
            self.joiner.output_linear.weight.mul_(logit_scale)


def random_batch(lens, encoder_dim=12, seed=1):
    g = torch.Generator().manual_seed(seed)
    enc = torch.randn(len(lens), max(lens), encoder_dim, generator=g) * 2
    return enc, torch.tensor(lens)


@pytest.fixture(scope="module")
def model():
    return TinyTransducer(vocab_size=10, seed=0, logit_scale=4.0).eval()


@pytest.mark.parametrize("context_size", [1, 2, 3])
def test_beam_one_equals_greedy(context_size):
    model = TinyTransducer(vocab_size=10, context_size=context_size, seed=0, logit_scale=4.0).eval()
    enc, lens = random_batch([12, 7, 10, 1])
    greedy = greedy_search_batch(model, enc, lens, max_sym_per_frame=1)
    beam1 = modified_beam_search(model, enc, lens, beam=1)
    assert beam1 == greedy
    # Guard against a vacuous pass where everything decodes to blank.
    assert sum(len(h) for h in greedy) >= 5


@pytest.mark.parametrize("search", ["greedy", "greedy2", "beam4"])
def test_batch_equals_single(model, search):
    lens = [5, 12, 0, 9, 12, 3]
    enc, lens_t = random_batch(lens, seed=3)

    def run(e, n):
        if search == "greedy":
            return greedy_search_batch(model, e, n)
        if search == "greedy2":
            return greedy_search_batch(model, e, n, max_sym_per_frame=2)
        return modified_beam_search(model, e, n, beam=4)

    batched = run(enc, lens_t)
    # Single runs see only the valid frames, so padding cannot leak into the result.
    single = [run(enc[i : i + 1, : lens[i]], lens_t[i : i + 1])[0] for i in range(len(lens))]
    assert batched == single
    assert batched[2] == []
    assert any(len(h) > 0 for h in batched)


def brute_force_best(model, enc):
    """Most probable label sequence under the one-symbol-per-frame model, by enumeration.

    Args:
        enc: (1, T, encoder_dim).
    Returns:
        (best sequence, dict sequence -> total probability).
    """
    vocab = model.decoder.vocab_size
    num_frames = enc.size(1)
    totals = {}
    with torch.no_grad():
        for path in itertools.product(range(vocab), repeat=num_frames):
            history = [-1, 0]
            log_p = 0.0
            for t, tok in enumerate(path):
                dec = model.decoder(torch.tensor([history[-2:]]), need_pad=False)[0, 0]
                log_p += model.joiner(enc[0, t], dec).log_softmax(-1)[tok].item()
                if tok != 0:
                    history.append(tok)
            seq = tuple(history[2:])
            totals[seq] = totals.get(seq, 0.0) + math.exp(log_p)
    return max(totals, key=totals.get), totals


def test_full_beam_is_exact():
    vocab, num_frames = 3, 3
    # vocab ** T bounds the number of expansions, so nothing is ever pruned.
    full_beam = vocab**num_frames
    greedy_differs = False
    for seed in range(6):
        m = TinyTransducer(vocab, encoder_dim=4, decoder_dim=8, joiner_dim=8, seed=seed, logit_scale=4.0)
        enc, lens = random_batch([num_frames], encoder_dim=4, seed=seed + 1000)
        best, totals = brute_force_best(m, enc)
        assert tuple(modified_beam_search(m, enc, lens, beam=full_beam)[0]) == best, (seed, totals)
        greedy_differs |= tuple(greedy_search_batch(m, enc, lens)[0]) != best
    # Seeds are chosen so that summing over alignments changes the answer at least once;
    # otherwise this test could not tell beam search from greedy search.
    assert greedy_differs


def rigged_model(vocab_size):
    """Joiner whose arg-max token is the encoder frame's one-hot index, regardless of context."""
    m = TinyTransducer(vocab_size, encoder_dim=vocab_size, joiner_dim=vocab_size, seed=0)
    with torch.no_grad():
        m.joiner.encoder_proj.weight.copy_(torch.eye(vocab_size))
        m.joiner.encoder_proj.bias.zero_()
        m.joiner.decoder_proj.weight.zero_()
        m.joiner.decoder_proj.bias.zero_()
        m.joiner.output_linear.weight.copy_(20 * torch.eye(vocab_size))
        m.joiner.output_linear.bias.zero_()
    return m


def test_rigged_joiner_emits_known_sequence():
    vocab = 5
    m = rigged_model(vocab)
    frames = [[1, 0, 2, 2, 0, 3, 4, 0], [4, 4, 0, 1]]
    lens = torch.tensor([len(f) for f in frames])
    enc = torch.zeros(2, 8, vocab)
    for b, f in enumerate(frames):
        enc[b, torch.arange(len(f)), torch.tensor(f)] = 3.0
    # Frames past the end of utterance 1 say "emit 3"; they must be ignored.
    enc[1, 4:, 3] = 3.0
    expected = [[1, 2, 2, 3, 4], [4, 4, 1]]
    assert greedy_search_batch(m, enc, lens) == expected
    assert modified_beam_search(m, enc, lens, beam=4) == expected
    # The rigged logits ignore the decoder, so a second symbol per frame repeats the first.
    assert greedy_search_batch(m, enc, lens, max_sym_per_frame=2) == [
        [1, 1, 2, 2, 2, 2, 3, 3, 4, 4],
        [4, 4, 4, 4, 1, 1],
    ]


def test_hypothesis_list_merges_by_log_add():
    hyps = HypothesisList()
    hyps.add(Hypothesis(ys=(-1, 0, 3), log_prob=math.log(0.2)))
    hyps.add(Hypothesis(ys=(-1, 0, 3), log_prob=math.log(0.3)))
    hyps.add(Hypothesis(ys=(-1, 0, 4), log_prob=math.log(0.4)))
    assert len(hyps) == 2
    best = hyps.get_most_probable()
    assert best.ys == (-1, 0, 3)
    assert best.log_prob == pytest.approx(math.log(0.5))


def test_invalid_arguments(model):
    enc, lens = random_batch([4])
    with pytest.raises(ValueError):
        modified_beam_search(model, enc, lens, beam=0)
    with pytest.raises(ValueError):
        greedy_search_batch(model, enc, lens, max_sym_per_frame=0)
    with pytest.raises(ValueError):
        greedy_search_batch(model, enc, torch.tensor([5]))


@pytest.mark.parametrize("penalty", [0.7, -0.5])
def test_blank_penalty_equals_a_lower_blank_bias(penalty):
    """Searching with a blank penalty = searching a joiner whose blank output bias is lower."""
    model = TinyTransducer(vocab_size=10, seed=2, logit_scale=4.0).eval()
    shifted = TinyTransducer(vocab_size=10, seed=2, logit_scale=4.0).eval()
    with torch.no_grad():
        # blank (id 0) made competitive, so that a shift of its logit changes decisions
        model.joiner.output_linear.bias[0] += 2.0
        shifted.joiner.output_linear.bias[0] += 2.0 - penalty
    enc, lens = random_batch([11, 6, 9], seed=4)
    for search in (
        lambda m, **kw: greedy_search_batch(m, enc, lens, max_sym_per_frame=2, **kw),
        lambda m, **kw: modified_beam_search(m, enc, lens, beam=3, **kw),
    ):
        with_penalty = search(model, blank_penalty=penalty)
        assert with_penalty == search(shifted)
        assert with_penalty != search(model)  # the penalty changed something here


def test_a_huge_blank_penalty_emits_a_token_on_every_frame(model):
    enc, lens = random_batch([8, 5, 3], seed=5)
    for hyps in (
        greedy_search_batch(model, enc, lens, max_sym_per_frame=1, blank_penalty=1e4),
        modified_beam_search(model, enc, lens, beam=2, blank_penalty=1e4),
    ):
        assert [len(h) for h in hyps] == [8, 5, 3]
