"""``allinone.quant`` holds primitives only: it imports nothing from the layers above it."""

import ast
import subprocess
import sys
from pathlib import Path

import allinone.quant

ABOVE = ("allinone.nn", "allinone.deploy", "allinone.training")


def _imports(path: Path):
    """(line, module) of every import in ``path``, relative ones resolved against ``allinone.quant``."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # from . import x / from ..nn import y
                base = "allinone.quant".split(".")[: 2 - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:  # from allinone import nn
                yield node.lineno, f"{module}.{alias.name}"


def test_no_quant_module_imports_the_model_or_what_sits_above_it():
    package = Path(allinone.quant.__file__).parent
    files = sorted(package.rglob("*.py"))
    assert len(files) > 5
    offending = [
        f"{path.relative_to(package.parent.parent)}:{line} imports {module}"
        for path in files
        for line, module in _imports(path)
        if any(module == top or module.startswith(top + ".") for top in ABOVE)
    ]
    assert not offending, "\n".join(offending)


def test_the_check_sees_imports_inside_functions(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "def f():\n    from allinone.nn.model import Transducer\n    from allinone import deploy\n"
    )
    found = [m for _, m in _imports(bad)]
    assert "allinone.nn.model" in found and "allinone.deploy" in found


def test_importing_every_quant_module_loads_nothing_from_above():
    """The same rule, transitively: what the imports pull in at run time (package ``__init__``s too)."""
    package = Path(allinone.quant.__file__).parent
    names = [f"allinone.quant.{p.stem}" for p in sorted(package.glob("*.py")) if p.stem != "__init__"]
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(sorted(m for m in sys.modules if m.startswith({ABOVE!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
