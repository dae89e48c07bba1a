"""The package's import graph: no cycles, and each layer imports only the layers below it."""

import ast
from pathlib import Path

import allinone

ROOT = Path(allinone.__file__).parent

# Bottom to top: a package may import its own modules and those of the layers before it.
LAYERS = [
    {"subnet", "unfold", "utils"},
    {"quant"},
    {"losses", "lm"},
    {"nn", "data"},
    {"checkpoint", "deploy"},
    {"decoding"},
    {"training"},
    {"reports"},
]


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set:
    """``allinone.*`` modules imported at module level or anywhere in ``path``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("allinone"):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("allinone"))
    return found


def _graph() -> dict:
    return {_module_name(p): _imports(p) for p in ROOT.rglob("*.py")}


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _rank(package: str) -> int:
    for i, layer in enumerate(LAYERS):
        if package in layer:
            return i
    raise AssertionError(f"allinone.{package} is in no layer of this test: add it")


def test_every_import_goes_down_the_layers():
    upward = []
    for module, imports in _graph().items():
        if _top(module) == "":
            continue
        for target in imports:
            if _top(target) and _rank(_top(target)) > _rank(_top(module)):
                upward.append(f"{module} -> {target}")
    assert not upward, "imports of a higher layer: " + "; ".join(sorted(upward))


def test_the_quantizers_import_no_model_code():
    bad = [
        f"{m} -> {t}"
        for m, imports in _graph().items()
        if _top(m) == "quant"
        for t in imports
        if _top(t) not in ("quant", "subnet", "utils")
    ]
    assert not bad, bad


def test_no_import_cycle_between_modules():
    graph = _graph()
    modules = set(graph)
    state: dict = {}
    cycle: list = []

    def visit(m, stack):
        state[m] = "open"
        for t in graph.get(m, ()):
            t = t if t in modules else t.rsplit(".", 1)[0]  # "from pkg import name"
            if t not in modules or t == m:
                continue
            if state.get(t) == "open":
                cycle.append(stack[stack.index(t) :] + [t])
            elif t not in state:
                visit(t, stack + [t])
        state[m] = "done"

    for m in sorted(modules):
        if m not in state:
            visit(m, [m])
    assert not cycle, f"import cycle: {' -> '.join(cycle[0])}"
