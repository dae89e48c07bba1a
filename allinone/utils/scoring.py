"""Word error rate scoring and result files for decoding runs.

Alignments come from :mod:`kaldialign`; every count (summary, per-utterance details,
per-word statistics) is derived from the same alignment so the numbers in one
``errs-*`` file always agree with each other.

A result is a ``(cut_id, ref_words, hyp_words)`` triple.
"""

import ast
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import kaldialign

Result = tuple[str, list[str], list[str]]
PathLike = str | Path
# A gap (insertion or deletion side) is None, so a real word spelled "*" stays a word.
AlignedPair = tuple[str | None, str | None]

logger = logging.getLogger(__name__)

# Shown in place of a missing word in the human-readable alignment.
_GAP = "*"


@dataclass
class WerStats:
    """Aggregate edit counts over a set of utterances.

    ``errors`` and ``wer`` are derived. ``wer`` is in percent; with no reference
    words it is 0 when there are no errors and ``inf`` otherwise, since insertions
    against an empty reference have no finite relative rate.
    """

    errors: int = field(init=False)
    ins: int
    dels: int
    subs: int
    ref_words: int
    wer: float = field(init=False)

    def __post_init__(self) -> None:
        self.errors = self.ins + self.dels + self.subs
        if self.ref_words > 0:
            self.wer = 100.0 * self.errors / self.ref_words
        else:
            self.wer = 0.0 if self.errors == 0 else float("inf")

    def summary(self) -> str:
        """Kaldi-style one-line summary, e.g. ``%WER 12.50 [ 2 / 16, 1 ins, 0 del, 1 sub ]``."""
        return (
            f"%WER {self.wer:.2f} [ {self.errors} / {self.ref_words}, "
            f"{self.ins} ins, {self.dels} del, {self.subs} sub ]"
        )


def align_words(ref: Sequence[str], hyp: Sequence[str]) -> list[AlignedPair]:
    """Minimum-edit alignment of two word sequences.

    Args:
        ref: reference words.
        hyp: hypothesis words.
    Returns:
        (ref_word, hyp_word) pairs; ``ref_word`` is None for an insertion and
        ``hyp_word`` is None for a deletion.
    """
    # kaldialign needs an epsilon distinct from every word in either sequence.
    words = set(ref) | set(hyp)
    eps = "<eps>"
    while eps in words:
        eps += "_"
    pairs = kaldialign.align(list(ref), list(hyp), eps)
    return [(None if r == eps else r, None if h == eps else h) for r, h in pairs]


def _count(pairs: Sequence[AlignedPair]) -> tuple[int, int, int, int]:
    """Return (correct, ins, dels, subs) of one alignment."""
    cor = ins = dels = subs = 0
    for r, h in pairs:
        if r is None:
            ins += 1
        elif h is None:
            dels += 1
        elif r != h:
            subs += 1
        else:
            cor += 1
    return cor, ins, dels, subs


def _stats_from_alignments(alignments: Sequence[tuple[list[str], list[AlignedPair]]]) -> WerStats:
    """Sum edit counts over (ref_words, alignment) pairs."""
    ins = dels = subs = ref_words = 0
    for ref, pairs in alignments:
        _, i, d, s = _count(pairs)
        ins, dels, subs = ins + i, dels + d, subs + s
        ref_words += len(ref)
    return WerStats(ins=ins, dels=dels, subs=subs, ref_words=ref_words)


def compute_wer(results: Sequence[Result]) -> WerStats:
    """Corpus-level WER: total edits divided by total reference words.

    Args:
        results: ``(cut_id, ref_words, hyp_words)`` triples.
    Returns:
        aggregated :class:`WerStats`.
    """
    return _stats_from_alignments([(list(ref), align_words(ref, hyp)) for _, ref, hyp in results])


def write_recogs(path: PathLike, results: Sequence[Result]) -> None:
    """Write references and hypotheses, two lines per utterance, sorted by cut id.

    Args:
        path: output text file.
        results: ``(cut_id, ref_words, hyp_words)`` triples.
    """
    with open(path, "w", encoding="utf-8") as f:
        for cut_id, ref, hyp in sorted(results, key=lambda r: r[0]):
            f.write(f"{cut_id}:\tref={list(ref)}\n")
            f.write(f"{cut_id}:\thyp={list(hyp)}\n")


def read_recogs(path: PathLike) -> list[Result]:
    """Read a file written by :func:`write_recogs` back into result triples (in file order)."""
    refs: dict[str, list[str]] = {}
    results: list[Result] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            cut_id, sep, rest = line.rstrip("\n").rpartition(":\t")
            kind, _, words = rest.partition("=")
            if not sep or kind not in ("ref", "hyp"):
                raise ValueError(f"{path}:{lineno}: not a recogs line: {line.strip()!r}")
            if kind == "ref":
                refs[cut_id] = list(ast.literal_eval(words))
            elif cut_id not in refs:
                raise ValueError(f"{path}:{lineno}: hyp of {cut_id} before its ref")
            else:
                results.append((cut_id, refs.pop(cut_id), list(ast.literal_eval(words))))
    if refs:
        raise ValueError(f"{path}: refs without hyps for {sorted(refs)[:5]}")
    return results


def _format_alignment(pairs: Sequence[AlignedPair]) -> str:
    """Render correct words as-is and errors as ``(ref->hyp)``, with ``*`` for a gap."""
    out = []
    for r, h in pairs:
        if r is not None and r == h:
            out.append(r)
        else:
            out.append(f"({_GAP if r is None else r}->{_GAP if h is None else h})")
    return " ".join(out)


def write_error_stats(path: PathLike, test_set_name: str, results: Sequence[Result]) -> float:
    """Write a detailed error report and return the WER.

    The file starts with the summary line, followed by sections ``PER-UTT DETAILS``,
    ``SUBSTITUTIONS``, ``DELETIONS``, ``INSERTIONS`` and ``PER-WORD STATS``
    (most frequent first within each section).

    Args:
        path: output text file.
        test_set_name: used in the log message only.
        results: ``(cut_id, ref_words, hyp_words)`` triples.
    Returns:
        WER in percent.
    """
    ordered = sorted(results, key=lambda r: r[0])
    aligned = [(cut_id, list(ref), align_words(ref, hyp)) for cut_id, ref, hyp in ordered]
    stats = _stats_from_alignments([(ref, pairs) for _, ref, pairs in aligned])

    subs: Counter = Counter()
    dels: Counter = Counter()
    ins: Counter = Counter()
    # Per word: [correct, errors it takes part in, occurrences in ref, occurrences in hyp].
    per_word: dict[str, list[int]] = {}

    def word_entry(w: str) -> list[int]:
        return per_word.setdefault(w, [0, 0, 0, 0])

    for _, _, pairs in aligned:
        for r, h in pairs:
            if r is not None:
                word_entry(r)[2] += 1
            if h is not None:
                word_entry(h)[3] += 1
            if r is None:
                ins[h] += 1
                word_entry(h)[1] += 1
            elif h is None:
                dels[r] += 1
                word_entry(r)[1] += 1
            elif r != h:
                subs[(r, h)] += 1
                word_entry(r)[1] += 1
                word_entry(h)[1] += 1
            else:
                word_entry(r)[0] += 1

    def most_common(counter: Counter) -> list:
        # Ties broken alphabetically so reports are reproducible.
        return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))

    lines = [
        stats.summary(),
        (
            f"Test set: {test_set_name}; utterances: {len(aligned)}; "
            f"correct words: {stats.ref_words - stats.subs - stats.dels}"
        ),
        "Sections: PER-UTT DETAILS, SUBSTITUTIONS, DELETIONS, INSERTIONS, PER-WORD STATS",
        "",
        f"PER-UTT DETAILS: correct words as-is, errors as (ref->hyp), {_GAP} marks a gap",
    ]
    lines += [f"{cut_id}:\t{_format_alignment(pairs)}" for cut_id, _, pairs in aligned]
    lines += ["", "SUBSTITUTIONS: count ref -> hyp"]
    lines += [f"{c}   {r} -> {h}" for (r, h), c in most_common(subs)]
    lines += ["", "DELETIONS: count ref"]
    lines += [f"{c}   {w}" for w, c in most_common(dels)]
    lines += ["", "INSERTIONS: count hyp"]
    lines += [f"{c}   {w}" for w, c in most_common(ins)]
    lines += ["", "PER-WORD STATS: word   corr tot_errs count_in_ref count_in_hyp"]
    for w, (cor, errs, n_ref, n_hyp) in sorted(per_word.items(), key=lambda kv: (-kv[1][1], kv[0])):
        lines.append(f"{w}   {cor} {errs} {n_ref} {n_hyp}")

    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    logger.info("[%s] %s", test_set_name, stats.summary())
    return stats.wer
