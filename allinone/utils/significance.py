"""Matched-pairs sentence-segment word error (MAPSSWE) significance test.

Decides whether two ASR systems scored on the same test set have significantly
different error counts (Gillick & Cox, ICASSP 1989, "Some statistical issues in the
comparison of speech recognition algorithms"; implemented by NIST sctk as MAPSSWE).

Errors of one system are correlated within a stretch of speech (one misrecognition
tends to drag its neighbours along), so whole utterances or single words are poor
units for a paired test. Instead every utterance is cut into *segments*: stretches
of reference words that contain at least one error of either system and that are
separated from each other by at least ``min_correct_run`` reference words that both
systems recognised correctly. Errors in different segments are then treated as
independent. Per segment ``i`` let ``N_A,i`` and ``N_B,i`` be the errors
(substitutions + deletions + insertions) of system A and B and ``Z_i = N_A,i - N_B,i``.
With ``n`` segments::

    mu_hat     = mean(Z)
    sigma2_hat = sum((Z_i - mu_hat) ** 2) / (n - 1)
    W          = mu_hat / sqrt(sigma2_hat / n)
    p          = 2 * (1 - Phi(|W|))          # two-sided, normal approximation

Definitional choices (see :func:`segment_errors` and :func:`mapsswe`):

* Segments are built from the error events themselves, so - as in sctk - only
  segments where at least one system errs are counted; stretches correct in both
  systems are segment *separators*, not zero-difference segments. Optionally
  (``include_error_free_utterances=True``) every utterance that both systems got
  entirely right contributes one ``Z = 0`` unit, the whole-utterance reading of
  Gillick & Cox. This changes ``n`` and the variance estimate and hence ``W``, so it
  is a flag rather than a silent choice; it is off by default to match sctk.
* An insertion sits between two reference positions. It belongs to the segment of
  an erroneous neighbour; between two words correct in both systems it forms (or
  joins) a segment of its own and also breaks the correct run it sits in, since the
  two words around it are then not an error-free stretch.
* Utterance boundaries always end a segment, and correct words at the edges of an
  utterance need not reach ``min_correct_run`` to bound a segment.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

from allinone.utils.scoring import AlignedPair, Result, align_words, compute_wer

# How many ids an error message lists before summarising the rest.
_MAX_IDS_IN_MESSAGE = 20


@dataclass
class MapsswResult:
    """Outcome of a MAPSSWE comparison of system A against system B.

    ``mean_diff`` is the mean of ``N_A - N_B`` per segment, so a negative value
    means A makes fewer errors. ``w_statistic`` has the same sign (``+-inf`` when all
    segment differences are equal and nonzero). ``better`` is ``"A"``, ``"B"`` or
    ``"same"`` at significance level ``alpha``.
    """

    num_segments: int
    mean_diff: float
    std_diff: float
    w_statistic: float
    p_value: float
    errors_a: int
    errors_b: int
    better: str
    alpha: float = 0.05

    def significant(self, alpha: float = 0.05) -> bool:
        """Whether the two systems differ at level ``alpha`` (two-sided).

        Args:
            alpha: significance level, e.g. 0.05.
        Returns:
            True when ``p_value < alpha``.
        """
        return self.p_value < alpha


def _error_events(pairs: Sequence[AlignedPair]) -> list[int]:
    """Locations of the errors in one alignment, on a grid shared by both systems.

    Reference word ``i`` is at ``2 * i + 1`` and the gap before it at ``2 * i``, so an
    insertion before word ``i`` is ordered between words ``i - 1`` and ``i``
    whichever system made it, and the two alignments of one reference can be merged.

    Args:
        pairs: alignment of the reference with one hypothesis.
    Returns:
        one location per error (sorted, repeated for repeated insertions).
    """
    events = []
    i = 0  # index of the next reference word
    for r, h in pairs:
        if r is None:
            events.append(2 * i)
            continue
        if h != r:
            events.append(2 * i + 1)
        i += 1
    return events


def _correct_words_between(loc1: int, loc2: int) -> int:
    """Number of reference words strictly between two grid locations ``loc1 <= loc2``."""
    # Reference words sit at odd locations and [0, x] holds (x + 1) // 2 odd integers,
    # so the open interval (loc1, loc2) holds loc2 // 2 - (loc1 + 1) // 2 of them.
    return max(0, loc2 // 2 - (loc1 + 1) // 2)


def segment_errors(
    ref: Sequence[str],
    hyp_a: Sequence[str],
    hyp_b: Sequence[str],
    min_correct_run: int = 2,
) -> list[tuple[int, int]]:
    """Split one utterance into MAPSSWE segments and count each system's errors.

    Two consecutive errors (of either system, in reference order) fall into the same
    segment unless at least ``min_correct_run`` reference words lie between them;
    those words are then necessarily correct in both systems with no insertion
    among them, because any such error would itself lie between the two. Stretches
    with no error in either system therefore never form a segment.

    Args:
        ref: reference words.
        hyp_a: hypothesis of system A.
        hyp_b: hypothesis of system B.
        min_correct_run: reference words correct in both systems needed to separate
            two segments (sctk uses 2); at least 1.
    Returns:
        ``(errors_a, errors_b)`` per segment, in reference order; empty when both
        hypotheses are exact.
    """
    if min_correct_run < 1:
        raise ValueError(f"min_correct_run must be >= 1, got {min_correct_run}")
    # Tag each event with its system; sorting by location keeps same-place events together.
    events = sorted(
        [(loc, 0) for loc in _error_events(align_words(ref, hyp_a))]
        + [(loc, 1) for loc in _error_events(align_words(ref, hyp_b))]
    )
    segments: list[tuple[int, int]] = []
    counts = [0, 0]
    prev_loc = None
    for loc, system in events:
        if prev_loc is not None and _correct_words_between(prev_loc, loc) >= min_correct_run:
            segments.append((counts[0], counts[1]))
            counts = [0, 0]
        counts[system] += 1
        prev_loc = loc
    if prev_loc is not None:
        # The utterance end closes the last segment whatever follows it.
        segments.append((counts[0], counts[1]))
    return segments


def _format_ids(ids: Sequence[str]) -> str:
    """Comma-separated ids, shortened when there are many."""
    ids = sorted(ids)
    shown = ", ".join(ids[:_MAX_IDS_IN_MESSAGE])
    if len(ids) > _MAX_IDS_IN_MESSAGE:
        shown += f", ... ({len(ids)} in total)"
    return shown


def _index_by_id(results: Sequence[Result], name: str) -> dict[str, Result]:
    """Map utterance id to its result, rejecting duplicate ids."""
    by_id: dict[str, Result] = {}
    duplicates = set()
    for res in results:
        if res[0] in by_id:
            duplicates.add(res[0])
        by_id[res[0]] = res
    if duplicates:
        raise ValueError(f"duplicate utterance ids in results_{name}: {_format_ids(list(duplicates))}")
    return by_id


def _match_results(
    results_a: Sequence[Result], results_b: Sequence[Result]
) -> list[tuple[str, list[str], list[str], list[str]]]:
    """Pair the two systems' results by utterance id: ``(id, ref, hyp_a, hyp_b)``.

    Raises:
        ValueError: naming ids present in only one list or whose references differ.
    """
    by_id_a = _index_by_id(results_a, "a")
    by_id_b = _index_by_id(results_b, "b")
    only_a = by_id_a.keys() - by_id_b.keys()
    only_b = by_id_b.keys() - by_id_a.keys()
    problems = []
    if only_a:
        problems.append(f"ids only in results_a: {_format_ids(list(only_a))}")
    if only_b:
        problems.append(f"ids only in results_b: {_format_ids(list(only_b))}")
    common = sorted(by_id_a.keys() & by_id_b.keys())
    # The test compares errors against one shared reference, so differing references
    # mean the two result lists were not produced on the same test set.
    ref_mismatch = [u for u in common if list(by_id_a[u][1]) != list(by_id_b[u][1])]
    if ref_mismatch:
        problems.append(f"ids whose references differ: {_format_ids(ref_mismatch)}")
    if problems:
        raise ValueError("results do not match: " + "; ".join(problems))
    return [(u, list(by_id_a[u][1]), list(by_id_a[u][2]), list(by_id_b[u][2])) for u in common]


def mapsswe(
    results_a: Sequence[Result],
    results_b: Sequence[Result],
    min_correct_run: int = 2,
    alpha: float = 0.05,
    include_error_free_utterances: bool = False,
) -> MapsswResult:
    """Run the MAPSSWE test between two systems decoded on the same utterances.

    Edge cases: with no segment (``n = 0``) nothing differs and ``p = 1``. With a
    single segment the variance cannot be estimated, so the result is reported as not
    significant (``p = 1``, ``W = 0``, ``std_diff = 0``) rather than guessed. With
    ``n >= 2`` and zero sample variance every segment has the same difference: if it
    is 0 the systems have identical error counts everywhere (``p = 1``), otherwise
    one system is worse in every segment by the same amount (``W = +-inf``, ``p = 0``).

    Args:
        results_a: ``(utt_id, ref_words, hyp_words)`` triples of system A.
        results_b: the same for system B, with the same ids and references.
        min_correct_run: reference words correct in both systems needed between two
            segments, see :func:`segment_errors`.
        alpha: significance level used to fill ``better``.
        include_error_free_utterances: also count each utterance that both systems
            recognise perfectly as one segment with ``Z = 0`` (off in sctk).
    Returns:
        the test statistics as a :class:`MapsswResult`.
    Raises:
        ValueError: if the two result lists do not cover the same utterance ids
            with the same references (the offending ids are named).
    """
    diffs: list[int] = []
    errors_a = errors_b = 0
    for _, ref, hyp_a, hyp_b in _match_results(results_a, results_b):
        segments = segment_errors(ref, hyp_a, hyp_b, min_correct_run)
        if not segments and include_error_free_utterances:
            segments = [(0, 0)]
        for n_a, n_b in segments:
            errors_a += n_a
            errors_b += n_b
            diffs.append(n_a - n_b)

    return _w_test(diffs, errors_a, errors_b, alpha)


def _w_test(diffs: Sequence[int], errors_a: int, errors_b: int, alpha: float) -> MapsswResult:
    """The normal-approximation test of mean(Z) = 0 over independent units ``diffs``."""
    n = len(diffs)
    if n == 0:
        return MapsswResult(0, 0.0, 0.0, 0.0, 1.0, errors_a, errors_b, "same", alpha)

    total = sum(diffs)
    mean = total / n
    if n == 1:
        return MapsswResult(1, mean, 0.0, 0.0, 1.0, errors_a, errors_b, "same", alpha)

    # Integer numerator keeps the zero-variance test exact: n*sum(Z^2) - (sum Z)^2.
    scaled_ss = n * sum(z * z for z in diffs) - total * total
    variance = scaled_ss / (n * (n - 1))
    std = math.sqrt(variance)
    if scaled_ss == 0:
        if total == 0:
            w, p = 0.0, 1.0
        else:
            w, p = math.copysign(math.inf, mean), 0.0
    else:
        w = mean / math.sqrt(variance / n)
        # 2 * (1 - Phi(|w|)) == erfc(|w| / sqrt(2)); erfc avoids cancellation in the tail.
        p = math.erfc(abs(w) / math.sqrt(2.0))

    result = MapsswResult(n, mean, std, w, p, errors_a, errors_b, "same", alpha)
    if result.significant(alpha):
        # Z counts A's errors minus B's, so a negative mean means A errs less.
        result.better = "A" if mean < 0 else "B"
    return result


def matched_pairs_over_runs(
    runs_a: Sequence[Sequence[Result]],
    runs_b: Sequence[Sequence[Result]],
    alpha: float = 0.05,
) -> MapsswResult:
    """Sentence-level matched-pairs test between two systems each trained several times.

    Each utterance is one unit: ``Z_u = sum over runs of (errors of A on u - errors of B
    on u)``, and the W test of :func:`mapsswe` runs over the utterances where either
    system errs in some run. With several runs of each system the same utterance is
    decoded several times; summing those into one unit keeps the units independent,
    which MAPSSWE's finer segments would not be, and makes the result independent of how
    the runs are ordered. The verdict is about these trained models: the spread between
    training runs is not in the error term (a run that is better everywhere shifts every
    ``Z_u`` alike). With one run per system it is Gillick & Cox's sentence-level test.

    Args:
        runs_a, runs_b: per run, ``(utt_id, ref_words, hyp_words)`` triples; the same
            number of runs on both sides, every run covering the same utterances with
            the same references.
    Returns:
        the statistics as a :class:`MapsswResult`, ``num_segments`` counting utterances.
    Raises:
        ValueError: on a different number of runs, or runs that do not cover the same
            utterances and references (named).
    """
    if len(runs_a) != len(runs_b) or not runs_a:
        raise ValueError(f"need the same number of runs on both sides, got {len(runs_a)} and {len(runs_b)}")
    refs: dict[str, list[str]] = {}
    per_utt: dict[str, int] = {}
    errors_a = errors_b = 0
    for i, (results_a, results_b) in enumerate(zip(runs_a, runs_b)):
        matched = _match_results(results_a, results_b)
        run_refs = {utt: ref for utt, ref, _, _ in matched}
        if i == 0:
            refs = run_refs
        elif run_refs != refs:
            odd = sorted(set(run_refs) ^ set(refs)) or sorted(u for u in refs if run_refs[u] != refs[u])
            raise ValueError(
                f"run {i} does not cover the utterances of run 0 with the same references: {_format_ids(odd)}"
            )
        for utt, ref, hyp_a, hyp_b in matched:
            n_a = compute_wer([(utt, ref, hyp_a)]).errors
            n_b = compute_wer([(utt, ref, hyp_b)]).errors
            errors_a, errors_b = errors_a + n_a, errors_b + n_b
            if n_a or n_b:
                per_utt[utt] = per_utt.get(utt, 0) + n_a - n_b
    return _w_test(list(per_utt.values()), errors_a, errors_b, alpha)
