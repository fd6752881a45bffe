"""The package's layering (docs/design.md): every import points down or sideways, never up,
and no two modules need each other.

Imports are read from the source (module level, inside functions, ``TYPE_CHECKING`` blocks,
and ``importlib.import_module("toolfetch.…")`` with a literal name), so a lazy import or a
module loaded by name cannot hide an upward edge or a cycle.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
from tf import REPO

PACKAGE = REPO / "tools" / "toolfetch"
# The layer order, lowest first: a module may import its own layer and those before it.
LAYERS = ["core", "oci", "registry", "cache", "lock", "ops", "api", "cli"]
# toolfetch/__main__.py and the package itself (whose lazy attributes are the api facade)
# sit above every layer
TOP = len(LAYERS)
MAX_LINES = 400


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int:
    """The layer's index; ``toolfetch`` itself (it re-exports the facade) is at the top."""
    parts = module.split(".")
    if len(parts) == 1:
        return TOP
    return LAYERS.index(parts[1]) if parts[1] in LAYERS else TOP


def label(module: str) -> str:
    layer = layer_of(module)
    return LAYERS[layer] if layer < TOP else "top"


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path, name: str) -> set[str]:
    """Every toolfetch module ``path`` imports, anywhere in it.

    ``from pkg import sub`` is an edge to the submodule ``pkg.sub``; ``from pkg import name``
    (not a module) an edge to ``pkg`` itself. The packages a module sits in are not edges: a
    layer's ``__init__`` holds no imports of its own modules at import time.
    """
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    known = modules()
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.add(node.args[0].value)
    return {m for m in found if m in known and m != name}


def graph() -> dict[str, set[str]]:
    return {name: imports_of(path, name) for name, path in modules().items()}


def test_every_module_belongs_to_a_layer() -> None:
    strays = [m for m in modules() if layer_of(m) == TOP
              and m not in ("toolfetch", "toolfetch.__main__")]
    assert strays == []


def test_imports_only_point_down() -> None:
    upward = sorted(f"{m} ({label(m)}) imports {d} ({label(d)})"
                    for m, deps in graph().items() if layer_of(m) < TOP
                    for d in deps if layer_of(d) > layer_of(m))
    assert upward == []


def test_no_import_cycles() -> None:
    edges = graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, set())):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert cycles == []


def test_core_uses_the_standard_library_only() -> None:
    stdlib = set(sys.stdlib_module_names)
    offenders = []
    for name, path in modules().items():
        if layer_of(name) != 0:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                     else [])
            for imported in names:
                top = imported.split(".")[0]
                if top not in stdlib and top != "toolfetch" and top != "__future__":
                    offenders.append(f"{name} imports {imported}")
    assert offenders == []


def test_no_module_is_over_400_lines() -> None:
    long = {m: n for m, p in modules().items()
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


# cli/ is thin (issue 25, item 2): a command parses flags, calls one facade method and
# prints, so cli/ imports from toolfetch only the facade, core and cli itself (the hit path
# is cli/hitpath, on core alone).
CLI_MAY_IMPORT = ("api", "core", "cli")


def test_cli_imports_only_the_facade_core_and_cli() -> None:
    stray = sorted(f"{m} imports {d}" for m, deps in graph().items() if label(m) == "cli"
                   for d in deps if label(d) not in CLI_MAY_IMPORT)
    assert stray == []


@pytest.mark.parametrize("layer", LAYERS)
def test_each_layer_is_a_documented_package(layer: str) -> None:
    init = PACKAGE / layer / "__init__.py"
    assert init.is_file() and ast.get_docstring(ast.parse(init.read_text()))
    design = (PACKAGE.parent.parent / "docs" / "design.md").read_text()
    assert f"`{layer}/`" in design, f"docs/design.md does not describe {layer}/"


def test_the_checker_catches_an_upward_import_and_a_cycle(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """The tests above can fail: a fake package with a core -> cli import, a cycle, and a
    cli -> ops import."""
    fake = tmp_path / "toolfetch"
    for rel, text in {
        "__init__.py": "",
        "core/__init__.py": "", "core/a.py": "def f():\n    from toolfetch.cli import b\n",
        "cli/__init__.py": "", "cli/b.py": "import importlib\n"
                                            "importlib.import_module('toolfetch.cli.c')\n",
        "cli/c.py": "from toolfetch.cli import b\n",
        "ops/__init__.py": "", "ops/d.py": "", "cli/e.py": "from toolfetch.ops import d\n",
    }.items():
        (fake / rel).parent.mkdir(parents=True, exist_ok=True)
        (fake / rel).write_text(text)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    edges = graph()
    assert edges["toolfetch.core.a"] == {"toolfetch.cli.b"}
    with pytest.raises(AssertionError):
        test_imports_only_point_down()
    with pytest.raises(AssertionError):
        test_no_import_cycles()
    with pytest.raises(AssertionError):  # cli/e reaches below the facade
        test_cli_imports_only_the_facade_core_and_cli()
