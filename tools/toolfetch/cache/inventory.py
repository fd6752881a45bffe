"""What the cache holds on disk: its complete entries with their sizes and last use, and disk
usage counted as ``du`` does, each inode once.

Last use is the mtime of a tree's record (touched on every hit) or of its ``.used`` marker
(set by launchers), whichever is later, and, for a blob, the later of its own mtime and the
last use of trees built from it (a tree whose record is malformed is listed all the same,
charged to no blob). A raw tree's file is a hardlink of its blob: each entry lists
its inodes, so gc and ``cache info`` charge shared bytes once.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from toolfetch.cache.layout import digests_under
from toolfetch.cache.records import TreeRecord
from toolfetch.cache.store import Cache
from toolfetch.core.digest import Digest
from toolfetch.core.frozen import FrozenDict

Inode = tuple[int, int]  # (st_dev, st_ino)


@dataclass(frozen=True)
class Entry:
    """A complete blob or tree of the cache; ``inodes`` (inode -> bytes) is read-only and
    left out of equality and the hash: the same entry scanned twice is equal."""

    kind: str  # "blob" | "tree"
    digest: Digest
    size: int  # apparent bytes of its files (inodes it shares included)
    last_use: float
    inodes: Mapping[Inode, int] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "inodes", FrozenDict(self.inodes))


@dataclass(frozen=True)
class Usage:
    """What a directory holds: apparent bytes of files and symlinks, and allocated bytes of
    everything (directories too); each inode once. ``du -sb`` minus directories, ``du -sB1``."""

    size: int
    allocated: int


def disk_usage(root: Path, links: dict[Inode, int] | None = None) -> Usage:
    seen: set[Inode] = set()
    size = allocated = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames, ""]:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(dirpath, name) if name else dirpath)
                key = (st.st_dev, st.st_ino)
                if links is not None and not stat.S_ISDIR(st.st_mode):
                    links[key] = links.get(key, 0) + 1  # names of each file's inode
                if key in seen:
                    continue
                seen.add(key)
                allocated += st.st_blocks * 512
                if not stat.S_ISDIR(st.st_mode):
                    size += st.st_size
    return Usage(size, allocated)


def _tree_inodes(path: Path, record: os.stat_result) -> dict[Inode, int]:
    """The files (and symlinks) of a tree and its record, by inode."""
    inodes = {(record.st_dev, record.st_ino): record.st_size}
    for dirpath, dirnames, files in os.walk(path):
        for name in [*files, *(d for d in dirnames if os.path.islink(os.path.join(dirpath, d)))]:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(dirpath, name))
                inodes[(st.st_dev, st.st_ino)] = st.st_size
    return inodes


def scan(cache: Cache) -> list[Entry]:
    """Every complete blob and tree with its size and last use."""
    entries: list[Entry] = []
    blob_use: dict[Digest, float] = {}
    for digest, record in digests_under(cache.trees, ".json"):
        try:
            st = record.stat()
            data = record.read_bytes()
        except OSError:  # gone meanwhile
            continue
        try:
            layers: tuple[str, ...] = TreeRecord.loads(data).layers
        except ValueError:  # malformed: still a tree gc may evict, charged to no blob
            layers = ()
        inodes = _tree_inodes(cache.tree_path(digest), st)
        last_use = st.st_mtime
        with contextlib.suppress(OSError):  # launchers record their runs here
            used = os.lstat(cache.used_path(digest))
            inodes[(used.st_dev, used.st_ino)] = used.st_size
            last_use = max(last_use, used.st_mtime)
        entries.append(Entry("tree", digest, sum(inodes.values()), last_use, inodes))
        for layer in layers:
            with contextlib.suppress(Exception):
                d = Digest.parse(layer)
                blob_use[d] = max(blob_use.get(d, 0.0), last_use)
    for digest, path in digests_under(cache.blobs):
        with contextlib.suppress(OSError):
            st = path.lstat()
            entries.append(Entry("blob", digest, st.st_size,
                                 max(st.st_mtime, blob_use.get(digest, 0.0)),
                                 {(st.st_dev, st.st_ino): st.st_size}))
    return entries


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).isoformat(timespec="seconds")


def cache_info(cache: Cache) -> dict[str, object]:
    """What ``cache info --json`` prints: sizes are on-disk bytes, each inode once."""
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
