"""The names of a decoding run's result files, in one place for decode.py and the reports.

A run of ``decode.py`` writes, under :func:`result_dir`,

- ``recogs-<test_set>-<key>-<subnet>-<suffix>.txt``, ``errs-*`` and ``wer-summary-*``
  (:func:`result_file`, written by :func:`save_results` with ``subnet_suffix(subnet, suffix)``),
- ``subnet-summary-<key>-<suffix>.md`` / ``.json`` (:func:`summary_file` of ``summary_tag(key, suffix)``),

where ``key`` is :func:`decoding_key` (the method and its search settings, icefall-style) and
``suffix`` is :func:`result_suffix` (which weights were decoded).
"""

from pathlib import Path
from typing import List, Optional, Sequence, Union

from allinone.utils.scoring import Result, write_error_stats, write_recogs

PathLike = Union[str, Path]

RESULT_KINDS = ("recogs", "errs", "wer-summary")
PACKED_SUFFIX = "packed"
BN_CALIBRATED = "-bn-calibrated"


def decoding_key(
    method: str, beam_size: int = 4, search_beam: float = 20.0, ngram_lm_scale: float = 1.0
) -> str:
    """The decoding setting's name, e.g. ``modified_beam_search_beam_4``, ``1best_beam_20_lm_scale_1``.

    Args:
        method: a ``decode.py --decoding-method`` value.
        beam_size: hypotheses kept (``modified_beam_search`` only).
        search_beam: graph search beam (``ctc-decoding``, ``hl``, ``1best``).
        ngram_lm_scale: weight of the n-gram LM (``1best`` only).
    Raises:
        ValueError: an unknown method.
    """
    keys = {
        "greedy_search": "greedy_search",
        "modified_beam_search": f"modified_beam_search_beam_{beam_size}",
        "ctc-greedy-search": "ctc-greedy-search",
        "ctc-decoding": f"ctc-decoding_beam_{search_beam:g}",
        "hl": f"hl_beam_{search_beam:g}",
        "1best": f"1best_beam_{search_beam:g}_lm_scale_{ngram_lm_scale:g}",
    }
    if method not in keys:
        raise ValueError(f"unknown decoding method {method!r}; expected one of {', '.join(keys)}")
    return keys[method]


def result_suffix(
    epoch: Optional[int],
    avg: int = 1,
    use_averaged_model: bool = True,
    blank_penalty: float = 0.0,
    kept_codes: bool = False,
) -> str:
    """Which weights a run decoded, e.g. ``epoch-10-avg-1-use-averaged-model``.

    Args:
        epoch: the checkpoint's epoch; None for a packed model file (suffix ``packed``,
            or ``packed-codes`` when its weights stayed packed in memory: ``kept_codes``).
        avg, use_averaged_model: how the checkpoints were averaged (unused for a packed file).
        blank_penalty: a non-zero value ends the suffix (``-blank-penalty-P``), as icefall
            names it, so that such a run's files stay apart from the plain decoding's.
    """
    if epoch is None:
        suffix = PACKED_SUFFIX + ("-codes" if kept_codes else "")
    else:
        suffix = f"epoch-{epoch}-avg-{avg}" + ("-use-averaged-model" if use_averaged_model else "")
    if blank_penalty:
        suffix += f"-blank-penalty-{blank_penalty:g}"
    return suffix


def result_dir(exp_dir: PathLike, method: str, bn_calibrated: bool = False) -> Path:
    """``<exp_dir>/<method>``, or ``<exp_dir>/<method>-bn-calibrated`` when each subnet's
    BatchNorm statistics were recomputed before decoding."""
    return Path(exp_dir) / f"{method}{BN_CALIBRATED if bn_calibrated else ''}"


def result_file(res_dir: PathLike, kind: str, test_set: str, suffix: str, key: Optional[str] = None) -> Path:
    """icefall's result file names: ``recogs-<test_set>-<key>-<suffix>.txt``, the same for
    ``errs``, and ``wer-summary-<test_set>-<suffix>.txt`` (no key). Glob wildcards are
    allowed in any part, so the reports find files by the same rule that named them."""
    if kind not in RESULT_KINDS:
        raise ValueError(f"unknown result file kind {kind!r}; valid: {RESULT_KINDS}")
    if (key is None) != (kind == "wer-summary"):
        raise ValueError(f"{kind} files {'take no' if key else 'need a'} decoding key")
    middle = f"{test_set}-{key}" if key is not None else test_set
    return Path(res_dir) / f"{kind}-{middle}-{suffix}.txt"


def summary_file(res_dir: PathLike, tag: str, ext: str = "json") -> Path:
    """The per-subnet summary of a run, ``subnet-summary-<tag>.<ext>`` (ext ``md`` or ``json``)."""
    return Path(res_dir) / f"subnet-summary-{tag}.{ext}"


def subnet_suffix(subnet: str, suffix: str) -> str:
    """The suffix of one subnet's recogs/errs/wer-summary files: the subnet name leads."""
    return f"{subnet}-{suffix}"


def summary_tag(key: str, suffix: str) -> str:
    """The tag of a run's ``subnet-summary-<tag>.md/.json``."""
    return f"{key}-{suffix}"


def epoch_pattern(epoch: Optional[int]) -> str:
    """Glob for the suffixes of every run of one checkpoint epoch (any averaging), or
    ``packed`` for a packed model file (``epoch`` None)."""
    return PACKED_SUFFIX if epoch is None else f"epoch-{epoch}-*"


def _plain(paths) -> List[Path]:
    """The files of plain decodings: a blank-penalty run sits beside them, not in their place."""
    return sorted(p for p in paths if "-blank-penalty-" not in p.name)


def summary_files(res_dir: PathLike, epoch: Optional[int]) -> List[Path]:
    """The ``subnet-summary-*.json`` files in ``res_dir`` of plain runs of ``epoch`` (sorted)."""
    return _plain(Path(res_dir).glob(summary_file(".", f"*-{epoch_pattern(epoch)}").name))


def recogs_files(res_dir: PathLike, test_set: str, subnet: str, epoch: Optional[int]) -> List[Path]:
    """The recogs files in ``res_dir`` of ``subnet`` on ``test_set`` from plain runs of ``epoch`` (sorted)."""
    return _plain(Path(res_dir).glob(recogs_pattern(test_set, subnet, epoch)))


def recogs_pattern(test_set: str, subnet: str, epoch: Optional[int]) -> str:
    """Glob (relative to a result dir) of :func:`recogs_files`'s ``.txt`` files."""
    return result_file(".", "recogs", test_set, subnet_suffix(subnet, epoch_pattern(epoch)), key="*").name


def save_results(
    res_dir: PathLike,
    test_set_name: str,
    results_dict: dict[str, Sequence[Result]],
    suffix: str,
) -> dict[str, float]:
    """Write recogs/errs files for each decoding setting plus a WER summary.

    Files (:func:`result_file`): ``recogs-{test_set}-{key}-{suffix}.txt``,
    ``errs-{test_set}-{key}-{suffix}.txt`` per key and ``wer-summary-{test_set}-{suffix}.txt``
    (``settings<TAB>WER``, best first).

    Args:
        res_dir: output directory (created if missing).
        test_set_name: name of the test set, e.g. ``test-clean``.
        results_dict: decoding setting (e.g. ``beam_size_4``) -> result triples.
        suffix: experiment tag, e.g. ``epoch-30-avg-10``.
    Returns:
        setting -> WER in percent.
    """
    res_dir = Path(res_dir)
    res_dir.mkdir(parents=True, exist_ok=True)
    wers: dict[str, float] = {}
    for key, results in results_dict.items():
        write_recogs(result_file(res_dir, "recogs", test_set_name, suffix, key), results)
        wers[key] = write_error_stats(
            result_file(res_dir, "errs", test_set_name, suffix, key), test_set_name, results
        )

    summary_path = result_file(res_dir, "wer-summary", test_set_name, suffix)
    with open(summary_path, "w", encoding="utf-8") as f:
        f.write("settings\tWER\n")
        for key, wer in sorted(wers.items(), key=lambda kv: kv[1]):
            f.write(f"{key}\t{wer:.2f}\n")
    return wers
