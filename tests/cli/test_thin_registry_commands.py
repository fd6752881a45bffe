"""The registry and cache commands are thin: they parse flags, call one ``toolfetch.Client``
method and print, so the modules that hold them import from toolfetch only the facade
(``api``), ``core`` and ``cli`` itself — no ``ops``, ``registry``, ``cache``, ``lock`` or
``oci`` (issue 25, item 2). Imports are read from the source, lazy ones included."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from tf import REPO

CLI = REPO / "tools" / "toolfetch" / "cli"
THIN = ["registry_commands.py", "cache_commands.py", "artifact_text.py"]
ALLOWED = ("toolfetch.api", "toolfetch.core", "toolfetch.cli")


def toolfetch_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
        elif isinstance(node, ast.ImportFrom) and node.level:
            found.add("toolfetch.cli" + (f".{node.module}" if node.module else ""))
    return {m for m in found if m == "toolfetch" or m.startswith("toolfetch.")}


@pytest.mark.parametrize("name", THIN)
def test_imports_only_the_facade_core_and_cli(name: str) -> None:
    imported = toolfetch_imports(CLI / name)
    assert imported, "the checker found no imports at all"
    stray = sorted(m for m in imported
                   if not any(m == a or m.startswith(a + ".") for a in ALLOWED))
    assert stray == []


def test_the_checker_catches_an_ops_import(tmp_path: Path) -> None:
    fake = tmp_path / "fake.py"
    fake.write_text("def f():\n    from toolfetch.ops.copy_pull import pull\n"
                    "from toolfetch.core.errors import UsageError\n")
    assert toolfetch_imports(fake) == {"toolfetch.ops.copy_pull", "toolfetch.core.errors"}
