"""The significance criterion every "worse" / "lossless" verdict of the reports follows.

A verdict is taken per (subnet, test set) pair: MAPSSWE at p < 0.05, uncorrected, on the
decodings of at least two training seeds of each kind pooled per pair (the pooled test of
:func:`allinone.reports.decodings.mapsswe_per_set`). Beside it stands the *noise floor*:
how many pairs the same test flags between two trainings of the identical recipe (one
root of individually trained twins against another trained with other seeds). The claim
"no subnet worse than its twin" holds when

- the pooled number of worse pairs does not exceed the noise floor, and
- no pair is worse under every seed on its own.

With one seed of each kind there is no pooled verdict and the claim is not decided; the
per-seed verdicts are reported as they are.
"""

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from allinone.reports.decodings import DecodedSubnet, mapsswe_per_set

Pair = Tuple[str, str]  # (subnet, test set)

SINGLE_SEED_NOTE = (
    "One training seed of each kind: the decided criterion (two seeds of each kind pooled per "
    "pair, against the twin-vs-twin noise floor) cannot be applied; the verdicts are per seed."
)


def worse_pairs(verdicts: Dict[str, Dict[str, Dict]]) -> List[Pair]:
    """The (subnet, test set) pairs where the first system is significantly worse.

    Args:
        verdicts: subnet -> test set -> ``{"better": "A" | "B" | "same", ...}`` of the
            system under test (A) against its reference (B), as ``mapsswe_per_set`` gives.
    """
    return [(name, t) for name, per_set in verdicts.items() for t, v in per_set.items() if v["better"] == "B"]


def noise_floor(twins_a: Dict[str, DecodedSubnet], twins_b: Dict[str, DecodedSubnet], alpha: float) -> Dict:
    """The pairs the test flags (either way) between two trainings of the same subnets.

    Args:
        twins_a, twins_b: subnet -> the same subnet trained with the identical recipe and
            other seeds; single runs or pooled ones (both of one kind).
        alpha: significance level.
    Returns:
        ``{"pairs": number of pairs tested, "count": pairs flagged, "flagged": [[subnet,
        test set, "a worse" | "b worse", p], ...]}``.
    Raises:
        ValueError: a subnet of ``twins_a`` missing from ``twins_b`` (named).
    """
    missing = [n for n in twins_a if n not in twins_b]
    if missing:
        raise ValueError(f"the noise floor needs both trainings of every subnet; the second lacks {missing}")
    flagged, pairs = [], 0
    for name, a in twins_a.items():
        for t, v in mapsswe_per_set(a, twins_b[name], alpha).items():
            pairs += 1
            if v["better"] != "same":
                flagged.append([name, t, "b worse" if v["better"] == "A" else "a worse", v["p"]])
    return {"pairs": pairs, "count": len(flagged), "flagged": flagged}


def claim_verdict(
    pooled_worse: Optional[Sequence[Pair]], per_seed_worse: Sequence[Sequence[Pair]], floor: Optional[Dict]
) -> Dict:
    """Whether "no subnet worse than its twin" holds under the decided criterion.

    Args:
        pooled_worse: worse pairs of the pooled verdict; None with one seed of each kind.
        per_seed_worse: worse pairs of each seed's own verdict.
        floor: :func:`noise_floor` of two trainings of the twins; None when not measured.
    Returns:
        ``{"holds": True | False | None (not decided), "worse_under_every_seed": [...],
        "line": the summary line}``.
    """
    every: List[List[str]] = []
    if len(per_seed_worse) > 1:
        common = set.intersection(*(set(map(tuple, worse)) for worse in per_seed_worse))
        every = [list(pair) for pair in sorted(common)]
    claim = "No subnet worse than its twin"
    if pooled_worse is None or len(per_seed_worse) < 2:
        return {
            "holds": None,
            "worse_under_every_seed": every,
            "line": f"{claim}: not decided. {SINGLE_SEED_NOTE}",
        }
    if floor is None:
        return {
            "holds": None,
            "worse_under_every_seed": every,
            "line": f"{claim}: not decided (no twin-vs-twin noise floor measured)",
        }
    n, limit = len(pooled_worse), floor["count"]
    reasons = [
        f"{n} worse pairs pooled {'<=' if n <= limit else '>'} noise floor {limit} of {floor['pairs']}"
    ]
    if every:
        reasons.append("worse under every seed: " + ", ".join(f"{s} {t}" for s, t in every))
    else:
        reasons.append("no pair worse under every seed")
    holds = n <= limit and not every
    return {
        "holds": holds,
        "worse_under_every_seed": every,
        "line": f"{claim}: {'holds' if holds else 'fails'} ({'; '.join(reasons)})",
    }


def format_floor(floor: Optional[Dict], roots: Sequence[str]) -> List[str]:
    """The noise-floor line of a report (nothing when it was not measured)."""
    if floor is None:
        return []
    which = " against ".join(roots)
    names = {"a worse": f"{Path(roots[0]).name} worse", "b worse": f"{Path(roots[1]).name} worse"}
    flagged = ", ".join(f"{s} {t} ({names[who]}, p {p:.3f})" for s, t, who, p in floor["flagged"]) or "none"
    return [
        f"- Noise floor (twins against twins of the identical recipe, other seed: {which}): "
        f"{floor['count']} of {floor['pairs']} pairs flagged by the same test: {flagged}"
    ]
