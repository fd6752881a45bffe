"""Help that explains itself: every option and argument has help text, defaults are stated,
every command shows examples and exit codes; no abbreviations; one validation of --jobs and
of --platform with --all-platforms; a mistyped option prints its own command's usage."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest
from tf import run_toolfetch, tf_main

from toolfetch.cli import completion, helptext
from toolfetch.cli.parser import build_parser

Walked = tuple[str, argparse.ArgumentParser]


def _walk(parser: argparse.ArgumentParser, name: str = "toolfetch") -> Iterator[Walked]:
    yield name, parser
    for sub, (_, p) in completion.subcommands(parser).items():
        yield from _walk(p, f"{name} {sub}")


COMMANDS = list(_walk(build_parser(None)))
NOT_OPTIONS = (argparse._HelpAction, argparse._SubParsersAction, argparse._VersionAction)


def test_every_option_and_argument_has_help_and_states_its_default() -> None:
    missing, undefaulted = [], []
    for name, p in COMMANDS:
        for a in p._actions:
            if isinstance(a, NOT_OPTIONS):
                continue
            what = f"{name} {'/'.join(a.option_strings) or a.metavar or a.dest}"
            if not a.help or a.help == argparse.SUPPRESS:
                missing.append(what)
            elif (a.option_strings and a.nargs != 0 and a.default not in (None, [])
                  and a.default != argparse.SUPPRESS and "default" not in a.help):
                undefaulted.append(what)
    assert missing == [] and undefaulted == []


def test_every_command_has_examples_and_exit_codes() -> None:
    for name, p in COMMANDS[1:]:
        assert p.epilog and "examples:\n  " in p.epilog and name in p.epilog, name
        assert "exit codes:\n  0  ok\n  1  internal error\n  2  usage" in p.epilog, name
    help_text = run_toolfetch("fetch", "--help").stdout
    assert "examples:\n  toolfetch fetch" in help_text
    assert "  6  unreachable or offline" in help_text
    assert set(helptext.HELP) >= {n.removeprefix("toolfetch ") for n, _ in COMMANDS[1:]}


@pytest.mark.parametrize("argv", [
    ["fetch", "--all"], ["fetch", "--all-p"], ["which", "--plat", "linux/amd64", "t"],
    ["cache", "gc", "--max", "1G"], ["lock", "--che"]])
def test_abbreviations_are_refused(argv: list[str]) -> None:
    r = tf_main(*argv)
    assert r.returncode == 2 and "unrecognized arguments" in r.stderr, r.stderr


@pytest.mark.parametrize("command", [["fetch"], ["lock"], ["bootstrap"], ["copy", "a", "b"]])
@pytest.mark.parametrize("value", ["0", "-1", "x", "1.5"])
def test_jobs_must_be_at_least_one(command: list[str], value: str) -> None:
    r = tf_main(*command, "--jobs", value)
    assert r.returncode == 2
    assert f"--jobs: expected a whole number of at least 1, not '{value}'" in r.stderr


def test_jobs_zero_is_refused_on_the_hit_path_too(example: object) -> None:
    assert tf_main("fetch", "--lockfile", str(example)).returncode == 0
    assert tf_main("fetch", "--lockfile", str(example)).returncode == 0  # now a hit
    r = run_toolfetch("fetch", "--jobs", "0", "--lockfile", str(example))
    assert r.returncode == 2 and "--jobs" in r.stderr


@pytest.mark.parametrize("command", ["fetch", "export"])
def test_platform_and_all_platforms_exclude_each_other_everywhere(command: str) -> None:
    extra = ["out"] if command == "export" else []
    r = tf_main(command, "--platform", "linux/amd64", "--all-platforms", *extra)
    assert r.returncode == 2 and "not allowed with argument" in r.stderr


def test_a_mistyped_option_prints_its_own_commands_usage() -> None:
    r = tf_main("fetch", "--platfrom", "linux/amd64")
    assert r.returncode == 2
    assert r.stderr.startswith("usage: toolfetch fetch ") and "--platfrom" in r.stderr
    r = tf_main("cache", "gc", "--max-sise", "1G")
    assert r.stderr.startswith("usage: toolfetch cache gc ") and "--max-sise" in r.stderr
