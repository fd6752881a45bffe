"""The argument parser: global options, then every command group registers its commands.

One dispatch style: each command group module (:mod:`tool_commands`, :mod:`cache_commands`,
:mod:`registry_commands`) adds its subparsers through a :data:`toolfetch.cli.common.Command`
and gives each one ``run=`` (``set_defaults``), the function that carries it out. Built only
when the hit path did not serve.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from toolfetch import __version__
from toolfetch.cli.common import add_global_options


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        sys.stderr.write(f"error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    from toolfetch.cli import cache_commands, registry_commands, tool_commands

    parser = _Parser(prog="toolfetch", description="Hermetic, OCI-native tool fetcher.")
    parser.add_argument("--version", action="version", version=f"toolfetch {__version__}")
    add_global_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_global_options(p, suppress=True)
        return p

    for group in (tool_commands, cache_commands, registry_commands):
        group.register(command)
    return parser
