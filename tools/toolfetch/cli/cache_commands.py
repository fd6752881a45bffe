"""``toolfetch cache path | info | gc | verify``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from toolfetch.cli.common import (
    Command,
    add_global_options,
    client_of,
    json_arg,
    lockfile_arg,
    quiet,
)
from toolfetch.cli.helptext import epilog
from toolfetch.core.errors import IntegrityError
from toolfetch.core.sizes import format_size, parse_duration, parse_size


def register(command: Command) -> None:
    p = command("cache", "cache management: path, info, gc, verify")
    sub = p.add_subparsers(dest="cache_command", metavar="ACTION")
    sub.required = True

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_text, description=help_text,
                            epilog=epilog(f"cache {name}"))
        add_global_options(sp, suppress=True)
        sp.set_defaults(usage_parser=sp)
        return sp

    action("path", "print the cache root").set_defaults(run=cmd_path)
    sp = action("info", "location, size, entries, oldest and newest use")
    json_arg(sp, "the figures")
    sp.set_defaults(run=cmd_info)
    sp = action("gc", "reclaim dead temp files and locks; evict least-recently-used entries")
    sp.add_argument("--max-size", metavar="SIZE", help="evict LRU entries until under SIZE "
                    "(a size: 500M, 10G, 1.5GiB)")
    sp.add_argument("--unused-for", metavar="DURATION", help="evict entries unused for "
                    "DURATION (12h, 30d, 2w)")
    sp.add_argument("--keep", type=Path, nargs="+", default=[], metavar="LOCKFILE",
                    help="never evict what these lockfiles need, on any platform")
    sp.add_argument("--dry-run", action="store_true", help="report, remove nothing")
    json_arg(sp, "the report")
    sp.set_defaults(run=cmd_gc)
    sp = action("verify", "re-hash every blob and tree; exit 3 naming bad entries")
    sp.add_argument("--repair", action="store_true", help="drop bad entries, then re-fetch "
                    "what the lockfile needs for this host")
    lockfile_arg(sp)
    json_arg(sp, "the bad entries")
    sp.set_defaults(run=cmd_verify)


def cmd_path(args: argparse.Namespace) -> int:
    print(client_of(args, bars=False).cache_dir)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    info = client_of(args, bars=False).cache_info()
    if args.json:
        print(json.dumps(info.to_json(), indent=2))
        return 0
    print(f"cache:      {info.path}")
    print(f"size:       {format_size(info.size)} ({format_size(info.allocated)} allocated)")
    print(f"blobs:      {info.blobs} ({format_size(info.blob_size)})")
    print(f"trees:      {info.trees} ({format_size(info.tree_size)} besides the blobs they "
          "link)")
    print(f"oldest use: {info.oldest_use or '-'}")
    print(f"newest use: {info.newest_use or '-'}")
    for tree in sorted(info.tools, key=lambda t: t.tools):
        print(f"tree {tree.tree[:19]}…  {', '.join(tree.tools)}")
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    max_size = parse_size(args.max_size, "--max-size") if args.max_size else None
    unused_for = parse_duration(args.unused_for, "--unused-for") if args.unused_for else None
    report = client_of(args).clear_cache(max_size, unused_for, args.keep,
                                         dry_run=args.dry_run)
    if args.json:
        print(json.dumps({
            "dry_run": args.dry_run,
            "removed": [{"kind": r.entry.kind, "digest": str(r.entry.digest),
                         "size": r.entry.size, "freed": r.freed,
                         "tools": list(r.tools)}
                        for r in report.removed],
            "freed": report.freed,
            "in_use": [str(e.digest) for e in report.kept_in_use],
            "temp_reclaimed": report.reclaimed_temp, "locks_reclaimed": report.reclaimed_locks,
            "size_before": report.size_before, "size_after": report.size_after,
        }, indent=2))
    elif not quiet(args):
        verb = "would remove" if args.dry_run else "removed"
        for r in report.removed:
            named = ", ".join(r.tools) or "no known tool"
            print(f"gc: {verb} {r.entry.kind} {str(r.entry.digest)[:19]}… ({named}, "
                  f"{format_size(r.freed)})")
        print(f"gc: {verb} {len(report.removed)} entries (freeing {format_size(report.freed)}), "
              f"{report.reclaimed_temp} temp files, {report.reclaimed_locks} lock files; "
              f"cache {'would be' if args.dry_run else 'now'} {format_size(report.size_after)}")
        if report.kept_in_use:
            print(f"gc: kept {len(report.kept_in_use)} entries in use by running fetches or "
                  "used within the grace period")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    client = client_of(args, bars=False)
    check = client.verify_cache()
    if args.json:
        print(json.dumps([{"kind": p.kind, "digest": p.digest, "problem": p.why}
                          for p in check.problems], indent=2))
    for problem in check.problems:
        sys.stderr.write(f"bad {problem.kind} {problem.digest}: {problem.why}\n")
    if check.intact:
        if not args.json and not quiet(args):
            print(f"verify: every blob, tree and lockfile index in {check.cache} is intact")
        return 0
    if not args.repair:
        raise IntegrityError(f"{len(check.problems)} bad cache entries in {check.cache} (see "
                             "above); run `toolfetch cache verify --repair`")
    with client:
        repaired = client.repair_cache(check)
    for problem in repaired.kept:
        sys.stderr.write(f"kept {problem.kind} {problem.digest}: in use by another process "
                         "meanwhile\n")
    if repaired.refetched is not None and not quiet(args):
        print(f"verify: re-fetched what {repaired.refetched} needs for this host")
    if not quiet(args):
        print(f"verify: dropped {repaired.dropped} bad entries")
    return 0
