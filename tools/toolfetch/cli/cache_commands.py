"""``toolfetch cache path | info | gc | verify``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from toolfetch.cache.inventory import digests_under
from toolfetch.cache.store import Cache
from toolfetch.cli.common import (
    Command,
    add_global_options,
    cache_of,
    json_arg,
    lockfile_arg,
    lockfile_of,
    offline,
    quiet,
)
from toolfetch.cli.helptext import epilog
from toolfetch.core.digest import Digest
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


def names_by_digest(cache: Cache) -> dict[str, list[str]]:
    """``sha256:…`` of trees and their blobs -> ``tool platform`` names, from the lockfile
    indexes in the cache (every lockfile this cache served, as it is now on disk)."""
    from toolfetch.core import lockindex

    names: dict[str, set[str]] = {}
    index_dir = cache.root / "lockfiles"
    paths = sorted(index_dir.iterdir()) if index_dir.is_dir() else []
    for path in paths:
        if path.name.startswith(lockindex.VERDICT_PREFIX):
            continue
        index = lockindex.read_any(str(cache.root), str(path))
        for (tool, key), (hexpart, _, _) in (index.entries.items() if index else ()):
            names.setdefault(f"sha256:{hexpart}", set()).add(f"{tool} {key}")
    for tree_key, record in digests_under(cache.trees, ".json"):
        tree_names = names.get(str(tree_key))
        if not tree_names:
            continue
        try:
            layers = json.loads(record.read_bytes()).get("layers", [])
        except (OSError, ValueError):
            continue
        for layer in layers:
            if isinstance(layer, str):
                names.setdefault(layer, set()).update(tree_names)
    return {digest: sorted(found) for digest, found in names.items()}


def cmd_path(args: argparse.Namespace) -> int:
    print(cache_of(args).root)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from toolfetch.cache.inventory import cache_info

    cache = cache_of(args)
    info = cache_info(cache)
    named = {d: n for d, n in names_by_digest(cache).items()
             if cache.has_tree(Digest(d.removeprefix("sha256:")))}
    if args.json:
        print(json.dumps({**info, "tools": [{"tree": d, "tools": n}
                                            for d, n in sorted(named.items())]}, indent=2))
        return 0
    human = {k: format_size(int(str(info[k])))
             for k in ("size", "allocated", "blob_size", "tree_size")}
    print(f"cache:      {info['path']}")
    print(f"size:       {human['size']} ({human['allocated']} allocated)")
    print(f"blobs:      {info['blobs']} ({human['blob_size']})")
    print(f"trees:      {info['trees']} ({human['tree_size']} besides the blobs they link)")
    print(f"oldest use: {info['oldest_use'] or '-'}")
    print(f"newest use: {info['newest_use'] or '-'}")
    for digest, tool_names in sorted(named.items(), key=lambda item: item[1]):
        print(f"tree {digest[:19]}…  {', '.join(tool_names)}")
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
    cache = cache_of(args)
    names = names_by_digest(cache)  # before gc takes the indexes of vanished lockfiles
    report = collect(cache, max_size=max_size, unused_for=unused_for,
                     keep=_kept_digests(args.keep), dry_run=args.dry_run)
    if args.json:
        print(json.dumps({
            "dry_run": args.dry_run,
            "removed": [{"kind": r.entry.kind, "digest": str(r.entry.digest),
                         "size": r.entry.size, "freed": r.freed,
                         "tools": names.get(str(r.entry.digest), [])} for r in report.removed],
            "freed": report.freed,
            "in_use": [str(e.digest) for e in report.kept_in_use],
            "temp_reclaimed": report.reclaimed_temp, "locks_reclaimed": report.reclaimed_locks,
            "size_before": report.size_before, "size_after": report.size_after,
        }, indent=2))
    elif not quiet(args):
        verb = "would remove" if args.dry_run else "removed"
        for r in report.removed:
            named = ", ".join(names.get(str(r.entry.digest), [])) or "no known tool"
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
