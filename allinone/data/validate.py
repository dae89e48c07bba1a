"""Sanity checks for lhotse manifests before feature extraction.

Feature extraction over thousands of recordings should not fail half way
because one file is missing or was written at the wrong sample rate, and a
supervision without text silently produces an empty target sequence.  The
functions here look at every recording/supervision up front and raise a
single :class:`ManifestError` whose message names each offending recording
id and audio file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, List, Optional

import soundfile as sf

__all__ = [
    "ManifestError",
    "check_recording",
    "check_supervision",
    "sphere_sampling_rate",
    "validate_manifests",
]

# Cap on how many problems are spelled out in one exception message.
_MAX_REPORTED = 20


class ManifestError(ValueError):
    """Raised when a manifest refers to unusable audio or transcripts.

    Attributes:
        problems: one human-readable line per problem found.
    """

    def __init__(self, problems: List[str]):
        self.problems = list(problems)
        shown = self.problems[:_MAX_REPORTED]
        more = len(self.problems) - len(shown)
        lines = [f"{len(self.problems)} problem(s) found in the manifests:"]
        lines += [f"  - {p}" for p in shown]
        if more > 0:
            lines.append(f"  ... and {more} more")
        super().__init__("\n".join(lines))


def _file_sources(recording) -> List[str]:
    """Paths of the on-disk audio files of a lhotse ``Recording``."""
    return [s.source for s in recording.sources if s.type == "file"]


def sphere_sampling_rate(path: Path) -> int:
    """The ``sample_rate`` field of a NIST SPHERE header (LDC's ``.sph`` files).

    Read from the header alone: Switchboard's files are shorten-compressed mu-law, which
    soundfile cannot open; lhotse reads their samples through ``sph2pipe``.

    Raises:
        ValueError: the file does not start with a SPHERE header or the header has no rate.
    """
    with open(path, "rb") as f:
        magic = f.read(16).split()
        if len(magic) < 2 or magic[0] != b"NIST_1A":
            raise ValueError("not a NIST SPHERE file (no NIST_1A header)")
        header = f.read(int(magic[1]) - 16).decode("ascii", errors="replace")
    m = re.search(r"^sample_rate\s+-i\s+(\d+)", header, flags=re.MULTILINE)
    if m is None:
        raise ValueError("SPHERE header has no sample_rate field")
    return int(m.group(1))


def _file_sampling_rate(path: str) -> int:
    if path.lower().endswith(".sph"):
        return sphere_sampling_rate(Path(path))
    return sf.info(path).samplerate


def check_recording(recording, expected_sampling_rate: Optional[int] = 16000) -> List[str]:
    """Problems with one recording (empty list when it is fine).

    Checked: every file source exists; the manifest's sampling rate and the
    rate stored in each file's header equal ``expected_sampling_rate`` (skip
    the rate check with ``None``).
    """
    problems: List[str] = []
    rid = recording.id
    sr_ok = expected_sampling_rate is None or recording.sampling_rate == expected_sampling_rate
    if not sr_ok:
        files = ", ".join(_file_sources(recording)) or "<no file source>"
        problems.append(
            f"recording '{rid}' ({files}): manifest sampling rate is "
            f"{recording.sampling_rate} Hz, expected {expected_sampling_rate} Hz"
        )
    for path in _file_sources(recording):
        if not Path(path).is_file():
            problems.append(f"recording '{rid}': audio file is missing: {path}")
            continue
        try:
            file_rate = _file_sampling_rate(path)
        except (RuntimeError, ValueError) as e:  # soundfile raises RuntimeError on unreadable files
            problems.append(f"recording '{rid}': cannot read audio file {path}: {e}")
            continue
        # A wrong manifest rate was reported above; only a file that disagrees
        # with a correct manifest is a separate problem.
        if sr_ok and expected_sampling_rate is not None and file_rate != expected_sampling_rate:
            problems.append(
                f"recording '{rid}': audio file {path} has sample rate "
                f"{file_rate} Hz, expected {expected_sampling_rate} Hz"
            )
    return problems


def check_supervision(supervision, recording=None) -> List[str]:
    """Problems with one supervision (empty list when it is fine).

    Checked: the transcript is non-empty after stripping whitespace; when the
    recording is given, the segment lies inside it (10 ms tolerance).
    """
    problems: List[str] = []
    where = f"supervision '{supervision.id}' of recording '{supervision.recording_id}'"
    if recording is not None:
        files = ", ".join(_file_sources(recording))
        if files:
            where += f" ({files})"
    text = supervision.text
    if text is None or not text.strip():
        problems.append(f"{where}: empty transcript")
    if recording is not None:
        end = supervision.start + supervision.duration
        if supervision.start < 0 or end > recording.duration + 0.01:
            problems.append(
                f"{where}: segment [{supervision.start:.3f}, {end:.3f}] s lies outside "
                f"the recording (duration {recording.duration:.3f} s)"
            )
    return problems


def validate_manifests(
    recordings: Iterable,
    supervisions: Iterable,
    expected_sampling_rate: Optional[int] = 16000,
) -> None:
    """Check a recording set and its supervisions; raise if anything is wrong.

    Args:
        recordings: lhotse ``RecordingSet`` (or any iterable of ``Recording``).
        supervisions: lhotse ``SupervisionSet`` (or iterable of ``SupervisionSegment``).
        expected_sampling_rate: required sample rate in Hz, ``None`` to accept any.

    Raises:
        ManifestError: listing every problem, each naming the recording id and,
            where there is one, the audio file.
    """
    problems: List[str] = []
    by_id = {}
    for rec in recordings:
        by_id[rec.id] = rec
        problems += check_recording(rec, expected_sampling_rate)
    for sup in supervisions:
        rec = by_id.get(sup.recording_id)
        if rec is None:
            problems.append(
                f"supervision '{sup.id}': refers to recording '{sup.recording_id}', "
                "which is not in the recording manifest"
            )
        problems += check_supervision(sup, rec)
    if problems:
        raise ManifestError(problems)
