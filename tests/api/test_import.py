"""``import toolfetch`` is cheap: the facade's names load on first use, and none of them pulls
``requests``, ``yaml`` or ``jsonschema`` in before a method needs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tf import HEAVY

import toolfetch

PROBE = """
import json, sys
before = set(sys.modules)
import toolfetch
after_import = sorted(set(sys.modules) - before)
names = [getattr(toolfetch, n) for n in toolfetch.__all__]
after_names = sorted(set(sys.modules) - before)
client = toolfetch.Client(sys.argv[1])
after_client = sorted(set(sys.modules) - before)
print(json.dumps([after_import, after_names, after_client]))
"""


def _heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if m.split(".")[0] in HEAVY]


def test_import_toolfetch_loads_no_heavy_module_and_no_more_than_the_cli(tmp_path: Path
                                                                          ) -> None:
    p = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "tools.lock.json")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    after_import, after_names, after_client = json.loads(p.stdout)
    # the package and its version: nothing of the facade, not even typing
    assert [m for m in after_import if m.startswith("toolfetch")] == [
        "toolfetch", "toolfetch.core", "toolfetch.core.version"]
    assert "typing" not in after_import
    # every exported name, and a client, still without requests, yaml or jsonschema
    assert _heavy(after_import) == _heavy(after_names) == _heavy(after_client) == []
    assert "toolfetch.api.client" in after_client
    # the command line's start-up (`import toolfetch.cli`, before the hit path runs) loads
    # every module `import toolfetch` loads: the import costs nothing more than that
    cli = subprocess.run([sys.executable, "-c", "import json, sys; before = set(sys.modules); "
                          "import toolfetch.cli; print(json.dumps(sorted(set(sys.modules) "
                          "- before)))"], capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    assert set(after_import) <= set(json.loads(cli.stdout))


def test_every_exported_name_resolves_and_is_listed() -> None:
    assert toolfetch.__version__ == "0.1.0"
    for name in toolfetch.__all__:
        assert getattr(toolfetch, name) is not None, name
    assert set(toolfetch.__all__) <= set(dir(toolfetch))
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        toolfetch.Nope  # noqa: B018


@pytest.mark.parametrize(("name", "code"), [
    ("ToolfetchError", 1), ("UsageError", 2), ("IntegrityError", 3), ("NotFoundError", 4),
    ("AuthError", 5), ("UnreachableError", 6), ("OutOfDateError", 7), ("LocalIOError", 8),
])
def test_error_classes_carry_the_cli_exit_codes(name: str, code: int) -> None:
    cls = getattr(toolfetch, name)
    assert cls.exit_code == code
    assert issubclass(cls, toolfetch.ToolfetchError)
    from toolfetch.core import errors

    assert cls is getattr(errors, name)  # the very classes ops raise, not copies


def test_multiple_errors_take_the_first_errors_exit_code() -> None:
    e = toolfetch.MultipleErrors([toolfetch.NotFoundError("a"), toolfetch.AuthError("b")])
    assert e.exit_code == 4 and isinstance(e, toolfetch.ToolfetchError)
