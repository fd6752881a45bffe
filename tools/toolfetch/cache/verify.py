"""``cache verify``: every blob hashes to its name, every tree is what its key says.

A blob is re-hashed. A tree's record must hold a recipe that hashes to the tree's key and a
file list that hashes to the recorded tree digest; the tree on disk must be a real directory
(not a symlink), hash to that digest, and be read-only as the unpacker leaves it (directories
0o555, files 0o444 or 0o555); and, where the recipe's blobs are in the cache (and intact),
unpacking them again (uncapped) must give that digest: a tree is a pure function of its key
(:mod:`toolfetch.core.treekey`), so anything else was planted or damaged. A rebuild that fails
here (no ``zstandard``, a full ``tmp/``, a recipe of other unpack rules) proves nothing: the
tree is reported not checkable (a warning), never bad; layers these rules refuse (exit 3 at
a fetch) never gave the tree, which is bad. A tree directory without a record is left by an
interrupted unpack or eviction.

Verify runs beside fetches and gc: it takes the entry locks they take, without waiting. A
tree is checked once, without a lock; one found bad is re-confirmed under its lock, cheaply:
one whose lock is held (a fetch is writing it, or using it) is "in progress", and one whose
record or directory is not the one checked any more (a fetch rebuilt it, gc took it) was not
what was checked; both are skipped with a note, never reported or removed, and so is a blob
gone since it was listed. ``--repair`` removes an entry only under its lock.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from toolfetch.cache.layout import digests_under
from toolfetch.cache.records import TreeRecord
from toolfetch.cache.store import Cache, try_lock
from toolfetch.core import lockindex
from toolfetch.core.digest import Digest
from toolfetch.core.errors import IntegrityError, ToolfetchError

log = logging.getLogger("toolfetch")

Problem = tuple[str, Digest, str]  # (kind, digest, why)


def _check_tree(cache: Cache, key: Digest, record_path: Path, bad_blobs: set[Digest]
                ) -> str | None:
    """Why the tree under ``key`` is bad, or None (sound, or not checkable any further).

    The checks, in order: the record's recipe hashes to the key and its file list to its
    tree digest; the tree is a real directory, hashes to that digest and is read-only; and,
    where the recipe's blobs are in the cache (and intact), unpacking them again gives that
    digest: a tree is a pure function of its key, so anything else was planted or damaged.
    """
    from toolfetch.cache.trees import entries_digest, not_read_only, tree_digest
    from toolfetch.core.treekey import recipe_digest

    try:
        record = TreeRecord.loads(record_path.read_bytes())
        recorded, steps = record.tree, record.recipe
        blobs = [Digest.parse(str(step[0])) for step in steps["layers"]]
        named = recipe_digest(steps)
        listed = entries_digest(record.files)
    except (OSError, ValueError, KeyError, TypeError, IndexError, RecursionError,
            ToolfetchError):  # (a recipe nested deep enough fails to hash: RecursionError)
        return "unreadable record"
    if named != str(key):
        return f"its record's recipe hashes to {named}, not to the key"
    if listed != recorded:
        return f"its record's file list hashes to {listed}, not to its tree digest {recorded}"
    tree = cache.tree_path(key)
    if tree.is_symlink():
        return "its tree directory is a symlink, not a directory of the cache's own"
    if not tree.is_dir():
        return "record without a tree directory"
    try:
        actual, _ = tree_digest(tree)
        loose = not_read_only(tree)
    except OSError as e:
        return f"unreadable tree: {e.strerror}: {e.filename}"
    if actual != recorded:
        return f"tree hashes to {actual}, recorded {recorded}"
    if loose is not None:
        return loose
    if bad_blobs.intersection(blobs) or not all(cache.has_blob(b) for b in blobs):
        return None  # nothing sound to rebuild from (its files were hashed above)
    rebuilt = _rebuild_digest(cache, steps, f"tree {key.short}")
    if rebuilt is None:
        return None
    if rebuilt != recorded:
        return f"tree differs from what its layers unpack to: {rebuilt}"
    return None


def _rebuild_digest(cache: Cache, steps: Mapping[str, Any], what: str) -> str | None:
    """The digest of the tree the recipe ``steps`` unpacks to here, or None when it cannot be
    unpacked here (which proves nothing about the tree: its files were hashed already).

    The unpack cap (``TOOLFETCH_MAX_UNPACK_BYTES``) does not apply: the blobs are intact and
    already gave this tree once; a cap lower here than where it was fetched proves nothing.
    """
    from toolfetch.cache.trees import tree_digest
    from toolfetch.cache.unpack import unpack_recipe

    try:
        with cache.temp_dir() as scratch:
            known: dict[str, tuple[int, str]] = {}  # the hashes taken while unpacking
            unpack_recipe(steps, lambda d: cache.blob_path(Digest.parse(d)), scratch, what,
                          known, max_bytes=sys.maxsize)
            return tree_digest(scratch, known)[0]
    except IntegrityError as e:  # the intact blobs never give a tree: this one was planted
        return f"(its layers are refused: {e})"
    except (OSError, ToolfetchError) as e:
        log.warning("%s: not checked against its layers: cannot unpack them here (%s); "
                    "its files match its record", what, e)
        return None


def verify(cache: Cache) -> list[Problem]:
    """Every bad entry as (kind, digest, why)."""
    if not cache.root.exists():
        return []

    bad: list[tuple[str, Digest, str]] = []
    for digest, path in digests_under(cache.blobs):
        try:
            actual = Digest.of_file(path).hex
        except FileNotFoundError:
            continue  # gc took it meanwhile
        except OSError as e:
            bad.append(("blob", digest, f"unreadable: {e.strerror}"))
            continue
        if actual != digest.hex:
            bad.append(("blob", digest, f"content hashes to sha256:{actual}"))
    bad_blobs = {d for _, d, _ in bad}
    cache.check_layout()  # not ensure(): verify changes nothing it does not report
    if cache.upgrade_pending():
        trees = sum(1 for _ in digests_under(cache.trees, ".json"))
        log.warning("%s: cache layout %s: its %d trees are not checked; the next fetch or gc "
                    "drops them and fetches rebuild them from their blobs", cache.root,
                    cache.layout_version(), trees)
        return bad
    with contextlib.suppress(OSError):  # the rebuilds unpack into tmp/ (else: not checked)
        cache.tmp.mkdir(exist_ok=True)
    for key, record_path in digests_under(cache.trees, ".json"):
        with _pinned(cache, key) as unchanged:
            problem = _check_tree(cache, key, record_path, bad_blobs)
            if problem is not None and _confirmed(cache, key, unchanged):
                bad.append(("tree", key, problem))
    for key, _ in digests_under(cache.trees, dirs=True):
        if not cache.has_tree(key):
            problem = _recordless(cache, key)
            if problem is not None:
                bad.append(("tree", key, problem))
    return bad


@contextlib.contextmanager
def _pinned(cache: Cache, key: Digest) -> Iterator[Callable[[], bool]]:
    """Hold the record and the tree directory ``key`` names now open (so a rebuild cannot
    reuse their inode numbers) and yield whether ``key`` still names them: a fetch rebuilding
    the tree, or gc or a fetch removing it, changes that (records are replaced by rename,
    trees renamed in and out); a hit, which only touches the record, does not. A record
    already gone when pinned (gc took it after the listing) never was what was checked."""
    paths = (cache.record_path(key), cache.tree_path(key))
    fds: list[int | None] = []
    try:
        for path in paths:
            try:  # O_PATH: a tree root that is a symlink is held as the symlink itself
                fds.append(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_PATH", 0)))
            except OSError:
                fds.append(None)

        def unchanged() -> bool:
            if fds[0] is None:  # no record to check when pinned: gc took it after the listing
                return False
            for path, fd in zip(paths, fds, strict=True):
                try:
                    st = os.lstat(path)
                    now: tuple[int, int] | None = (st.st_dev, st.st_ino)
                except OSError:
                    now = None
                if fd is not None:
                    st = os.fstat(fd)
                if now != (None if fd is None else (st.st_dev, st.st_ino)):
                    return False
            return True

        yield unchanged
    finally:
        for fd in fds:
            if fd is not None:
                os.close(fd)


def _confirmed(cache: Cache, key: Digest, unchanged: Callable[[], bool]) -> bool:
    """Whether a problem found in tree ``key`` without a lock stands, re-confirmed cheaply
    under its entry lock: nobody holds it (else a fetch is writing or using it: "in
    progress") and it is still the record and directory that were checked (else a fetch
    rebuilt it or something removed it meanwhile: not what was checked)."""
    release = try_lock(cache.lock_path("tree", key), create=False)
    if release is None:
        log.info("tree %s: in use or in progress in another process; not checked", key.short)
        return False
    try:
        if not unchanged():
            log.info("tree %s: rebuilt or removed while it was checked; not checked",
                     key.short)
            return False
        return True
    finally:
        release()


INCOMPLETE = "incomplete: no record (an unpack or an eviction was interrupted)"


def _recordless(cache: Cache, key: Digest) -> str | None:
    """Why a tree directory without a record is bad, or None when a fetch is writing it (its
    entry lock is held until the record is in), it got its record meanwhile, or it is gone."""
    release = try_lock(cache.lock_path("tree", key), create=False)
    if release is None:
        log.info("tree %s: being written by another process; not checked", key.short)
        return None
    try:  # recorded, or gone (gc evicted it) since the listing
        if cache.has_tree(key) or not os.path.lexists(cache.tree_path(key)):
            return None
        return INCOMPLETE
    finally:
        release()


def drop(cache: Cache, problems: list[Problem]) -> list[Problem]:
    """Remove the bad entries, each under its entry lock (a tree record first, so it never
    looks complete; a tree root that is a symlink is unlinked, never followed). Returns those
    left alone: in use by a fetch meanwhile, or (an incomplete tree) recorded meanwhile."""
    kept: list[Problem] = []
    for problem in problems:
        kind, digest, why = problem
        if kind == "index":  # a lockfile index: the full path writes it again
            (cache.root / lockindex.INDEX_DIR / digest.hex).unlink(missing_ok=True)
            continue
        release = try_lock(cache.lock_path(kind, digest))
        if release is None:
            kept.append(problem)
            continue
        try:
            if kind == "blob":
                cache.drop_blob(digest)
            elif why == INCOMPLETE and cache.has_tree(digest):
                kept.append(problem)
            else:
                cache.drop_tree(digest)
                tree = cache.tree_path(digest)
                if tree.is_symlink():
                    tree.unlink()
        finally:
            release()
    return kept
