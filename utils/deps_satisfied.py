#!/usr/bin/env python3
"""Exit 0 when every ``name==version`` pin of a requirements file is installed at that
version (a local build tag such as ``+cpu`` allowed) and ``allinone`` is installed from the
given checkout, else exit 1 and say what differs. ``install_deps.sh`` then skips pip,
which costs seconds even when nothing is to be done.

Run it with ``python3 -I`` so that the current directory cannot stand in for an install.

Usage: python3 -I utils/deps_satisfied.py REPO [REQUIREMENTS]   (default: REPO/requirements.txt)
"""

import importlib.metadata as metadata
import importlib.util
import sys
from pathlib import Path

from packaging.specifiers import SpecifierSet


def unmet(repo: Path, requirements: Path) -> str:
    """The first requirement that is not met, or '' when all are."""
    for line in requirements.read_text().splitlines():
        spec = line.split("#")[0].strip()
        if not spec:
            continue
        name, sep, version = spec.partition("==")
        if not sep:
            return f"{spec}: not pinned with =="
        try:
            installed = metadata.version(name.strip())
        except metadata.PackageNotFoundError:
            return f"{name.strip()}: not installed"
        if not SpecifierSet(f"=={version.strip()}").contains(installed):  # 2.13.0+cpu meets ==2.13.0
            return f"{name.strip()}: {installed} installed, {version.strip()} pinned"
    found = importlib.util.find_spec("allinone")
    if found is None or found.origin is None:
        return "allinone: not installed"
    if not Path(found.origin).resolve().is_relative_to(repo.resolve()):
        return f"allinone: installed from {Path(found.origin).parent.parent}, not {repo}"
    return ""


def main() -> None:
    repo = Path(sys.argv[1])
    requirements = Path(sys.argv[2]) if len(sys.argv) > 2 else repo / "requirements.txt"
    reason = unmet(repo, requirements)
    if reason:
        print(f"install needed: {reason}")
        sys.exit(1)


if __name__ == "__main__":
    main()
