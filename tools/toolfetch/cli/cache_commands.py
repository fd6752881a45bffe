"""``toolfetch cache path | info | gc | verify``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from toolfetch.cli.common import (
    Command,
    add_global_options,
    cache_of,
    lockfile_arg,
    lockfile_of,
    offline,
    quiet,
)
from toolfetch.core.digest import Digest
from toolfetch.core.errors import IntegrityError
from toolfetch.core.sizes import format_size, parse_duration, parse_size


def register(command: Command) -> None:
    p = command("cache", "cache management: path, info, gc, verify")
    sub = p.add_subparsers(dest="cache_command", metavar="ACTION")
    sub.required = True

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_text, description=help_text)
        add_global_options(sp, suppress=True)
        return sp

    action("path", "print the cache root").set_defaults(run=cmd_path)
    sp = action("info", "location, size, entries, oldest and newest use")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(run=cmd_info)
    sp = action("gc", "reclaim dead temp files and locks; evict least-recently-used entries")
    sp.add_argument("--max-size", metavar="SIZE", help="evict LRU entries until under SIZE "
                    "(a size: 500M, 10G, 1.5GiB)")
    sp.add_argument("--unused-for", metavar="DURATION", help="evict entries unused for "
                    "DURATION (12h, 30d, 2w)")
    sp.add_argument("--keep", type=Path, nargs="+", default=[], metavar="LOCKFILE",
                    help="never evict what these lockfiles need, on any platform")
    sp.add_argument("--dry-run", action="store_true", help="report, remove nothing")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(run=cmd_gc)
    sp = action("verify", "re-hash every blob and tree; exit 3 naming bad entries")
    sp.add_argument("--repair", action="store_true", help="drop bad entries, then re-fetch "
                    "what the lockfile needs for this host")
    lockfile_arg(sp)
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(run=cmd_verify)


def cmd_path(args: argparse.Namespace) -> int:
    print(cache_of(args).root)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from toolfetch.cache.inventory import cache_info

    info = cache_info(cache_of(args))
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    human = {k: format_size(int(str(info[k])))
             for k in ("size", "allocated", "blob_size", "tree_size")}
    print(f"cache:      {info['path']}")
    print(f"size:       {human['size']} ({human['allocated']} allocated)")
    print(f"blobs:      {info['blobs']} ({human['blob_size']})")
    print(f"trees:      {info['trees']} ({human['tree_size']} besides the blobs they link)")
    print(f"oldest use: {info['oldest_use'] or '-'}")
    print(f"newest use: {info['newest_use'] or '-'}")
    return 0


def _kept_digests(paths: list[Path]) -> set[Digest]:
    from toolfetch.lock.lockfile import Lockfile

    keep: set[Digest] = set()
    for path in paths:
        lockfile = Lockfile.load(path.absolute())
        for tool in lockfile.tools.values():
            for entry in tool.platforms.values():
                keep.add(entry.tree)
                keep.update(layer.digest for layer in entry.layers)
    return keep


def cmd_gc(args: argparse.Namespace) -> int:
    from toolfetch.cache.gc import collect

    max_size = parse_size(args.max_size, "--max-size") if args.max_size else None
    unused_for = parse_duration(args.unused_for, "--unused-for") if args.unused_for else None
    report = collect(cache_of(args), max_size=max_size, unused_for=unused_for,
                     keep=_kept_digests(args.keep), dry_run=args.dry_run)
    if args.json:
        print(json.dumps({
            "dry_run": args.dry_run,
            "removed": [{"kind": r.entry.kind, "digest": str(r.entry.digest),
                         "size": r.entry.size, "freed": r.freed} for r in report.removed],
            "freed": report.freed,
            "in_use": [str(e.digest) for e in report.kept_in_use],
            "temp_reclaimed": report.reclaimed_temp, "locks_reclaimed": report.reclaimed_locks,
            "size_before": report.size_before, "size_after": report.size_after,
        }, indent=2))
    elif not quiet(args):
        verb = "would remove" if args.dry_run else "removed"
        print(f"gc: {verb} {len(report.removed)} entries (freeing {format_size(report.freed)}), "
              f"{report.reclaimed_temp} temp files, {report.reclaimed_locks} lock files; "
              f"cache {'would be' if args.dry_run else 'now'} {format_size(report.size_after)}")
        if report.kept_in_use:
            print(f"gc: kept {len(report.kept_in_use)} entries in use by running fetches or "
                  "used within the grace period")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from toolfetch.cache.verify import drop, verify
    from toolfetch.lock.indexcheck import verify_indexes

    cache = cache_of(args)
    bad = verify(cache) + verify_indexes(cache.root)
    if args.json:
        print(json.dumps([{"kind": k, "digest": str(d), "problem": why} for k, d, why in bad],
                         indent=2))
    for kind, digest, why in bad:
        sys.stderr.write(f"bad {kind} {digest}: {why}\n")
    if not bad:
        if not args.json and not quiet(args):
            print(f"verify: every blob, tree and lockfile index in {cache.root} is intact")
        return 0
    if not args.repair:
        raise IntegrityError(f"{len(bad)} bad cache entries in {cache.root} (see above); "
                             "run `toolfetch cache verify --repair`")
    kept = drop(cache, bad)
    for kind, digest, _ in kept:
        sys.stderr.write(f"kept {kind} {digest}: in use by another process meanwhile\n")
    path = lockfile_of(args)
    if path.exists():
        from toolfetch.core.platform import host_platform
        from toolfetch.lock.lockfile import Lockfile
        from toolfetch.ops.fetch import Fetcher
        from toolfetch.ops.plan import plan

        lockfile = Lockfile.load(path)
        wants = plan(lockfile, None, host_platform(), False)
        fetcher = Fetcher(cache, lockfile, offline=offline(args))
        fetcher.fetch(wants)
        fetcher.release()
        if not quiet(args):
            print(f"verify: re-fetched what {path} needs for this host")
    if not quiet(args):
        print(f"verify: dropped {len(bad) - len(kept)} bad entries")
    return 0
