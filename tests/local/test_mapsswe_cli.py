"""local/mapsswe.py: the significance test between two recogs files, from the shell."""

import subprocess
import sys
from pathlib import Path

from allinone.utils.scoring import write_recogs
from allinone.utils.significance import mapsswe

SCRIPT = Path(__file__).resolve().parents[2] / "local" / "mapsswe.py"


def test_prints_both_wers_and_the_same_p_as_the_library(tmp_path):
    refs = [f"one two three four five {w}".split() for w in ("six", "seven", "eight", "nine", "zero")]
    a = [(f"u{i}", r, r) for i, r in enumerate(refs)]
    b = [(f"u{i}", r, r[:-1] if i % 2 == 0 else r) for i, r in enumerate(refs)]  # 3 deletions
    write_recogs(tmp_path / "a.txt", a)
    write_recogs(tmp_path / "b.txt", b)
    out = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "a.txt"), str(tmp_path / "b.txt")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "A: WER 0.00% (0 errors / 30 words)" in out and "B: WER 10.00% (3 errors / 30 words)" in out
    expected = mapsswe(a, b)
    assert f"{expected.num_segments} segments" in out and f"p {expected.p_value:.4f}: A better" in out


def test_a_missing_file_is_named(tmp_path):
    out = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "nope.txt"), str(tmp_path / "nope.txt")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and "nope.txt is not a file" in out.stderr


def test_decodings_of_different_utterances_are_refused(tmp_path):
    write_recogs(tmp_path / "a.txt", [("u1", ["one"], ["one"])])
    write_recogs(tmp_path / "b.txt", [("u2", ["one"], ["one"])])
    out = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "a.txt"), str(tmp_path / "b.txt")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and "ids only in results_a: u1" in out.stderr
