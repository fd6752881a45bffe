"""``toolfetch cache path|info|gc|verify``."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from toolfetch.cache import default_root

Command = Callable[[str, str], argparse.ArgumentParser]


def register(command: Command) -> None:
    from toolfetch.cli import add_global_options

    p = command("cache", "cache management: path, info, gc, verify")
    sub = p.add_subparsers(dest="cache_command", metavar="ACTION")
    sub.required = True
    sp = sub.add_parser("path", help="print the cache root")
    add_global_options(sp, suppress=True)
    sp.set_defaults(run=cmd_path)


def cmd_path(args: argparse.Namespace) -> int:
    print(default_root(getattr(args, "cache_dir", None)))
    return 0
