"""utils/deps_satisfied.py: install_deps.sh skips pip only when every pin is met and
allinone comes from this checkout."""

import importlib.metadata as metadata
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "utils" / "deps_satisfied.py"


def _check(repo: Path, requirements: Path):
    cmd = [sys.executable, "-I", str(SCRIPT), str(repo), str(requirements)]
    return subprocess.run(cmd, capture_output=True, text=True)


def test_met_pins_pass_and_each_kind_of_unmet_one_is_named(tmp_path):
    lhotse = metadata.version("lhotse")
    req = tmp_path / "requirements.txt"
    req.write_text(f"# a comment\nlhotse=={lhotse}  # pinned\n\n")
    assert _check(REPO, req).returncode == 0
    for line, message in [
        ("lhotse==0.0.1", f"lhotse: {lhotse} installed, 0.0.1 pinned"),
        ("no-such-package-xyz==1.0", "no-such-package-xyz: not installed"),
        ("lhotse>=1.0", "lhotse>=1.0: not pinned with =="),
    ]:
        req.write_text(line + "\n")
        out = _check(REPO, req)
        assert out.returncode == 1 and message in out.stdout
    # the same pins, but allinone is not installed from that directory
    req.write_text(f"lhotse=={lhotse}\n")
    out = _check(tmp_path, req)
    assert out.returncode == 1 and "allinone: installed from" in out.stdout
