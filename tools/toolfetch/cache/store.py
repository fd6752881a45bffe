"""The content-addressed cache (docs/design.md, "The cache").

```
CACHEDIR.TAG  layout.json
blobs/sha256/ab/cd/<hex>          verified blobs, read-only, named by their own digest
trees/sha256/ab/cd/<hex>/         unpacked trees keyed by their recipe digest, read-only
trees/sha256/ab/cd/<hex>.json     tree record: recipe, tree digest, file list; mtime = last use
trees/sha256/ab/cd/<hex>.used     empty; launchers set its mtime on every run (also last use)
lockfiles/<sha256 of a path>      lockfile indexes (toolfetch.core.lockindex), for the hit path
lockfiles/valid-<sha256>          empty: lockfile content that passed the schema
locks/  tmp/                      per-entry locks; same-filesystem temp space
```
A tree's key is the digest of its unpack recipe (:mod:`toolfetch.core.treekey`), so what a key
names never depends on which lockfile or tool asked first. An entry is complete only once it
sits under its final name: blobs are renamed into place after their digest was checked, and a
tree counts only once its record exists (written after the directory was renamed into place;
if that write fails the directory goes again, and gc reclaims one a kill left once it is older
than the grace period).
Temp names carry the writer's host and pid (:mod:`toolfetch.core.tempnames`) so gc can
reclaim those of dead processes. This module is on
the hit path: ``filelock`` and the unpacker are imported lazily. Nothing is fsync'd (as pip
and uv): after a power loss, ``toolfetch cache verify --repair`` finds and fixes what the
crash damaged.

Layout 2 keys trees by recipe; layout 1 keyed them by manifest digest. A layout-1 cache is
migrated the first time toolfetch writes to it: its trees are dropped (they are rebuilt from
the blobs, which stay), then ``layout.json`` says 2.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from toolfetch.cache.layout import sharded
from toolfetch.cache.records import TreeRecord
from toolfetch.core.digest import Digest
from toolfetch.core.errors import LocalIOError, UsageError
from toolfetch.core.fs import atomic_write, link_unless_present, remove_tree
from toolfetch.core.tempnames import temp_name

LAYOUT_VERSION = 2
# Blobs smaller than this are placed without the entry lock: filelock takes ~0.3-0.8 ms of CPU
# per lock here, a tenth of a small tool's whole fetch, while two processes downloading the
# same small blob at once (rare) only cost each other under a MiB of traffic.
SMALL_BLOB = 1 << 20
_MIGRATABLE = (1,)  # layouts whose trees are dropped on upgrade (their blobs stay valid)
CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by toolfetch.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)


class Cache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs"
        self.trees = root / "trees"
        self.locks = root / "locks"
        self.tmp = root / "tmp"

    # -- paths (hit path: no I/O beyond stat) ----------------------------------------------
    def blob_path(self, digest: Digest) -> Path:
        return sharded(self.blobs, digest)

    def tree_path(self, key: Digest) -> Path:
        return sharded(self.trees, key)

    def record_path(self, key: Digest) -> Path:
        p = self.tree_path(key)
        return p.with_name(p.name + ".json")

    def used_path(self, key: Digest) -> Path:
        """An empty file whose mtime launchers set on every run (the LRU clock, with the
        record's): a shell can update it with a redirection, without starting ``touch``."""
        p = self.tree_path(key)
        return p.with_name(p.name + ".used")

    def has_blob(self, digest: Digest) -> bool:
        return self.blob_path(digest).is_file()

    def has_tree(self, key: Digest) -> bool:
        return self.record_path(key).is_file()

    def touch_tree(self, key: Digest) -> None:
        """Record a use for LRU gc; best effort (a read-only cache is still usable)."""
        with contextlib.suppress(OSError):
            os.utime(self.record_path(key))

    # -- setup ------------------------------------------------------------------------------
    def ensure(self) -> None:
        try:
            for d in (self.blobs, self.trees, self.locks, self.tmp):
                d.mkdir(parents=True, exist_ok=True)
            tag = self.root / "CACHEDIR.TAG"
            if not tag.exists():
                self._write_small(tag, CACHEDIR_TAG.encode())
            self.check_layout()
            if self.upgrade_pending():
                self._drop_all_trees()
            if self.layout_version() != LAYOUT_VERSION:
                layout = json.dumps({"version": LAYOUT_VERSION}).encode()
                self._write_small(self.root / "layout.json", layout)
        except OSError as e:
            raise LocalIOError.of(e, f"cannot prepare cache {self.root}") from e

    def check_layout(self) -> None:
        """Refuse a layout this toolfetch cannot use or upgrade; changes nothing, so read-only
        commands (``cache gc --dry-run``, ``cache verify``) call it instead of :meth:`ensure`."""
        version = self.layout_version()
        if version is not None and version != LAYOUT_VERSION and version not in _MIGRATABLE:
            raise UsageError(
                f"{self.root}: cache layout version {version} is not {LAYOUT_VERSION} "
                "(written by another toolfetch); use another --cache-dir or remove this one"
            )

    def upgrade_pending(self) -> bool:
        """Whether the cache has an older layout whose trees :meth:`ensure` drops (its blobs
        stay valid; the trees are rebuilt from them on the next fetch)."""
        return self.layout_version() in _MIGRATABLE

    def layout_version(self) -> object:
        """The version ``layout.json`` records, None when there is none."""
        try:
            data = json.loads((self.root / "layout.json").read_bytes())
        except FileNotFoundError:
            return None
        except ValueError as e:
            raise UsageError(f"{self.root / 'layout.json'}: not JSON: {e}") from e
        return data.get("version") if isinstance(data, dict) else data

    def _drop_all_trees(self) -> None:
        """Move every tree and record out of sight at once, then delete them."""
        if not self.trees.exists():
            return
        old = self._temp_name(".tree")
        os.rename(self.trees, old)
        self.trees.mkdir()
        remove_tree(old)

    def _write_small(self, dest: Path, data: bytes) -> None:
        atomic_write(dest, data, temp=self._temp_name(".part"))

    # -- temp space -------------------------------------------------------------------------
    def _temp_name(self, suffix: str) -> Path:
        return self.tmp / temp_name("entry", suffix)

    @contextlib.contextmanager
    def temp_dir(self) -> Iterator[Path]:
        path = self._temp_name(".tree")
        path.mkdir()
        try:
            yield path
        finally:
            if path.exists():
                remove_tree(path)

    def lock_path(self, kind: str, digest: Digest) -> Path:
        """The lock file of an entry (``kind`` blob or tree): fetch and gc take the same one."""
        return self.locks / f"{kind}-{digest.hex}.lock"

    def hold(self, kind: str, digest: Digest) -> Callable[[], None]:
        """Protect an entry from ``cache gc`` and ``cache verify --repair`` while it is used:
        a shared lock on its entry lock file (they take the exclusive one without waiting,
        and keep what they cannot get). Waits while one of them holds it, i.e. is removing
        it: the caller checks the entry is still there once this returns. Returns the
        release. Best effort: on a read-only cache, or without ``fcntl``, nothing is held.
        """
        try:
            import fcntl
        except ImportError:  # Windows: a fetch rebuilds what is taken from under it
            return _nothing
        path = self.lock_path(kind, digest)
        for _ in range(8):  # gc unlinks the lock file of what it evicted: take the new one
            try:
                f = open(path, "ab")  # noqa: SIM115 (held past this call; closed on release)
            except OSError:
                return _nothing
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_SH)
                held, now = os.fstat(f.fileno()), os.stat(path)
                if (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino):
                    return f.close  # closing releases it, as does dropping the last reference
            except OSError:
                pass
            f.close()
        return _nothing

    @contextlib.contextmanager
    def entry_lock(self, kind: str, digest: Digest) -> Iterator[None]:
        """Dedupe work between processes; correctness never depends on it."""
        import filelock

        lock = filelock.FileLock(str(self.lock_path(kind, digest)))
        try:
            lock.acquire()
        except OSError as e:  # read-only or full cache: say so, not "internal error"
            raise LocalIOError.of(e, f"cannot lock {kind} {digest} in {self.root}") from e
        try:
            yield
        finally:
            lock.release()

    # -- placement --------------------------------------------------------------------------
    def store_blob(self, digest: Digest, write: Callable[[BinaryIO], None],
                   size: int | None = None) -> Path:
        """Make the blob present: lock, re-check, write to tmp (``write`` verifies what it
        writes, raising on a mismatch), place (:meth:`_place`).

        The lock makes processes fetching one blob at once share the download; a tree takes
        a lock of its own (:meth:`store_tree`). One lock per tool instead would serialise
        each tool's download with its unpacking (docs/performance.md). A blob known to be
        smaller than :data:`SMALL_BLOB` takes no lock: racing writers each download it, and
        the first to finish places it; the others keep it (same digest, same bytes).
        """
        dest = self.blob_path(digest)
        if dest.is_file():
            return dest

        def written(f: BinaryIO) -> Digest:
            write(f)
            return digest

        if size is not None and size < SMALL_BLOB:
            self._place(written, f"blob {digest}")
            return dest
        with self.entry_lock("blob", digest):
            if not dest.is_file():
                self._place(written, f"blob {digest}")
        return dest

    def store_new_blob(self, download: Callable[[BinaryIO], Digest]) -> Digest:
        """A blob whose digest is known only once it is written (``lock`` pinning an HTTP
        asset): ``download(file)`` writes it and returns its sha256 (it may read back what
        it wrote), or raises (then nothing stays behind). Placed as :meth:`store_blob` does."""
        self.ensure()
        return self._place(download, "a blob")

    def _place(self, write: Callable[[BinaryIO], Digest], what: str) -> Digest:
        """The one way a blob enters ``blobs/``: ``write`` fills a temp file in ``tmp/`` and
        returns the digest it verified; the file is made read-only and hardlinked under that
        digest. A name that exists by then is kept, never replaced: another writer placed
        the same bytes first, and a tree built since may hardlink its inode (a raw layer),
        which must stay the one ``blobs/`` names (gc charges the bytes once, and frees them
        with the last name). The temp name goes in every case."""
        temp = self._temp_name(".part")
        try:
            with open(temp, "x+b") as f:
                digest = write(f)
            os.chmod(temp, 0o444)
            link_unless_present(temp, self.blob_path(digest))
        except OSError as e:
            raise LocalIOError.of(e, f"cannot store {what} in {self.root}") from e
        finally:
            with contextlib.suppress(OSError):
                temp.unlink(missing_ok=True)
        return digest

    def store_tree(self, key: Digest, build: Callable[[Path], TreeRecord]) -> Path:
        """Make the tree present: ``build(tmpdir)`` unpacks and returns its record."""
        dest = self.tree_path(key)
        if self.has_tree(key):
            return dest
        with self.entry_lock("tree", key):
            if self.has_tree(key):
                return dest
            try:
                if dest.exists():  # a crash between rename and record: not complete, redo
                    remove_tree(dest)
                with self.temp_dir() as content:  # renamed away when complete
                    record = build(content)
                    from toolfetch.cache.trees import make_read_only

                    make_read_only(content)
                    os.utime(content)  # placed now: gc's grace spares it until its record
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    os.rename(content, dest)
                    try:
                        self._write_small(self.record_path(key), record.dumps())
                    except BaseException:  # leave no record-less tree (gc reclaims a kill's)
                        with contextlib.suppress(OSError):
                            self.drop_tree(key)
                        raise
            except OSError as e:
                raise LocalIOError.of(e, f"cannot store tree {key} in {self.root}") from e
        return dest

    def read_record(self, key: Digest) -> TreeRecord:
        """The record of tree ``key``: OSError when there is none, ValueError when it is
        malformed."""
        return TreeRecord.loads(self.record_path(key).read_bytes())

    def drop_tree(self, key: Digest) -> None:
        """Remove a tree: record first, so it never looks complete while half-deleted, then
        the directory is renamed into ``tmp/`` (under this pid) and deleted there, so a kill
        meanwhile leaves a temp directory gc reclaims, not a half tree."""
        self.record_path(key).unlink(missing_ok=True)
        self.used_path(key).unlink(missing_ok=True)
        dest = self.tree_path(key)
        if dest.is_symlink() or not dest.exists():
            return
        doomed = self._temp_name(".tree")
        try:
            os.rename(dest, doomed)
        except OSError:  # no tmp/ (a cache not prepared for writing): in place
            doomed = dest
        remove_tree(doomed)

    def tree_damage(self, key: Digest, path: str) -> str | None:
        """Why the recorded tree ``key`` is damaged as far as its file ``path`` tells, else
        None (sound, or ``path`` was never in it: a wrong ``path``, not damage). Damage is
        what a cleanup job or a virus scanner does to a tree: its directory gone, or a file
        its record lists missing or without the mode recorded. Cheap while the file is there
        and executable: the record is read only otherwise."""
        tree = self.tree_path(key)
        if not tree.is_dir():
            return "its directory is missing"
        try:
            st: os.stat_result | None = os.lstat(tree / path)
        except OSError:
            st = None
        if st is not None and (not stat.S_ISREG(st.st_mode) or st.st_mode & 0o100):
            return None
        try:
            listed = self.read_record(key).file(path)
        except (OSError, ValueError):
            return "its record is unreadable"
        if listed is None:
            return None
        if st is None:
            return f"its file {path} is missing"
        if listed.type == "file" and listed.mode & 0o100:
            return f"its file {path} lost its executable mode"
        return None

    def drop_blob(self, digest: Digest) -> None:
        self.blob_path(digest).unlink(missing_ok=True)

    def drop_damaged_blob(self, digest: Digest, damaged: BinaryIO) -> None:
        """Drop blob ``digest`` if its name still holds the open file ``damaged`` (found not
        to hash to it): a sound blob another process placed meanwhile stays. ``damaged`` is
        still open, so its inode number cannot have been reused for that one."""
        held = os.fstat(damaged.fileno())
        with contextlib.suppress(FileNotFoundError):
            now = os.stat(self.blob_path(digest))
            if (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
                self.drop_blob(digest)


def _nothing() -> None:
    """The release of a hold that holds nothing."""


def try_lock(path: Path | str, create: bool = True) -> Callable[[], None] | None:
    """Take the lock file ``path`` exclusively if nobody holds it (an entry lock, a fetch's
    :meth:`Cache.hold`): its release, else None. ``create=False`` (a read-only command)
    creates no lock file: one that does not exist is held by nobody."""
    import filelock

    if not create and not os.path.exists(path):
        return _nothing
    lock = filelock.FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        return None
    except OSError as e:
        if create or e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        return _nothing  # a read-only cache: nobody can hold it (a hold needs to open it)
    return lock.release
