"""The names of a decoding run's result files, in one place for decode.py and the reports.

A run of ``decode.py`` writes, under :func:`result_dir`,

- ``recogs-<test_set>-<key>-<subnet>-<suffix>.txt`` (and ``errs-*``, ``wer-summary-*``, see
  :func:`allinone.utils.scoring.save_results`, called with ``subnet_suffix(subnet, suffix)``),
- ``subnet-summary-<key>-<suffix>.md`` / ``.json`` (``summary_tag(key, suffix)``),

where ``key`` is :func:`decoding_key` (the method and its search settings, icefall-style) and
``suffix`` is :func:`result_suffix` (which weights were decoded).
"""

from pathlib import Path
from typing import List, Optional, Union

PathLike = Union[str, Path]

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
    epoch: Optional[int], avg: int = 1, use_averaged_model: bool = True, blank_penalty: float = 0.0
) -> str:
    """Which weights a run decoded, e.g. ``epoch-10-avg-1-use-averaged-model``.

    Args:
        epoch: the checkpoint's epoch; None for a packed model file (suffix ``packed``).
        avg, use_averaged_model: how the checkpoints were averaged (unused for a packed file).
        blank_penalty: a non-zero value ends the suffix (``-blank-penalty-P``), as icefall
            names it, so that such a run's files stay apart from the plain decoding's.
    """
    if epoch is None:
        suffix = PACKED_SUFFIX
    else:
        suffix = f"epoch-{epoch}-avg-{avg}" + ("-use-averaged-model" if use_averaged_model else "")
    if blank_penalty:
        suffix += f"-blank-penalty-{blank_penalty:g}"
    return suffix


def result_dir(exp_dir: PathLike, method: str, bn_calibrated: bool = False) -> Path:
    """``<exp_dir>/<method>``, or ``<exp_dir>/<method>-bn-calibrated`` when each subnet's
    BatchNorm statistics were recomputed before decoding."""
    return Path(exp_dir) / f"{method}{BN_CALIBRATED if bn_calibrated else ''}"


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
    return _plain(Path(res_dir).glob(f"subnet-summary-*-{epoch_pattern(epoch)}.json"))


def recogs_files(res_dir: PathLike, test_set: str, subnet: str, epoch: Optional[int]) -> List[Path]:
    """The recogs files in ``res_dir`` of ``subnet`` on ``test_set`` from plain runs of ``epoch``:
    ``.txt`` ones first (sorted), then gzip-compressed ``.txt.gz`` ones."""
    pattern = recogs_pattern(test_set, subnet, epoch)
    return _plain(Path(res_dir).glob(pattern)) + _plain(Path(res_dir).glob(pattern + ".gz"))


def recogs_pattern(test_set: str, subnet: str, epoch: Optional[int]) -> str:
    """Glob (relative to a result dir) of :func:`recogs_files`'s ``.txt`` files."""
    return f"recogs-{test_set}-*-{subnet_suffix(subnet, epoch_pattern(epoch))}.txt"
