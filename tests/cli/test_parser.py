"""The parser builds only what argv needs, and its command table matches the modules."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from toolfetch.cli import (
    cache_commands,
    everyday_commands,
    parser,
    registry_commands,
    tool_commands,
)


def _registered(module: object) -> list[str]:
    names: list[str] = []

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        names.append(name)
        return argparse.ArgumentParser()

    module.register(command)  # type: ignore[attr-defined]
    return names


def test_the_command_table_is_what_the_modules_register() -> None:
    modules = {"tool_commands": tool_commands, "everyday_commands": everyday_commands,
               "cache_commands": cache_commands,
               "registry_commands": registry_commands}
    assert {g: tuple(_registered(m)) for g, m in modules.items()} == parser.GROUPS


@pytest.mark.parametrize(("argv", "word"), [
    (["fetch", "--lockfile", "x"], "fetch"),
    (["--cache-dir", "fetch", "which", "t"], "which"),  # the option's value is skipped
    (["--cache-dir=c", "-vv", "cache", "gc"], "cache"),
    (["-q", "--help", "fetch"], None),
    (["--version"], None),
    ([], None),
])
def test_command_word(argv: list[str], word: str | None) -> None:
    assert parser.command_word(argv) == word


def test_only_the_named_command_is_built() -> None:
    p = parser.build_parser(["--cache-dir", "c", "cache", "gc", "--max-size", "1G"])
    args = p.parse_args(["--cache-dir", "c", "cache", "gc", "--max-size", "1G"])
    assert (args.command, args.cache_command, args.cache_dir) == ("cache", "gc", "c")
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == ["cache"]
    full = next(a for a in parser.build_parser(None)._actions
                if isinstance(a, argparse._SubParsersAction))
    assert set(full.choices) == {c for cs in parser.GROUPS.values() for c in cs}


def test_a_fetch_imports_no_other_command_group() -> None:
    code = ("import sys\nfrom toolfetch.cli.parser import build_parser\n"
            "build_parser(['fetch', '--offline']).parse_args(['fetch', '--offline'])\n"
            "print(sorted(m for m in sys.modules if m.startswith('toolfetch.cli.')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "toolfetch.cli.tool_commands" in out
    assert "registry_commands" not in out and "cache_commands" not in out


def test_an_unknown_command_lists_them_all(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        parser.build_parser(["frobnicate"]).parse_args(["frobnicate"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "frobnicate" in err and "'fetch'" in err and "'copy'" in err and "'cache'" in err
