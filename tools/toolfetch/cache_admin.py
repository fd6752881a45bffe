"""``toolfetch cache path|info|gc|verify``."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from toolfetch.cache import Cache, default_root, remove_tree
from toolfetch.digest import Digest
from toolfetch.errors import IntegrityError, ToolfetchError

Command = Callable[[str, str], argparse.ArgumentParser]


def register(command: Command) -> None:
    from toolfetch.parser import add_global_options

    p = command("cache", "cache management: path, info, gc, verify")
    sub = p.add_subparsers(dest="cache_command", metavar="ACTION")
    sub.required = True

    def action(name: str, help_text: str, run: Callable[[argparse.Namespace], int]
               ) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_text, description=help_text)
        add_global_options(sp, suppress=True)
        sp.set_defaults(run=run)
        return sp

    action("path", "print the cache root", cmd_path)
    sp = action("info", "location, size, entries, oldest and newest use", cmd_info)
    sp.add_argument("--json", action="store_true")
    sp = action("gc", "reclaim dead temp files and locks; evict least-recently-used entries",
                cmd_gc)
    sp.add_argument("--max-size", metavar="SIZE", help="evict LRU entries until under SIZE "
                    "(e.g. 500M, 10G)")
    sp.add_argument("--unused-for", metavar="DURATION", help="evict entries unused for "
                    "DURATION (e.g. 12h, 30d)")
    sp.add_argument("--keep", type=Path, nargs="+", default=[], metavar="LOCKFILE",
                    help="never evict what these lockfiles need, on any platform")
    sp.add_argument("--dry-run", action="store_true", help="report, remove nothing")
    sp.add_argument("--json", action="store_true")
    sp = action("verify", "re-hash every blob and tree; exit 3 naming bad entries", cmd_verify)
    sp.add_argument("--repair", action="store_true", help="drop bad entries, then re-fetch "
                    "what the lockfile needs for this host")
    sp.add_argument("--lockfile", type=Path, metavar="F")
    sp.add_argument("--json", action="store_true")


def _cache(args: argparse.Namespace) -> Cache:
    return Cache(default_root(getattr(args, "cache_dir", None)))


def cmd_path(args: argparse.Namespace) -> int:
    print(_cache(args).root)
    return 0


def _iso(ts: float | None) -> str | None:
    import datetime

    if ts is None:
        return None
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).isoformat(timespec="seconds")


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def cache_info(cache: Cache) -> dict[str, object]:
    """What ``cache info --json`` prints: sizes are on-disk bytes, each inode once."""
    from toolfetch.gc import disk_usage, scan

    entries = scan(cache) if cache.root.exists() else []
    usage = disk_usage(cache.root)
    blobs = [e for e in entries if e.kind == "blob"]
    trees = [e for e in entries if e.kind == "tree"]
    blob_inodes = {i for e in blobs for i in e.inodes}
    tree_only = {i: n for e in trees for i, n in e.inodes.items() if i not in blob_inodes}
    uses = [e.last_use for e in trees] or [e.last_use for e in blobs]
    blob_size = sum(e.size for e in blobs)
    tree_size = sum(tree_only.values())
    return {
        "path": str(cache.root), "size": usage.size, "allocated": usage.allocated,
        "blobs": len(blobs), "blob_size": blob_size,
        "trees": len(trees), "tree_size": tree_size,
        "other_size": usage.size - blob_size - tree_size,
        "oldest_use": _iso(min(uses)) if uses else None,
        "newest_use": _iso(max(uses)) if uses else None,
    }


def cmd_info(args: argparse.Namespace) -> int:
    info = cache_info(_cache(args))
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    human = {k: _human(float(str(info[k]))) for k in ("size", "allocated", "blob_size",
                                                        "tree_size")}
    print(f"cache:      {info['path']}")
    print(f"size:       {human['size']} ({human['allocated']} allocated)")
    print(f"blobs:      {info['blobs']} ({human['blob_size']})")
    print(f"trees:      {info['trees']} ({human['tree_size']} besides the blobs they link)")
    print(f"oldest use: {info['oldest_use'] or '-'}")
    print(f"newest use: {info['newest_use'] or '-'}")
    return 0


def _kept_digests(paths: list[Path]) -> set[Digest]:
    from toolfetch.lockfile import Lockfile

    keep: set[Digest] = set()
    for path in paths:
        lockfile = Lockfile.load(path.absolute())
        for tool in lockfile.tools.values():
            for entry in tool.platforms.values():
                keep.add(entry.tree)
                keep.update(layer.digest for layer in entry.layers)
    return keep


def cmd_gc(args: argparse.Namespace) -> int:
    from toolfetch.gc import collect, parse_duration, parse_size

    max_size = parse_size(args.max_size) if args.max_size else None
    unused_for = parse_duration(args.unused_for) if args.unused_for else None
    report = collect(_cache(args), max_size=max_size, unused_for=unused_for,
                     keep=_kept_digests(args.keep), dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
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
    elif not getattr(args, "quiet", False):
        print(f"gc: {verb} {len(report.removed)} entries (freeing {_human(report.freed)}), "
              f"{report.reclaimed_temp} temp files, {report.reclaimed_locks} lock files; "
              f"cache {'would be' if args.dry_run else 'now'} {_human(report.size_after)}")
        if report.kept_in_use:
            print(f"gc: kept {len(report.kept_in_use)} entries in use by running fetches or "
                  "used within the grace period")
    return 0


def _check_tree(cache: Cache, key: Digest, record_path: Path, bad_blobs: set[Digest]
                ) -> str | None:
    """Why the tree under ``key`` is bad, or None.

    The record's recipe must hash to the key, the tree on disk to the recorded digest, and,
    where the recipe's blobs are in the cache (and intact), unpacking them again must give
    that digest: a tree is a pure function of its key, so anything else was planted or
    damaged.
    """
    from toolfetch.treekey import recipe_digest
    from toolfetch.trees import tree_digest

    try:
        record = json.loads(record_path.read_bytes())
        recorded, steps = record["tree"], record["recipe"]
        blobs = [Digest.parse(str(step[0])) for step in steps["layers"]]
        named = recipe_digest(steps)
    except (OSError, ValueError, KeyError, TypeError, ToolfetchError):
        return "unreadable record"
    if named != str(key):
        return f"its record's recipe hashes to {named}, not to the key"
    tree = cache.tree_path(key)
    if not tree.is_dir():
        return "record without a tree directory"
    actual, _ = tree_digest(tree)
    if actual != recorded:
        return f"tree hashes to {actual}, recorded {recorded}"
    if bad_blobs.intersection(blobs) or not all(cache.has_blob(b) for b in blobs):
        return None  # nothing sound to rebuild from (its files were hashed above)
    rebuilt = _rebuild_digest(cache, steps, f"tree {key.short}")
    if rebuilt != recorded:
        return f"tree differs from what its layers unpack to: {rebuilt}"
    return None


def _rebuild_digest(cache: Cache, steps: dict[str, object], what: str) -> str:
    from toolfetch.trees import tree_digest
    from toolfetch.unpack import unpack_recipe

    cache.ensure()
    with cache.temp_dir() as scratch:
        try:
            unpack_recipe(steps, lambda d: cache.blob_path(Digest.parse(d)), scratch, what)
        except ToolfetchError as e:
            return f"(cannot unpack: {e})"
        return tree_digest(scratch)[0]


def verify(cache: Cache) -> list[tuple[str, Digest, str]]:
    """Every bad entry as (kind, digest, why)."""
    from toolfetch.gc import _digests_under

    bad: list[tuple[str, Digest, str]] = []
    for digest, path in _digests_under(cache.blobs):
        try:
            actual = Digest.of_file(path).hex
        except OSError as e:
            bad.append(("blob", digest, f"unreadable: {e.strerror}"))
            continue
        if actual != digest.hex:
            bad.append(("blob", digest, f"content hashes to sha256:{actual}"))
    bad_blobs = {d for _, d, _ in bad}
    for key, record_path in _digests_under(cache.trees, ".json"):
        problem = _check_tree(cache, key, record_path, bad_blobs)
        if problem is not None:
            bad.append(("tree", key, problem))
    trees_root = cache.trees / "sha256"
    if trees_root.is_dir():
        for a in trees_root.iterdir():
            for b in a.iterdir() if a.is_dir() else ():
                for entry in b.iterdir() if b.is_dir() else ():
                    if entry.is_dir() and not entry.with_name(entry.name + ".json").exists():
                        with contextlib.suppress(ToolfetchError):
                            bad.append(("tree", Digest.parse(f"sha256:{entry.name}"),
                                        "incomplete (no record; an interrupted unpack)"))
    return bad


def cmd_verify(args: argparse.Namespace) -> int:
    cache = _cache(args)
    bad = verify(cache) if cache.root.exists() else []
    if args.json:
        print(json.dumps([{"kind": k, "digest": str(d), "problem": why} for k, d, why in bad],
                         indent=2))
    for kind, digest, why in bad:
        sys.stderr.write(f"bad {kind} {digest}: {why}\n")
    if not bad:
        if not args.json and not getattr(args, "quiet", False):
            print(f"verify: every blob and tree in {cache.root} is intact")
        return 0
    if not args.repair:
        raise IntegrityError(f"{len(bad)} bad cache entries in {cache.root} (see above); "
                             "run `toolfetch cache verify --repair`")
    for kind, digest, _ in bad:
        if kind == "blob":
            cache.drop_blob(digest)
        else:
            cache.drop_tree(digest)
            tree = cache.tree_path(digest)
            if tree.exists():
                remove_tree(tree)
    _refetch(args, cache)
    if not getattr(args, "quiet", False):
        print(f"verify: dropped {len(bad)} bad entries")
    return 0


def _refetch(args: argparse.Namespace, cache: Cache) -> None:
    from toolfetch.cli import default_lockfile

    path = (args.lockfile or default_lockfile()).absolute()
    if not path.exists():
        return
    from toolfetch.fetch import Fetcher, plan
    from toolfetch.lockfile import Lockfile
    from toolfetch.platform import host_platform

    lockfile = Lockfile.load(path)
    offline = os.environ.get("TOOLFETCH_OFFLINE") == "1"
    wants = plan(lockfile, None, host_platform(), False)
    Fetcher(cache, lockfile, offline=offline).fetch(wants)
    if not getattr(args, "quiet", False):
        print(f"verify: re-fetched what {path} needs for this host")

