"""Tests for the MAPSSWE significance test."""

import math
import random

import pytest

from allinone.utils.scoring import compute_wer
from allinone.utils.significance import mapsswe, matched_pairs_over_runs, segment_errors

REF7 = "a b c d e f g".split()


def w(text: str) -> list[str]:
    return text.split()


# --- segment_errors: worked examples ---------------------------------------------------


def test_identical_hyps_give_zero_difference_segments():
    # Both substitute "b" and delete "f": two segments (3 correct words between them),
    # each with the same count for both systems.
    hyp = w("a x c d e g")
    assert segment_errors(REF7, hyp, hyp) == [(1, 1), (1, 1)]
    assert all(a - b == 0 for a, b in segment_errors(REF7, hyp, hyp))


def test_exact_hyps_give_no_segments():
    assert segment_errors(REF7, REF7, REF7) == []


def test_errors_separated_by_two_correct_words_split():
    # A: b->x (word 1). B: deletes e (word 4). Words c, d are correct in both.
    assert segment_errors(REF7, w("a x c d e f g"), w("a b c d f g")) == [(1, 0), (0, 1)]


def test_errors_separated_by_one_correct_word_merge():
    # A: b->x (word 1). B: deletes d (word 3). Only c lies between them.
    assert segment_errors(REF7, w("a x c d e f g"), w("a b c e f g")) == [(1, 1)]


def test_min_correct_run_is_configurable():
    hyp_a, hyp_b = w("a x c d e f g"), w("a b c d f g")
    # Two correct words between the errors are not enough when three are required ...
    assert segment_errors(REF7, hyp_a, hyp_b, min_correct_run=3) == [(1, 1)]
    # ... and one correct word is enough when only one is required.
    assert segment_errors(REF7, hyp_a, w("a b c e f g"), min_correct_run=1) == [(1, 0), (0, 1)]
    with pytest.raises(ValueError):
        segment_errors(REF7, hyp_a, hyp_b, min_correct_run=0)


def test_insertions_at_utterance_start_and_end():
    ref = w("a b c d e")
    # A inserts before the first word, B after the last: far apart, two segments.
    assert segment_errors(ref, w("uh a b c d e"), w("a b c d e um")) == [(1, 0), (0, 1)]
    # A's leading insertion is next to B's substitution of the first word: one segment.
    assert segment_errors(ref, w("uh a b c d e"), w("x b c d e")) == [(1, 1)]
    # Leading insertion vs. substitution of word 1: only "a" lies between them.
    assert segment_errors(ref, w("uh a b c d e"), w("a x c d e")) == [(1, 1)]
    assert segment_errors(ref, w("uh a b c d e"), w("a x c d e"), min_correct_run=1) == [(1, 0), (0, 1)]
    # A trailing insertion joins a substitution of the last word.
    assert segment_errors(ref, w("a b c d x um"), w("a b c d e")) == [(2, 0)]


def test_insertion_inside_correct_run_is_its_own_segment():
    ref = w("a b c d e f")
    assert segment_errors(ref, w("a b c uh d e f"), ref) == [(1, 0)]
    # Subs of "a" and "f" around the insertion: "b c" and "d e" (2 words each) separate
    # the three errors, so the insertion stands alone between two correct runs.
    assert segment_errors(ref, w("x b c uh d e y"), ref) == [(1, 0), (1, 0), (1, 0)]
    # With 3 correct words required, the insertion splits "b c d e" into two short
    # runs, neither long enough, so everything merges into one segment.
    assert segment_errors(ref, w("x b c uh d e y"), ref, min_correct_run=3) == [(3, 0)]


def test_empty_reference():
    assert segment_errors([], w("uh"), []) == [(1, 0)]
    assert segment_errors([], [], []) == []


# --- mapsswe ---------------------------------------------------------------------------


def _results(hyps: dict[str, str], refs: dict[str, str]) -> list[tuple[str, list[str], list[str]]]:
    return [(u, w(refs[u]), w(h)) for u, h in hyps.items()]


# Hand-built: segment differences Z = N_A - N_B per segment are written next to each utterance.
HAND_REFS = {
    "u1": "a b c d e f g",
    "u2": "one two three",
    "u3": "x y z",
    "u4": "p q r s",
    "u5": "m n",
}
HAND_A = {
    "u1": "a x c d e f g",  # sub b            -> segments (1,0), (0,1): Z = 1, -1
    "u2": "one too tree",  # two adjacent subs -> (2,0): Z = 2
    "u3": "x k z",  # same sub in both         -> (1,1): Z = 0
    "u4": "p q r s",  # B inserts at the end   -> (0,1): Z = -1
    "u5": "m n",  # both exact                 -> no segment
}
HAND_B = {
    "u1": "a b c d f g",  # deletes e
    "u2": "one two three",
    "u3": "x k z",
    "u4": "p q r s t",
    "u5": "m n",
}


def test_hand_computed_statistics():
    res = mapsswe(_results(HAND_A, HAND_REFS), _results(HAND_B, HAND_REFS))
    z = [1, -1, 2, 0, -1]
    n = len(z)
    mu = sum(z) / n  # 0.2
    var = sum((zi - mu) ** 2 for zi in z) / (n - 1)  # 6.8 / 4 = 1.7
    w_stat = mu / math.sqrt(var / n)
    # Phi(x) = 0.5 * erfc(-x / sqrt(2)); two-sided p = 2 * (1 - Phi(|W|)).
    p = 2 * (1 - 0.5 * math.erfc(-abs(w_stat) / math.sqrt(2)))
    assert var == pytest.approx(1.7, abs=1e-12)
    assert res.num_segments == 5
    assert (res.errors_a, res.errors_b) == (4, 3)
    assert res.mean_diff == pytest.approx(mu, abs=1e-9)
    assert res.std_diff == pytest.approx(math.sqrt(var), abs=1e-9)
    assert res.w_statistic == pytest.approx(w_stat, abs=1e-9)
    assert res.p_value == pytest.approx(p, abs=1e-9)
    assert res.better == "same"
    assert not res.significant()


def test_error_free_utterances_flag_adds_zero_segments():
    res = mapsswe(
        _results(HAND_A, HAND_REFS), _results(HAND_B, HAND_REFS), include_error_free_utterances=True
    )
    z = [1, -1, 2, 0, -1, 0]  # u5 now contributes Z = 0
    n = len(z)
    mu = sum(z) / n
    var = sum((zi - mu) ** 2 for zi in z) / (n - 1)
    assert res.num_segments == 6
    assert res.w_statistic == pytest.approx(mu / math.sqrt(var / n), abs=1e-9)


def test_identical_systems_p_is_one():
    res = mapsswe(_results(HAND_A, HAND_REFS), _results(HAND_A, HAND_REFS))
    # u1, u2 and u3 have one segment each (u4, u5 are exact in A): n > 1, zero variance.
    assert res.num_segments == 3
    assert res.errors_a == res.errors_b == 4
    assert res.p_value == 1.0
    assert res.w_statistic == 0.0
    assert res.better == "same"


def _clearly_better_pair() -> tuple[list, list]:
    """60 utterances: B errs in 40 of them (one segment each), A in 5 others."""
    ref = w("the quick brown fox jumps")
    a, b = [], []
    for k in range(60):
        utt = f"utt{k:02d}"
        a.append((utt, ref, w("the quick brown box jumps") if k >= 55 else ref))
        b.append((utt, ref, w("the quick crown fox jumps") if k < 40 else ref))
    return a, b


def test_clearly_better_system():
    a, b = _clearly_better_pair()
    res = mapsswe(a, b)
    assert res.num_segments == 45
    assert (res.errors_a, res.errors_b) == (5, 40)
    assert res.mean_diff < 0
    assert res.p_value < 0.001
    assert res.significant()
    assert res.better == "A"


def test_symmetry():
    a, b = _clearly_better_pair()
    ab, ba = mapsswe(a, b), mapsswe(b, a)
    assert ba.p_value == pytest.approx(ab.p_value, rel=1e-12, abs=0)
    assert ba.w_statistic == pytest.approx(-ab.w_statistic)
    assert ba.better == "B"
    hand_ab = mapsswe(_results(HAND_A, HAND_REFS), _results(HAND_B, HAND_REFS))
    hand_ba = mapsswe(_results(HAND_B, HAND_REFS), _results(HAND_A, HAND_REFS))
    assert hand_ba.p_value == pytest.approx(hand_ab.p_value, abs=1e-12)
    assert hand_ba.w_statistic == pytest.approx(-hand_ab.w_statistic, abs=1e-12)


def test_constant_nonzero_difference_gives_p_zero():
    # B errs once in each of 10 utterances, A never: every Z is -1, zero variance.
    ref = w("a b c")
    a = [(f"u{k}", ref, ref) for k in range(10)]
    b = [(f"u{k}", ref, w("a x c")) for k in range(10)]
    res = mapsswe(a, b)
    assert res.std_diff == 0.0
    assert res.w_statistic == -math.inf
    assert res.p_value == 0.0
    assert res.better == "A"


def test_no_or_single_segment_is_not_significant():
    ref = w("a b c")
    perfect = [("u1", ref, ref), ("u2", ref, ref)]
    res = mapsswe(perfect, perfect)
    assert (res.num_segments, res.p_value, res.better) == (0, 1.0, "same")
    one_error = [("u1", ref, w("a x c")), ("u2", ref, ref)]
    res = mapsswe(one_error, perfect)
    assert (res.num_segments, res.p_value, res.better) == (1, 1.0, "same")


def test_better_depends_on_alpha():
    res = mapsswe(_results(HAND_A, HAND_REFS), _results(HAND_B, HAND_REFS), alpha=0.9)
    assert res.p_value < 0.9
    assert res.better == "B"  # A has more errors (mean_diff > 0)
    assert res.significant(alpha=0.9)


def test_mismatched_ids_raise_naming_them():
    ref = w("a b")
    a = [("shared", ref, ref), ("only_in_a", ref, ref)]
    b = [("shared", ref, ref), ("only_in_b", ref, ref)]
    with pytest.raises(ValueError, match="only_in_a") as exc:
        mapsswe(a, b)
    assert "only_in_b" in str(exc.value)
    assert "shared" not in str(exc.value)


def test_mismatched_references_raise_naming_them():
    a = [("same", w("a b"), w("a b")), ("diff", w("a b"), w("a b"))]
    b = [("same", w("a b"), w("a b")), ("diff", w("a c"), w("a b"))]
    with pytest.raises(ValueError, match="references differ: diff"):
        mapsswe(a, b)


def test_duplicate_ids_raise():
    ref = w("a b")
    with pytest.raises(ValueError, match="dup"):
        mapsswe([("dup", ref, ref), ("dup", ref, ref)], [("dup", ref, ref)])


# --- matched_pairs_over_runs -------------------------------------------------------------


def _utt_errors(ref, hyp):
    return compute_wer([("u", ref, hyp)]).errors


def test_pooled_test_sums_each_utterance_over_runs_and_ignores_run_order():
    rng = random.Random(3)
    words = "zero one two three four five six seven eight nine".split()
    refs = {f"u{i}": [rng.choice(words) for _ in range(rng.randint(3, 9))] for i in range(40)}

    def noisy(p):
        out = []
        for u, ref in refs.items():
            hyp = [w if rng.random() > p else rng.choice(words) for w in ref if rng.random() > p / 2]
            out.append((u, ref, hyp))
        return out

    runs_a = [noisy(0.10), noisy(0.12)]
    runs_b = [noisy(0.25), noisy(0.20)]
    res = matched_pairs_over_runs(runs_a, runs_b)
    # brute force: Z_u = A's errors on u over both runs minus B's, over utterances with any error
    z = {}
    for ra, rb in zip(runs_a, runs_b):
        for (u, ref, ha), (_, _, hb) in zip(ra, rb):
            ea, eb = _utt_errors(ref, ha), _utt_errors(ref, hb)
            if ea or eb:
                z[u] = z.get(u, 0) + ea - eb
    n, mean = len(z), sum(z.values()) / len(z)
    sd = math.sqrt(sum((v - mean) ** 2 for v in z.values()) / (n - 1))
    assert res.num_segments == n and math.isclose(res.mean_diff, mean)
    assert math.isclose(res.w_statistic, mean / (sd / math.sqrt(n)))
    assert res.errors_a == sum(_utt_errors(r, h) for run in runs_a for _, r, h in run)
    swapped = matched_pairs_over_runs(runs_a, runs_b[::-1])
    assert math.isclose(swapped.w_statistic, res.w_statistic) and swapped.num_segments == res.num_segments
    # one run: every utterance with an error in either system is one unit (sentence level)
    with_errors = sum(
        1 for (_, r, ha), (_, _, hb) in zip(runs_a[0], runs_b[0]) if _utt_errors(r, ha) + _utt_errors(r, hb)
    )
    assert matched_pairs_over_runs(runs_a[:1], runs_b[:1]).num_segments == with_errors
    # a run on other utterances (or references) than run 0 is refused
    shifted = [(f"x{u}", r, h) for u, r, h in runs_a[1]]
    with pytest.raises(ValueError, match="run 1 does not cover the utterances of run 0"):
        matched_pairs_over_runs([runs_a[0], shifted], [runs_b[0], [(f"x{u}", r, h) for u, r, h in runs_b[1]]])
    with pytest.raises(ValueError, match="same number of runs"):
        matched_pairs_over_runs(runs_a, runs_b[:1])
