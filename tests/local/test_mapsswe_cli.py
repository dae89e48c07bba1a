"""local/mapsswe.py: the significance test between two recogs files, from the shell."""

import subprocess
import sys
from pathlib import Path

from allinone.utils.scoring import write_recogs
from allinone.utils.significance import mapsswe, matched_pairs_over_runs

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


def test_runs_of_each_system_are_pooled_with_the_matched_pairs_test(tmp_path):
    refs = [f"one two three {w}".split() for w in ("four", "five", "six", "seven", "eight", "nine")]
    a1 = [(f"u{i}", r, r) for i, r in enumerate(refs)]
    a2 = [(f"u{i}", r, r if i else r[:-1]) for i, r in enumerate(refs)]
    b1 = [(f"u{i}", r, r[:-1]) for i, r in enumerate(refs)]
    b2 = [(f"u{i}", r, r[1:] if i % 2 else r) for i, r in enumerate(refs)]
    for name, run in (("a1", a1), ("a2", a2), ("b1", b1), ("b2", b2)):
        write_recogs(tmp_path / f"{name}.txt", run)
    files = [",".join(str(tmp_path / f"{x}.txt") for x in pair) for pair in (("a1", "a2"), ("b1", "b2"))]
    out = subprocess.run(
        [sys.executable, str(SCRIPT), *files], capture_output=True, text=True, check=True
    ).stdout
    expected = matched_pairs_over_runs([a1, a2], [b1, b2])
    assert f"{expected.num_segments} segments" in out and f"p {expected.p_value:.4f}" in out
    assert "pooled over 2 runs: A 2.08%, B 18.75%" in out
    uneven = subprocess.run(
        [sys.executable, str(SCRIPT), files[0], str(tmp_path / "b1.txt")], capture_output=True, text=True
    )
    assert uneven.returncode == 2 and "2 runs of A against 1 of B" in uneven.stderr
