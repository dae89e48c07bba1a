"""Every script with a shebang can be run as the README and RESULTS.md show it
(``../../../local/compare_all_in_one.py ...``), which needs the executable bit in git."""

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def tracked_scripts():
    """(path, git file mode) of every tracked .py/.sh file that starts with ``#!``."""
    out = subprocess.run(
        ["git", "ls-files", "-s", "--", "*.py", "*.sh"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    for line in out.splitlines():
        meta, path = line.split("\t", 1)
        with open(ROOT / path, "rb") as f:
            if f.read(2) == b"#!":
                yield path, meta.split()[0]


def test_every_script_with_a_shebang_is_executable_in_git():
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout (the modes checked are git's)")
    scripts = list(tracked_scripts())
    assert any(p == "local/compare_all_in_one.py" for p, _ in scripts)
    not_executable = [p for p, mode in scripts if mode != "100755"]
    assert not not_executable, f"chmod +x (and git add) these scripts: {not_executable}"
