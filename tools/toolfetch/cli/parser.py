"""The argument parser: global options, then every command group registers its commands.

One dispatch style: each command group module (:mod:`tool_commands`, :mod:`cache_commands`,
:mod:`registry_commands`) adds its subparsers through a :data:`toolfetch.cli.common.Command`
and gives each one ``run=`` (``set_defaults``), the function that carries it out. Built only
when the hit path did not serve, and then only for the command argv names: the other thirty
subparsers would cost ~13 ms of a cold fetch (argparse builds every action eagerly). Help,
``--version``, no command or an unknown one get the whole parser.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn, cast

from toolfetch import __version__
from toolfetch.cli.common import add_global_options
from toolfetch.cli.helptext import epilog


class _Parser(argparse.ArgumentParser):
    """No abbreviations (``--all`` is not ``--all-platforms``), epilogs kept as written, and
    a missing command prints the command list, exit 2 as any missing argument."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        if message.startswith("the following arguments are required: COMMAND"):
            self.print_help(sys.stderr)
            sys.stderr.write("\nerror: give a COMMAND (`toolfetch COMMAND --help` says more)\n")
            raise SystemExit(2)
        self.print_usage(sys.stderr)
        sys.stderr.write(f"error: {message}\n")
        raise SystemExit(2)


class _Unused:
    """Stands in for the subparser of a command argv does not name: takes every call."""

    def add_argument(self, *args: Any, **kwargs: Any) -> None:
        pass

    def set_defaults(self, **kwargs: Any) -> None:
        pass

    def add_mutually_exclusive_group(self, **kwargs: Any) -> _Unused:
        return self

    def add_subparsers(self, **kwargs: Any) -> _Unused:
        return self

    def add_parser(self, *args: Any, **kwargs: Any) -> _Unused:
        return self

    required = True


def command_word(argv: list[str]) -> str | None:
    """The command argv names, past the global options; None for help or none at all."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("-h", "--help", "--version"):
            return None
        elif arg == "--cache-dir":
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


# Which group module registers which commands: only the named command's module is imported
# (tests/cli/test_parser.py keeps this table equal to what the modules register).
GROUPS = {
    "tool_commands": ("lock", "verify", "import-dotslash", "import-multitool", "fetch", "which",
                      "run", "bootstrap"),
    "everyday_commands": ("list", "help", "completion"),
    "cache_commands": ("cache",),
    "registry_commands": ("push", "publish", "pull", "copy", "tag", "tags", "inspect",
                          "exists", "attach", "referrers", "export", "import", "login",
                          "logout"),
}


def _groups(wanted: str | None) -> list[Any]:
    """The group modules to register: the one owning ``wanted``, else all of them."""
    known = any(wanted in commands for commands in GROUPS.values())
    groups: list[Any] = []
    if not known or wanted in GROUPS["tool_commands"]:
        from toolfetch.cli import tool_commands

        groups.append(tool_commands)
    if not known or wanted in GROUPS["everyday_commands"]:
        from toolfetch.cli import everyday_commands

        groups.append(everyday_commands)
    if not known or wanted in GROUPS["cache_commands"]:
        from toolfetch.cli import cache_commands

        groups.append(cache_commands)
    if not known or wanted in GROUPS["registry_commands"]:
        from toolfetch.cli import registry_commands

        groups.append(registry_commands)
    return groups


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; given ``argv``, with only the subparser of the command it names."""
    wanted = command_word(argv) if argv is not None else None
    parser = _Parser(prog="toolfetch", description="Hermetic, OCI-native tool fetcher.",
                     epilog="`toolfetch COMMAND --help` shows a command's options, examples "
                     "and exit codes.")
    parser.add_argument("--version", action="version", version=f"toolfetch {__version__}")
    add_global_options(parser, suppress=False)
    parser.set_defaults(full_parser=build_parser)  # `completion` walks every command
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    built: list[str] = []

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        if wanted is not None and name != wanted:
            return cast(argparse.ArgumentParser, _Unused())
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=epilog(name))
        add_global_options(p, suppress=True)
        p.set_defaults(usage_parser=p)  # a mistyped option then prints this command's usage
        built.append(name)
        return p

    for group in _groups(wanted):
        group.register(command)
    if wanted is not None and not built:  # not a command: argparse's message lists them all
        return build_parser()
    return parser
