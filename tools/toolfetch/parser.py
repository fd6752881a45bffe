"""The argument parser of the CLI (argparse). Built only when the hit path did not serve."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, NoReturn

from toolfetch import __version__


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        sys.stderr.write(f"error: {message}\n")
        raise SystemExit(2)


def add_global_options(p: argparse.ArgumentParser, suppress: bool) -> None:
    d: dict[str, Any] = {"default": argparse.SUPPRESS} if suppress else {}
    p.add_argument("--cache-dir", metavar="DIR", help="cache root (default: $TOOLFETCH_CACHE_DIR, "
                   "$XDG_CACHE_HOME/toolfetch or ~/.cache/toolfetch)", **d)
    p.add_argument("-v", "--verbose", action="count", help="more output", **(
        d if suppress else {"default": 0}))
    p.add_argument("-q", "--quiet", action="store_true", help="only errors", **d)
    p.add_argument("--no-progress", action="store_true", help="no progress bars", **d)


def lockfile_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lockfile", type=Path, metavar="F",
                   help="default: lockfiles/tools.lock.json at the repository root")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="toolfetch", description="Hermetic, OCI-native tool fetcher.")
    parser.add_argument("--version", action="version", version=f"toolfetch {__version__}")
    add_global_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_global_options(p, suppress=True)
        return p

    p = command("lock", "resolve tools.yaml references into the lockfile")
    p.add_argument("--config", type=Path, metavar="F",
                   help="default: tools.yaml beside the lockfile")
    lockfile_arg(p)
    p.add_argument("--check", action="store_true", help="write nothing; exit 7 if out of date")
    p.add_argument("--upgrade", action="store_true", help="move tools with a `version` "
                   "constraint to the highest matching tag (prints old -> new)")
    p.add_argument("--jobs", type=int, default=8, metavar="N")
    p.add_argument("tools", nargs="*", metavar="TOOL")

    p = command("fetch", "make locked tools present in the cache")
    lockfile_arg(p)
    p.add_argument("tools", nargs="*", metavar="TOOL")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--platform", metavar="OS/ARCH", help="default: this host")
    g.add_argument("--all-platforms", action="store_true")
    p.add_argument("--offline", action="store_true", help="never touch the network (exit 6 if "
                   "something is missing)")
    p.add_argument("--jobs", type=int, default=4, metavar="N", help="parallel downloads")
    p.add_argument("--output", type=Path, metavar="DIR", help="also materialise the (single) "
                   "tool's tree into DIR by hardlinks or copies (for build-system shims)")
    p.add_argument("--json", action="store_true", help="print what was fetched as JSON")

    p = command("which", "print the absolute path of a tool's executable")
    lockfile_arg(p)
    p.add_argument("tool", metavar="TOOL")
    p.add_argument("--platform", metavar="OS/ARCH")
    p.add_argument("--offline", action="store_true")
    p.add_argument("--json", action="store_true")

    p = command("run", "run a tool (its exit code passes through)")
    lockfile_arg(p)
    p.add_argument("--offline", action="store_true")
    p.add_argument("tool", metavar="TOOL")
    p.add_argument("args", nargs=argparse.REMAINDER, metavar="-- ARGS")

    p = command("bootstrap", "fetch every tool for this host and write launchers")
    lockfile_arg(p)
    p.add_argument("--bin-dir", type=Path, default=Path("bin"), metavar="DIR")
    p.add_argument("--offline", action="store_true")
    p.add_argument("--jobs", type=int, default=4, metavar="N")

    from toolfetch import cache_admin, commands, login

    cache_admin.register(command)
    commands.register(command)
    login.register(command)
    return parser
