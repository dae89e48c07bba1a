"""Recipe shell scripts parse, and each keeps its body in one block bash reads whole.

Bash reads a script file as it runs it, so editing a recipe while a long run of it goes on
would otherwise change or break that run (a real failure here: a stage started reading
shifted bytes). A body wrapped as ``{ ...; exit; }`` is parsed in full before it starts.
"""

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(ROOT.glob("egs/*/ASR/*.sh"))


def test_the_recipes_have_scripts():
    assert {p.name for p in SCRIPTS} >= {"prepare.sh", "run.sh", "run_all_in_one.sh"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_a_recipe_script_parses_and_runs_as_one_block(script):
    subprocess.run(["bash", "-n", str(script)], check=True)
    lines = [line.rstrip() for line in script.read_text().splitlines()]
    opened = lines.index("{")
    assert all(not line or line.startswith("#") or line.startswith("set -") for line in lines[1:opened])
    assert lines[-2:] == ["exit", "}"]
