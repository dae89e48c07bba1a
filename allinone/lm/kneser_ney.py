"""Interpolated Kneser-Ney word n-gram models written as ARPA files.

No maintained ARPA trainer installs from PyPI here (KenLM and SRILM need native
builds), so this module estimates the model itself. Estimation (Chen & Goodman, 1998,
interpolated KN with one absolute discount per order):

* the highest order uses raw counts; lower orders use continuation counts, the number
  of distinct words seen before the n-gram (raw counts for n-grams starting with <s>,
  which has no left context);
* ``D_k = n1 / (n1 + 2 n2)`` from the count-of-counts of order k;
* ``p(w | h) = max(c(hw) - D, 0) / c(h.) + gamma(h) p(w | h')``, with
  ``gamma(h) = D * types(h.) / c(h.)``; unigrams interpolate with the uniform
  distribution over the vocabulary (words and </s>).

The ARPA file stores the interpolated probability of every seen n-gram and ``gamma``
as the backoff weight of every context, which reproduces the interpolated model
exactly under ARPA backoff semantics.
"""

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Tuple

BOS, EOS = "<s>", "</s>"
Gram = Tuple[str, ...]


@dataclass
class NgramModel:
    """An estimated model: per order, n-gram -> (probability, backoff weight)."""

    order: int
    vocab: List[str]
    probs: Dict[int, Dict[Gram, float]] = field(default_factory=dict)
    backoffs: Dict[Gram, float] = field(default_factory=dict)

    def prob(self, word: str, history: Sequence[str]) -> float:
        """p(word | history) under ARPA backoff semantics (history truncated to order-1 words)."""
        h = tuple(history)[-(self.order - 1) :] if self.order > 1 else ()
        weight = 1.0
        while True:
            gram = h + (word,)
            p = self.probs.get(len(gram), {}).get(gram)
            if p is not None:
                return weight * p
            if not h:
                return 0.0
            weight *= self.backoffs.get(h, 1.0)
            h = h[1:]


def _discount(counts: Iterable[int]) -> float:
    coc = Counter(counts)
    n1, n2 = coc.get(1, 0), coc.get(2, 0)
    if n1 == 0 or n2 == 0:
        return 0.5  # too little data for the estimate; the usual fallback
    return min(max(n1 / (n1 + 2 * n2), 0.05), 0.95)


def train_kneser_ney(sentences: Iterable[Sequence[str]], order: int = 3) -> NgramModel:
    """Estimate an interpolated Kneser-Ney model of ``order`` from word sequences."""
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order}")
    raw: Dict[int, Counter] = {k: Counter() for k in range(1, order + 1)}
    for words in sentences:
        seq = [BOS, *words, EOS]
        for k in range(1, order + 1):
            for i in range(len(seq) - k + 1):
                gram = tuple(seq[i : i + k])
                if gram != (BOS,):
                    raw[k][gram] += 1
    if not raw[1]:
        raise ValueError("no training sentences")
    # Continuation counts for lower orders.
    adjusted: Dict[int, Counter] = {order: raw[order]}
    for k in range(order - 1, 0, -1):
        left = defaultdict(set)
        for gram in raw[k + 1]:
            left[gram[1:]].add(gram[0])
        adjusted[k] = Counter({g: (c if g[0] == BOS else len(left[g]) or c) for g, c in raw[k].items()})
    vocab = sorted({g[0] for g in raw[1]} - {BOS})
    model = NgramModel(order, vocab)

    # Unigrams.
    d1 = _discount(adjusted[1].values())
    total = sum(adjusted[1].values())
    floor = d1 * len(adjusted[1]) / total / len(vocab)
    model.probs[1] = {(w,): max(adjusted[1].get((w,), 0) - d1, 0) / total + floor for w in vocab}

    for k in range(2, order + 1):
        d = _discount(adjusted[k].values())
        ctx_total, ctx_types = Counter(), Counter()
        for gram, c in adjusted[k].items():
            ctx_total[gram[:-1]] += c
            ctx_types[gram[:-1]] += 1
        model.probs[k] = {}
        for h in ctx_total:
            model.backoffs[h] = d * ctx_types[h] / ctx_total[h]
        for gram, c in adjusted[k].items():
            h, w = gram[:-1], gram[-1]
            lower = model.prob(w, h[1:])
            model.probs[k][gram] = max(c - d, 0) / ctx_total[h] + model.backoffs[h] * lower
    return model


def write_arpa(model: NgramModel, path: Path) -> None:
    """Write ``model`` in ARPA format (log10 probabilities; <s> gets -99 as is customary)."""
    lines = ["", "\\data\\"]
    sections = []
    for k in range(1, model.order + 1):
        entries = sorted(model.probs[k].items())
        if k == 1:
            entries = [((BOS,), 0.0)] + entries
        lines.append(f"ngram {k}={len(entries)}")
        body = [f"\\{k}-grams:"]
        for gram, p in entries:
            logp = -99.0 if gram == (BOS,) else math.log10(p)
            row = f"{logp:.6f}\t{' '.join(gram)}"
            if k < model.order and gram in model.backoffs:
                row += f"\t{math.log10(model.backoffs[gram]):.6f}"
            body.append(row)
        sections.append(body)
    for body in sections:
        lines += [""] + body
    lines += ["", "\\end\\", ""]
    Path(path).write_text("\n".join(lines), encoding="utf-8")
