"""``list`` (what is locked, and whether this machine has it) and ``completion SHELL``."""

from __future__ import annotations

import argparse
import dataclasses
import json

from toolfetch.cli.common import Command, client_of, lockfile_arg
from toolfetch.cli.completion import SHELLS


def register(command: Command) -> None:
    p = command("list", "list the locked tools: version, reference or URL, platforms, and "
                "whether this machine has them cached")
    lockfile_arg(p)
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print a JSON array, one object per "
                     "tool (default: a table)")
    out.add_argument("--names", action="store_true", help="print only the tool names, one a "
                     "line (for shell completion)")
    p.set_defaults(run=cmd_list)

    p = command("help", "show a command's help (as COMMAND --help), or the command list")
    p.add_argument("words", nargs="*", metavar="COMMAND",
                   help="a command, e.g. fetch or cache gc (default: list the commands)")
    p.set_defaults(run=cmd_help)

    p = command("completion", "print a shell completion script")
    p.add_argument("shell", choices=SHELLS, metavar="SHELL",
                   help=f"one of {', '.join(SHELLS)}")
    p.set_defaults(run=cmd_completion)


def cmd_list(args: argparse.Namespace) -> int:
    with client_of(args, bars=False) as client:
        rows = client.list_tools()
    if args.names:
        for row in rows:
            print(row.tool)
        return 0
    if args.json:
        print(json.dumps([dataclasses.asdict(row) for row in rows], indent=2))
        return 0
    if not rows:
        print(f"list: no tools in {client.lockfile}")
        return 0
    for row in rows:
        source = row.source or f"{len(row.sources)} sources"
        print(f"{row.tool}  {row.version or '-'}  {source}")
        print(f"    platforms: {', '.join(row.platforms)}; "
              f"cached here: {', '.join(row.cached) or 'none'}")
    return 0


def cmd_completion(args: argparse.Namespace) -> int:
    from toolfetch.cli.completion import script

    print(script(args.shell, args.full_parser(None)), end="")
    return 0


def cmd_help(args: argparse.Namespace) -> int:
    """``help fetch`` is ``fetch --help``; plain ``help`` prints the command list (exit 0)."""
    if not args.words:
        args.full_parser(None).print_help()
        return 0
    args.full_parser(args.words).parse_args([*args.words, "--help"])  # exits 0, or 2
    return 0
