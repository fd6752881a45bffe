"""Cache garbage collection: dead temp files and locks, then LRU eviction under policies.

Last use is the mtime of a tree's record (touched on every hit) and, for a blob, the later
of its own mtime and the records of trees built from it. An entry is never evicted when a
kept lockfile needs it (any platform), when another process holds its entry lock, or when it
was used within the grace period (``TOOLFETCH_GC_GRACE`` seconds, default 60), so a running
fetch or a tool just located by ``which`` is safe. Trees go record-first, so a half-deleted
tree never looks complete; a fetch that loses a blob to gc re-downloads it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from toolfetch.cache import Cache, remove_tree
from toolfetch.digest import Digest
from toolfetch.errors import UsageError

_SIZE = re.compile(r"(?i)^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_HEX = re.compile(r"[0-9a-f]{64}")
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_size(text: str) -> int:
    """``500M``, ``10G``, ``1.5GiB``, ``123`` (bytes; K/M/G/T are powers of 1024)."""
    m = _SIZE.match(text)
    if not m:
        raise UsageError(f"malformed size {text!r}: expected e.g. 500M, 10G, 1.5GiB")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def parse_duration(text: str) -> float:
    """``90s``, ``30m``, ``12h``, ``30d``, ``2w`` (a bare number is seconds)."""
    m = _DURATION.match(text)
    if not m:
        raise UsageError(f"malformed duration {text!r}: expected e.g. 12h, 30d, 2w")
    return float(m.group(1)) * _SECONDS[m.group(2)]


@dataclass
class Entry:
    kind: str  # "blob" | "tree"
    digest: Digest
    size: int
    last_use: float


@dataclass
class GcReport:
    removed: list[Entry] = field(default_factory=list)
    kept_in_use: list[Entry] = field(default_factory=list)
    reclaimed_temp: int = 0
    reclaimed_locks: int = 0
    size_before: int = 0
    size_after: int = 0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _tree_size(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(dirpath, name))
                if st.st_nlink == 1:  # a raw file hardlinked to its blob is counted there
                    total += st.st_size
    return total


def _digests_under(base: Path, suffix: str = "") -> Iterator[tuple[Digest, Path]]:
    """Files named ``<hex><suffix>`` under ``base/sha256/ab/cd/`` (temp names are skipped)."""
    root = base / "sha256"
    if not root.is_dir():
        return
    for a in os.scandir(root):
        for b in os.scandir(a.path) if a.is_dir() else ():
            for e in os.scandir(b.path) if b.is_dir() else ():
                if e.is_dir(follow_symlinks=False) or not e.name.endswith(suffix):
                    continue
                hexpart = e.name[: len(e.name) - len(suffix)]
                if _HEX.fullmatch(hexpart):
                    yield Digest(hexpart), Path(e.path)


def scan(cache: Cache) -> list[Entry]:
    """Every complete blob and tree with its size and last use."""
    entries: list[Entry] = []
    blob_use: dict[Digest, float] = {}
    for digest, record in _digests_under(cache.trees, ".json"):
        try:
            st = record.stat()
            layers = json.loads(record.read_bytes()).get("layers", [])
        except (OSError, ValueError):
            continue
        entries.append(Entry("tree", digest, _tree_size(cache.tree_path(digest)), st.st_mtime))
        for layer in layers:
            with contextlib.suppress(Exception):
                d = Digest.parse(layer)
                blob_use[d] = max(blob_use.get(d, 0.0), st.st_mtime)
    for digest, path in _digests_under(cache.blobs):
        with contextlib.suppress(OSError):
            st = path.stat()
            entries.append(Entry("blob", digest, st.st_size,
                                 max(st.st_mtime, blob_use.get(digest, 0.0))))
    return entries


def _try_lock(cache: Cache, kind: str, digest: Digest) -> object | None:
    import filelock

    lock = filelock.FileLock(str(cache.locks / f"{kind}-{digest.hex}.lock"))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        return None
    return lock


def reclaim_temp(cache: Cache, report: GcReport, dry_run: bool) -> None:
    """Temp files of dead processes, and lock files no live process holds."""
    import filelock

    if cache.tmp.is_dir():
        for e in os.scandir(cache.tmp):
            pid_text = e.name.split("-", 1)[0]
            if pid_text.isdigit() and pid_alive(int(pid_text)):
                continue
            report.reclaimed_temp += 1
            if not dry_run:
                if e.is_dir(follow_symlinks=False):
                    remove_tree(Path(e.path))
                else:
                    Path(e.path).unlink(missing_ok=True)
    if cache.locks.is_dir():
        for e in os.scandir(cache.locks):
            lock = filelock.FileLock(e.path)
            try:
                lock.acquire(timeout=0)
            except filelock.Timeout:
                continue
            try:
                report.reclaimed_locks += 1
                if not dry_run:
                    Path(e.path).unlink(missing_ok=True)
            finally:
                lock.release()


def collect(cache: Cache, *, max_size: int | None, unused_for: float | None,
            keep: Iterable[Digest], dry_run: bool = False) -> GcReport:
    report = GcReport()
    cache.ensure()
    reclaim_temp(cache, report, dry_run)
    entries = scan(cache)
    report.size_before = sum(e.size for e in entries)
    keep_set = set(keep)
    grace = float(os.environ.get("TOOLFETCH_GC_GRACE", "60"))
    now = time.time()
    total = report.size_before
    for entry in sorted(entries, key=lambda e: (e.last_use, e.kind == "tree")):
        too_old = unused_for is not None and now - entry.last_use > unused_for
        too_big = max_size is not None and total > max_size
        if not (too_old or too_big) or entry.digest in keep_set:
            continue
        if now - entry.last_use < grace:
            report.kept_in_use.append(entry)
            continue
        lock = _try_lock(cache, entry.kind, entry.digest)
        if lock is None:  # a fetch is working on it right now
            report.kept_in_use.append(entry)
            continue
        try:
            if not dry_run:
                if entry.kind == "tree":
                    cache.drop_tree(entry.digest)
                else:
                    cache.drop_blob(entry.digest)
        finally:
            lock.release()  # type: ignore[attr-defined]
        report.removed.append(entry)
        total -= entry.size
    report.size_after = total
    return report
