import math
import random

import pytest

from allinone.lm.kneser_ney import NgramModel, train_kneser_ney, write_arpa


def corpus(seed=0, n=200):
    rng = random.Random(seed)
    words = ["ONE", "TWO", "THREE", "FOUR", "OH"]
    return [[rng.choice(words) for _ in range(rng.randint(1, 6))] for _ in range(n)]


def read_arpa(path) -> NgramModel:
    model = NgramModel(order=0, vocab=[])
    order = 0
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if line.endswith("-grams:"):
            order = int(line[1])
            model.order = max(model.order, order)
            model.probs[order] = {}
        elif order and line and not line.startswith("\\"):
            cols = line.split("\t")
            gram = tuple(cols[1].split())
            if gram != ("<s>",):
                model.probs[order][gram] = 10 ** float(cols[0])
            if len(cols) == 3:
                model.backoffs[gram] = 10 ** float(cols[2])
    model.vocab = sorted(g[0] for g in model.probs[1])
    return model


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_every_context_gives_a_distribution(order):
    model = train_kneser_ney(corpus(), order)
    histories = [(), ("<s>",), ("ONE",), ("<s>", "TWO"), ("OH", "OH", "FOUR"), ("UNSEEN", "ONE")]
    for h in histories:
        assert sum(model.prob(w, h) for w in model.vocab) == pytest.approx(1.0, abs=1e-9)


def test_arpa_round_trip_reproduces_the_model(tmp_path):
    model = train_kneser_ney(corpus(1), 3)
    write_arpa(model, tmp_path / "lm.arpa")
    back = read_arpa(tmp_path / "lm.arpa")
    assert back.order == 3 and back.vocab == model.vocab
    for h in [(), ("<s>",), ("TWO",), ("<s>", "ONE"), ("FOUR", "OH")]:
        for w in model.vocab:
            assert back.prob(w, h) == pytest.approx(model.prob(w, h), rel=1e-5)


def test_continuation_counts_make_a_word_seen_in_one_context_rare_as_a_unigram():
    # "FRANCISCO" is frequent but always follows "SAN": Kneser-Ney's textbook case.
    sents = [["SAN", "FRANCISCO"]] * 20 + [["A", "B"], ["B", "A"], ["A", "C"], ["C", "B"], ["B", "C"]]
    model = train_kneser_ney(sents, 2)
    # 20 occurrences against 3, yet the lower-order (continuation) probability is smaller
    assert model.probs[1][("FRANCISCO",)] < model.probs[1][("A",)]
    assert model.prob("FRANCISCO", ["C"]) < model.prob("A", ["C"])
    assert model.prob("FRANCISCO", ["SAN"]) > 0.9
    assert math.isclose(sum(model.prob(w, ["SAN"]) for w in model.vocab), 1.0)
