"""Text normalisation of references and hypotheses before they are scored.

``normalize_for_scoring(text, scheme)`` with one of :data:`SCHEMES`:

``none``
    The text unchanged (the other corpora's scoring).

``swbd``
    Switchboard / Hub5'00 (eval2000) conversational-speech scoring.  It reads both
    transcription styles a Switchboard recipe meets: the ISIP ms98 transcripts of
    Switchboard-1 (``[noise]``, ``[laughter-yes]``, ``th[e]-``, ``{coinage}``) and the LDC
    eval2000 references of LDC2002T43 (``%uh``, ``{breath}``, ``((uncertain))``,
    ``<contraction e_form="...">we're``, punctuation).  Rules, in order:

    1. Case is folded to lower case.
    2. Markup that is not a spoken word goes: LDC ``<contraction e_form="...">`` prefixes
       (the contracted word itself stays, as written), any other ``<...>`` token
       (``<b_aside>``, ``<e_aside>``, ``<unk>``), the parentheses of ``(( ))`` uncertain
       stretches (their words stay), a leading ``%`` (LDC's hesitation mark) and the
       punctuation characters ``, . ? ! ; : "`` (so ``t.v.`` is ``tv``; apostrophes and
       word-internal hyphens stay, so contractions are compared as written: ``we're`` is
       not ``we are``).
    3. Non-speech tokens are removed: any token that is one bracketed label
       (``[noise]``, ``[laughter]``, ``[vocalized-noise]``, ``[silence]``, eval2000's
       ``[laugh]``) and the curly-brace sound events ``{breath}``, ``{lipsmack}``,
       ``{laugh}``, ``{cough}``, ``{sneeze}``, ``{sigh}``, ``{noise}``.  Other braces are
       ms98 coinages and keep their word (``{grandmotherly}`` -> ``grandmotherly``).
    4. Words spoken while laughing keep the word (``[laughter-yes]`` -> ``yes``);
       ms98 mispronunciations keep the intended word (``[bocket/bucket]`` -> ``bucket``);
       the ms98 alternate-pronunciation tag ``_1`` is dropped (``okay_1`` -> ``okay``).
    5. Partial words (word fragments) are removed: a token that begins or ends with ``-``
       once ms98's bracketed completion is taken out (``th[e]-``, ``-[a]bout``, ``th-``).
    6. Hesitations are removed: ``uh um ah eh er hm hmm mm uhm erm`` (:data:`HESITATIONS`).
       NIST scoring makes them optionally deletable through the GLM's ``%hesitation``;
       removing them from both reference and hypothesis is the usual way to get that
       effect without sclite (a hesitation never counts as an error either way).
    7. Backchannels are put in one spelling: the affirmative ``uh-huh um-hum mhm mm-hmm
       mm-hm uh-hum hm-hmm mhmm`` become ``uh-huh``; the negative ``huh-uh hum-um uh-uh
       mm-mm unh-uh`` become ``uh-uh`` (ms98 and the LDC references spell them differently).
    8. Whitespace is collapsed; a text with no word left is the empty string.

    Not implemented from the NIST Hub5 GLM (``en20000405_hub5.glm``): contraction
    expansion as alternatives (``we're`` = ``we are``), spelling variants (``ok`` /
    ``okay``, ``all right`` / ``alright``), compound and hyphenation alternatives
    (``every day`` / ``everyday``), number and acronym spellings (``i. b. m.`` /
    ``ibm``), and sclite's optionally-deletable reference fragments (here fragments are
    removed from the hypothesis too).  WERs computed here are therefore close to, but not
    the same numbers as, NIST sclite scores with the GLM.

:func:`clean_swbd_transcript` applies rules 1-4 only (markup and non-speech removed,
fragments and hesitations kept as spoken): the training-text normalisation of the
Switchboard recipe, so that the model learns to emit what it hears and scoring decides
what counts.  :func:`normalize_results` applies a scheme to ``(cut_id, ref, hyp)``
result triples, which is what ``decode.py --score-normalization`` does.
"""

import re
from typing import List, Sequence, Tuple

__all__ = [
    "SCHEMES",
    "HESITATIONS",
    "clean_swbd_transcript",
    "normalize_for_scoring",
    "normalize_results",
]

SCHEMES = ("none", "swbd")

HESITATIONS = frozenset({"uh", "um", "ah", "eh", "er", "hm", "hmm", "mm", "uhm", "erm"})

# Curly-brace sound events of the LDC references; other braces are ms98 coinages.
_BRACE_EVENTS = frozenset({"breath", "lipsmack", "laugh", "cough", "sneeze", "sigh", "noise"})

_BACKCHANNELS = {
    **dict.fromkeys(("uh-huh", "um-hum", "mhm", "mm-hmm", "mm-hm", "uh-hum", "hm-hmm", "mhmm"), "uh-huh"),
    **dict.fromkeys(("huh-uh", "hum-um", "uh-uh", "mm-mm", "unh-uh"), "uh-uh"),
}

# The e_form value contains '>' ("[we=>we]"), so the tag ends at the closing quote.
_CONTRACTION_TAG = re.compile(r'<contraction\s+e_form="[^"]*">')
_LAUGHTER_WORD = re.compile(r"^\[laughter-(.+)\]$")
_MISPRONOUNCED = re.compile(r"^\[[^\]/]*/([^\]]+)\]$")
_BRACKETED = re.compile(r"\[[^\]]*\]")
_PRONUNCIATION_TAG = re.compile(r"_\d+$")
_PUNCTUATION = str.maketrans("", "", ',.?!;:"()')

# Token kinds.
_WORD, _FRAGMENT, _HESITATION = "word", "fragment", "hesitation"


def _classify(token: str) -> Tuple[str, str]:
    """``(word, kind)`` of one lower-case token, or ``("", "")`` when nothing of it is spoken."""
    token = token.translate(_PUNCTUATION)
    if token.startswith("<") and token.endswith(">"):
        return "", ""
    m = _LAUGHTER_WORD.match(token) or _MISPRONOUNCED.match(token)
    if m:
        token = m.group(1)
    elif token.startswith("[") and token.endswith("]") and token.count("[") == 1:
        return "", ""  # one bracketed label: [noise], [laughter], [silence], ...
    if token.startswith("{") and token.endswith("}"):
        token = token[1:-1]
        if token in _BRACE_EVENTS:
            return "", ""
    token = _BRACKETED.sub("", token)  # ms98 completion of a fragment: th[e]- -> th-
    token = _PRONUNCIATION_TAG.sub("", token.lstrip("%"))
    if not token.strip("-'"):
        return "", ""
    if token.startswith("-") or token.endswith("-"):
        return token, _FRAGMENT
    if token in HESITATIONS:
        return token, _HESITATION
    return token, _WORD


def _tokens(text: str) -> List[Tuple[str, str]]:
    text = _CONTRACTION_TAG.sub("", text.lower())
    return [(w, kind) for w, kind in map(_classify, text.split()) if w]


def clean_swbd_transcript(text: str) -> str:
    """Rules 1-4 of the ``swbd`` scheme: markup and non-speech out, lower case, fragments
    (``th-``) and hesitations (``uh``) kept; the recipe's training and reference text."""
    return " ".join(w for w, _ in _tokens(text))


def normalize_for_scoring(text: str, scheme: str) -> str:
    """``text`` as scheme ``scheme`` (one of :data:`SCHEMES`) scores it.

    Raises:
        ValueError: an unknown scheme.
    """
    if scheme == "none":
        return text
    if scheme == "swbd":
        return " ".join(_BACKCHANNELS.get(w, w) for w, kind in _tokens(text) if kind == _WORD)
    raise ValueError(f"unknown score normalization {scheme!r}; expected one of {', '.join(SCHEMES)}")


Result = Tuple[str, List[str], List[str]]


def normalize_results(results: Sequence[Result], scheme: str) -> List[Result]:
    """``(cut_id, ref_words, hyp_words)`` triples with both word lists normalised by ``scheme``."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown score normalization {scheme!r}; expected one of {', '.join(SCHEMES)}")
    if scheme == "none":
        return list(results)
    return [
        (
            cut_id,
            normalize_for_scoring(" ".join(ref), scheme).split(),
            normalize_for_scoring(" ".join(hyp), scheme).split(),
        )
        for cut_id, ref, hyp in results
    ]
