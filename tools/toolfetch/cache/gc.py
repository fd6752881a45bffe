"""Cache garbage collection: dead temp files and locks, then LRU eviction under policies.

Temp files (counted as such) include tree directories without a record (a kill between rename
and record) placed more than the grace period ago; the bytes they free are subtracted from the
size measured first, in a dry run too, so ``--dry-run`` reports what a real run removes.
Lockfile indexes whose lockfile is gone or changed, and schema verdicts unused for 90 days,
are reclaimed with the temp files; an evicted entry's lock file goes with it.

An entry is never evicted when a kept lockfile needs it (any platform), when another process
holds its entry lock, or when it was used within the grace period (``TOOLFETCH_GC_GRACE``, a
duration, default 60 s), so a running fetch or a tool just located by ``which`` is safe.
Trees go record-first, so a half-deleted tree never looks complete; a fetch that loses a blob
to gc re-downloads it. A cache of an older layout whose trees an upgrade drops
(:meth:`Cache.ensure`) has every tree counted as removed, whatever the policies: the real run
upgrades it, and a dry run, which changes nothing, says so too.

Sizes are what is on disk, each inode counted once (:func:`disk_usage`): a raw tree's file is
a hardlink of its blob, so evicting the blob frees nothing while the tree holds the inode, and
evicting the tree then frees it. Every removal is charged the bytes it really freed, so the
report, ``cache info`` and ``du`` agree.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from toolfetch.cache.inventory import Entry, Inode, disk_usage, scan
from toolfetch.cache.layout import digests_under
from toolfetch.cache.store import Cache, try_lock
from toolfetch.core import tempnames
from toolfetch.core.digest import Digest
from toolfetch.core.fs import remove_tree
from toolfetch.core.sizes import parse_duration

GRACE_ENV = "TOOLFETCH_GC_GRACE"
VERDICT_UNUSED_FOR = 90 * 86400  # a schema verdict (lockindex) not used for 90 days goes


def grace_seconds() -> float:
    """``TOOLFETCH_GC_GRACE`` (a duration: ``60``, ``90s``, ``5m``), default 60 seconds."""
    text = os.environ.get(GRACE_ENV, "").strip()
    return parse_duration(text, GRACE_ENV) if text else 60.0


@dataclass(frozen=True)
class Removal:
    """An entry gc removed (would remove, in a dry run) and the bytes that really freed (0
    while another entry holds its inodes). ``tools``: the ``tool platform`` names of the
    lockfiles that used it, as :meth:`toolfetch.Client.clear_cache` found them before
    collecting (empty from :func:`collect` itself, and for an entry no lockfile names)."""

    entry: Entry
    freed: int
    tools: tuple[str, ...] = ()


@dataclass(frozen=True)
class GcReport:
    """What one gc did (would do, in a dry run): the entries ``removed``, those
    ``kept_in_use`` (held by a running fetch, or used within the grace period), how many
    temp files and lock files were reclaimed, and the cache's on-disk size before and
    after, in bytes; ``freed`` is what the removals freed."""

    removed: tuple[Removal, ...] = ()
    kept_in_use: tuple[Entry, ...] = ()
    reclaimed_temp: int = 0
    reclaimed_locks: int = 0
    size_before: int = 0
    size_after: int = 0

    @property
    def freed(self) -> int:
        return sum(r.freed for r in self.removed)


@dataclass
class _Tally:
    """A :class:`GcReport` while gc is running; :meth:`report` freezes it."""

    removed: list[Removal] = field(default_factory=list)
    kept_in_use: list[Entry] = field(default_factory=list)
    reclaimed_temp: int = 0
    reclaimed_locks: int = 0
    size_before: int = 0

    def report(self, size_after: int) -> GcReport:
        return GcReport(tuple(self.removed), tuple(self.kept_in_use), self.reclaimed_temp,
                        self.reclaimed_locks, self.size_before, size_after)


class _Reclaim:
    """Removes what gc reclaims besides entries, noting the names of each inode it takes: the
    bytes of those whose every name under the cache root goes are freed."""

    def __init__(self, dry_run: bool) -> None:
        self.dry_run = dry_run
        self.seen: dict[Inode, tuple[int, int]] = {}  # inode -> (bytes, names taken)

    def take(self, path: str) -> None:
        tree = os.path.isdir(path) and not os.path.islink(path)
        for d, ds, fs in [("", [], [path]), *(os.walk(path) if tree else ())]:
            for name in [*ds, *fs]:
                with contextlib.suppress(OSError):
                    st = os.lstat(os.path.join(d, name))
                    if not stat.S_ISDIR(st.st_mode):
                        key = (st.st_dev, st.st_ino)
                        self.seen[key] = (st.st_size, self.seen.get(key, (0, 0))[1] + 1)
        if not self.dry_run and tree:
            remove_tree(Path(path))
        elif not self.dry_run:
            Path(path).unlink(missing_ok=True)


def reclaim_temp(cache: Cache, report: _Tally, dry_run: bool, links: dict[Inode, int],
                 grace: float) -> int:
    """Temp files of dead processes, record-less trees, lock files no live process holds and
    stale lockfile indexes; returns the bytes that frees (would free, in a dry run)."""
    reclaim = _Reclaim(dry_run)
    if cache.tmp.is_dir():
        for e in os.scandir(cache.tmp):
            if _abandoned(e, grace):
                report.reclaimed_temp += 1
                reclaim.take(e.path)
    if cache.locks.is_dir():
        for e in os.scandir(cache.locks):
            release = try_lock(e.path, create=not dry_run)
            if release is not None:  # held while its file goes (released at exit, if it raises)
                report.reclaimed_locks += 1
                reclaim.take(e.path)
                release()
    _reclaim_trees(cache, report, reclaim, grace)
    _reclaim_indexes(cache, report, reclaim, grace)
    # an inode made since disk_usage ran is not in links: it was not measured, so not counted
    return sum(n for i, (n, k) in reclaim.seen.items() if k >= links.get(i, k + 1))


def _abandoned(e: os.DirEntry[str], grace: float) -> bool:
    """A temp file (or directory) whose writer is gone (:func:`tempnames.abandoned`)."""
    try:
        age = time.time() - e.stat(follow_symlinks=False).st_mtime
    except FileNotFoundError:
        return False  # its writer finished, or another gc took it
    return tempnames.abandoned(e.name, age, grace, tempnames.FOREIGN_GRACE)


def _reclaim_trees(cache: Cache, report: _Tally, reclaim: _Reclaim, grace: float) -> None:
    """Record-less tree directories placed over ``grace`` ago (store_tree sets the mtime as it
    renames one in) whose lock nobody holds; the lock file goes too, uncounted."""
    now = time.time()
    for digest, path in digests_under(cache.trees, dirs=True):
        try:
            old = not cache.has_tree(digest) and now - path.lstat().st_mtime >= grace
        except OSError:  # another gc took it
            continue
        lock = cache.lock_path("tree", digest)
        release = try_lock(lock, create=not reclaim.dry_run) if old else None
        if release is None:
            continue
        if not cache.has_tree(digest) and path.is_dir():  # checked again, under the lock
            report.reclaimed_temp += 1
            reclaim.take(str(path))
            if not reclaim.dry_run:
                lock.unlink(missing_ok=True)
        release()


def _reclaim_indexes(cache: Cache, report: _Tally, reclaim: _Reclaim, grace: float
                      ) -> None:
    """Lockfile indexes (:mod:`toolfetch.core.lockindex`) that describe no lockfile any more
    (it is gone or changed), half-written ones of gone writers, and schema verdicts unused
    for VERDICT_UNUSED_FOR (an empty file each; their lockfile content is long gone)."""
    from toolfetch.core import lockindex

    directory = cache.root / lockindex.INDEX_DIR
    if not directory.is_dir():
        return
    now = time.time()
    for e in os.scandir(directory):
        if e.name.startswith("."):  # a temp file of lockindex.write
            stale = _abandoned(e, grace)
        elif e.name.startswith(lockindex.VERDICT_PREFIX):  # touched whenever it is used
            try:
                stale = now - e.stat().st_mtime > VERDICT_UNUSED_FOR
            except FileNotFoundError:  # another gc took it
                continue
        else:
            stale = lockindex.read_any(str(cache.root), e.path) is None
        if stale:
            report.reclaimed_temp += 1
            reclaim.take(e.path)


def collect(cache: Cache, *, max_size: int | None, unused_for: float | None,
            keep: Iterable[Digest], dry_run: bool = False) -> GcReport:
    """Reclaim temp files and locks, then evict least-recently-used entries by the policies.

    A blob whose inode a tree still links (a raw layer) is not evicted on its own: that would
    free nothing and only cost a download later. It goes right after the last tree linking
    it, so the pair is evicted together and its bytes are charged once.
    """
    report = _Tally()
    grace = grace_seconds()  # a malformed value is an error, with or without a cache
    if not cache.root.exists():
        return report.report(0)  # nothing to collect, and nothing is created for it
    cache.check_layout()
    upgrade = cache.upgrade_pending()
    if not (dry_run or upgrade):
        cache.ensure()
    links: dict[Inode, int] = {}  # measured first, less what reclaim_temp frees, in both modes
    measured = disk_usage(cache.root, links).size
    report.size_before = measured - reclaim_temp(cache, report, dry_run, links, grace)
    entries = scan(cache)
    holders: dict[Inode, int] = {}
    for entry in entries:
        for inode in entry.inodes:
            holders[inode] = holders.get(inode, 0) + 1
    state = _Eviction(cache, report, holders, set(keep), grace, dry_run)
    state.total = report.size_before
    if upgrade:  # the upgrade drops every tree, whatever the policies; counted as removals
        for entry in [e for e in entries if e.kind == "tree"]:
            state.charge(entry)
        entries = [e for e in entries if e.kind != "tree"]
        if not dry_run:
            cache.ensure()
    waiting: dict[Inode, Entry] = {}  # blobs held by a tree, evicted with the last one
    now = time.time()
    for entry in sorted(entries, key=lambda e: (e.last_use, e.kind == "tree")):
        too_old = unused_for is not None and now - entry.last_use > unused_for
        too_big = max_size is not None and state.total > max_size
        if not (too_old or too_big):
            continue
        if entry.kind == "blob" and any(holders[i] > 1 for i in entry.inodes):
            waiting.update((i, entry) for i in entry.inodes)
            continue
        if state.evict(entry, now) and entry.kind == "tree":
            for inode in entry.inodes:
                blob = waiting.get(inode)
                if blob is not None and holders[inode] == 1:
                    del waiting[inode]
                    state.evict(blob, now)
    return report.report(state.total if dry_run else disk_usage(cache.root).size)


class _Eviction:
    """Evicts single entries, charging each the bytes whose last holder it was."""

    def __init__(self, cache: Cache, report: _Tally, holders: dict[Inode, int],
                 keep: set[Digest], grace: float, dry_run: bool) -> None:
        self.cache, self.report, self.holders = cache, report, holders
        self.keep, self.grace, self.dry_run = keep, grace, dry_run
        self.total = 0

    def evict(self, entry: Entry, now: float) -> bool:
        if entry.digest in self.keep:
            return False
        if now - entry.last_use < self.grace:
            self.report.kept_in_use.append(entry)
            return False
        lock = self.cache.lock_path(entry.kind, entry.digest)
        release = try_lock(lock, create=not self.dry_run)
        if release is None:  # a fetch is working on it right now
            self.report.kept_in_use.append(entry)
            return False
        try:
            if not self.dry_run:
                _drop(self.cache, entry)
                lock.unlink(missing_ok=True)  # held: as reclaim_temp removes an unheld one
        finally:
            release()
        self.charge(entry)
        return True

    def charge(self, entry: Entry) -> None:
        """Count ``entry`` as removed, with the bytes whose last holder it was."""
        freed = 0
        for inode, size in entry.inodes.items():
            self.holders[inode] -= 1
            if self.holders[inode] == 0:
                freed += size
        self.report.removed.append(Removal(entry, freed))
        self.total -= freed


def _drop(cache: Cache, entry: Entry) -> None:
    if entry.kind == "tree":
        cache.drop_tree(entry.digest)
        path = cache.tree_path(entry.digest)
    else:
        cache.drop_blob(entry.digest)
        path = cache.blob_path(entry.digest)
    for shard in (path.parent, path.parent.parent):  # empty shard directories go too
        try:
            shard.rmdir()
        except OSError:
            break
