"""CTC decoding graphs H, HL and HLG built with kaldifst (OpenFst on CPU).

Label conventions (those of kaldi-decoder's ``DecodableCtc``): on the token side an FST
label is ``token_id + 1``, because label 0 is epsilon and the decodable maps label ``l``
to posterior column ``l - 1``; disambiguation tokens ``#k`` extend the token table
after the model's vocabulary and follow the same rule. On the word side labels are the
ids of ``words.txt``, which holds ``<eps>`` = 0 and, after the words, ``#0``, ``<s>``
and ``</s>``.

H is the CTC topology: one state per token plus a blank state; a token is emitted on
entering its state, repeats of it and blanks emit nothing. L maps token sequences to
words (lexicon entries made unambiguous with ``#k``); G is the word n-gram converted
from ARPA by kaldilm. The graphs are composed, determinized and minimized the way
Kaldi builds its decoding graphs, with the disambiguation symbols removed at the end.
"""

from collections import Counter
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Set, Tuple

LexiconEntries = List[Tuple[str, List[str]]]


def _kaldifst():
    import kaldifst  # imported on use: the package is optional for transducer-only users

    return kaldifst


def _compile(lines: Iterable[str]):
    return _kaldifst().compile("\n".join(lines) + "\n")


def ctc_topo(num_tokens: int, blank_id: int = 0):
    """H for ``num_tokens`` model outputs (blank included); input and output labels are ``id + 1``.

    State 0 is "after blank" (the start); state ``t + 1`` is "after token t". Every state
    is final, so an utterance may end in a token or a blank.
    """
    state = {t: t + 1 for t in range(num_tokens) if t != blank_id}
    state[blank_id] = 0
    lines = []
    for src in [0, *[state[t] for t in range(num_tokens) if t != blank_id]]:
        for t in range(num_tokens):
            dst = state[t]
            if t == blank_id:
                lines.append(f"{src} 0 {t + 1} 0")
            elif dst == src:
                lines.append(f"{src} {dst} {t + 1} 0")  # repeat: no new output
            else:
                lines.append(f"{src} {dst} {t + 1} {t + 1}")
    lines += [str(s) for s in sorted(set(state.values()))]
    return _compile(lines)


def add_disambig_symbols(lexicon: Dict[str, List[str]]) -> Tuple[LexiconEntries, int]:
    """Append ``#k`` to pronunciations that repeat or prefix another one (Kaldi's rule).

    Returns:
        (entries with disambiguation tokens, the largest k used; 0 if none was needed).
    """
    prons = [tuple(p) for p in lexicon.values()]
    for word, pron in lexicon.items():
        if not pron:
            raise ValueError(f"lexicon word {word!r} has an empty pronunciation")
    counts = Counter(prons)
    prefixes = {p[:i] for p in prons for i in range(1, len(p))}
    next_k: Dict[tuple, int] = {}
    out: LexiconEntries = []
    max_k = 0
    for word, pron in lexicon.items():
        p = tuple(pron)
        if counts[p] > 1 or p in prefixes:
            k = next_k.get(p, 1)
            next_k[p] = k + 1
            max_k = max(max_k, k)
            out.append((word, list(pron) + [f"#{k}"]))
        else:
            out.append((word, list(pron)))
    return out, max_k


def extend_token_table(tokens: Dict[str, int], max_disambig: int) -> Dict[str, int]:
    """Token table with ``#0 .. #max_disambig`` appended after the model's vocabulary."""
    out = dict(tokens)
    nxt = max(tokens.values()) + 1
    for k in range(max_disambig + 1):
        if f"#{k}" not in out:
            out[f"#{k}"] = nxt
            nxt += 1
    return out


def extend_word_table(words: Dict[str, int]) -> Dict[str, int]:
    """Word table with ``#0``, ``<s>`` and ``</s>`` appended (what arpa2fst and G need)."""
    out = dict(words)
    nxt = max(words.values()) + 1
    for sym in ("#0", "<s>", "</s>"):
        if sym not in out:
            out[sym] = nxt
            nxt += 1
    return out


def lexicon_fst(entries: LexiconEntries, tokens: Dict[str, int], words: Dict[str, int], loop_disambig: bool):
    """L: token sequences to words, closed under concatenation (state 0 is start and final).

    Args:
        entries: (word, tokens) pairs; tokens may end in ``#k``.
        tokens, words: symbol tables.
        loop_disambig: add a self-loop passing G's ``#0`` through (token ``#0`` : word ``#0``).
    """
    lines, next_state = [], 1
    for word, pron in entries:
        if word not in words:
            raise ValueError(f"lexicon word {word!r} is not in the word table")
        missing = [t for t in pron if t not in tokens]
        if missing:
            raise ValueError(f"lexicon entry {word!r} uses tokens missing from the token table: {missing}")
        src = 0
        for i, tok in enumerate(pron):
            last = i == len(pron) - 1
            dst = 0 if last else next_state
            next_state += 0 if last else 1
            lines.append(f"{src} {dst} {tokens[tok] + 1} {words[word] if i == 0 else 0}")
            src = dst
    if loop_disambig:
        lines.append(f"0 0 {tokens['#0'] + 1} {words['#0']}")
    lines.append("0")
    return _compile(lines)


def grammar_fst(arpa: Path, words_txt: Path):
    """G from an ARPA file (kaldilm; backoff arcs carry ``#0`` on the input side)."""
    import kaldilm

    text = kaldilm.arpa2fst(str(arpa), disambig_symbol="#0", read_symbol_table=str(words_txt))
    return _compile(line for line in text.splitlines() if line.strip())


def relabel_input(fst, labels: Set[int]):
    """Copy of ``fst`` with the given input labels replaced by epsilon."""
    out = []
    for line in fst.to_str().splitlines():
        cols = line.split()
        if len(cols) >= 4 and int(cols[2]) in labels:
            cols[2] = "0"
        out.append(" ".join(cols))
    return _compile(out)


def compose_sorted(a, b):
    kf = _kaldifst()
    kf.arcsort(a, sort_type="olabel")
    kf.arcsort(b, sort_type="ilabel")
    return kf.compose(a, b)


def build_hl(H, L):
    """HL = H o L (no language model: any word sequence of the lexicon)."""
    kf = _kaldifst()
    hl = compose_sorted(H, L)
    kf.connect(hl)
    kf.arcsort(hl, sort_type="ilabel")
    return hl


def build_hlg(H, L_disambig, G, disambig_token_labels: Sequence[int]):
    """HLG = H o min(det(L o G)) with the token disambiguation symbols removed."""
    kf = _kaldifst()
    lg = compose_sorted(L_disambig, G)
    kf.determinize_star(lg)
    kf.minimize_encoded(lg)
    lg = relabel_input(lg, set(disambig_token_labels))
    kf.rmepsilon(lg)
    hlg = compose_sorted(H, lg)
    kf.connect(hlg)
    kf.arcsort(hlg, sort_type="ilabel")
    return hlg
