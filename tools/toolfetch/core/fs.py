"""File-system helpers, one per job: atomic writes, capped reads of input files and
removing read-only trees.

:func:`atomic_writer` is the one way toolfetch writes a file others may read while it is being
written (lockfiles, launchers, credentials, layout blobs and indexes, cache entries): the bytes
go to a temp file on the same file system, which is renamed over the destination only once it
is complete, so readers see the old file or the new one, never half of one. ``fsync`` is for
files a user would lose work over (lockfiles, credentials); the cache skips it (see
:mod:`toolfetch.cache.store`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from toolfetch.core.errors import LocalIOError, UsageError


@contextlib.contextmanager
def atomic_writer(path: Path, mode: int = 0o644, *, fsync: bool = False,
                  temp: Path | None = None) -> Iterator[BinaryIO]:
    """A file that appears at ``path`` complete, with ``mode``, or not at all.

    ``temp`` names the temp file (it must not exist; the cache names its own so gc can tell
    whose it is); by default it is a hidden file beside ``path``. On any failure the temp file
    is removed and ``path`` is left as it was. (Content-addressed files, which must never be
    replaced, are placed by :func:`link_unless_present` instead.)
    """
    if temp is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        f: BinaryIO = os.fdopen(fd, "wb")
        temp = Path(name)
    else:
        f = temp.open("xb")
    try:
        with f:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.chmod(temp, mode)
        try:
            os.replace(temp, path)
        except FileNotFoundError:  # the destination's directory is new (a cache shard)
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def link_unless_present(temp: Path, path: Path) -> None:
    """Give the complete file ``temp`` the name ``path`` unless ``path`` exists: the rule of
    content-addressed files (the cache's blobs), whose first writer's inode stays. Where
    hardlinks fail, a rename (which may replace an equal file). The directory of ``path`` is
    created when missing (a new cache shard); ``temp`` stays either way (the caller removes
    it)."""
    try:
        os.link(temp, path)
    except FileExistsError:
        pass  # another writer placed it first: the same content, and its inode stays
    except FileNotFoundError:  # no directory yet
        path.parent.mkdir(parents=True, exist_ok=True)
        link_unless_present(temp, path)
    except OSError:  # a file system without hardlinks: rename (may replace an equal file)
        os.replace(temp, path)


def atomic_write(path: Path, data: bytes, mode: int = 0o644, *, fsync: bool = False,
                 temp: Path | None = None) -> None:
    """:func:`atomic_writer` for bytes already in memory."""
    with atomic_writer(path, mode, fsync=fsync, temp=temp) as f:
        f.write(data)


def make_writable(root: Path) -> None:
    """Directories 0o755 top-down so the tree can be deleted; file modes are left alone
    (a raw file shares its inode with the read-only blob)."""
    if not os.path.isdir(root) or os.path.islink(root):
        return
    os.chmod(root, 0o755)
    for dirpath, dirs, _files in os.walk(root):
        for name in dirs:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, 0o755)


def remove_tree(path: Path) -> None:
    """rmtree a read-only tree: restore write permission on directories first."""

    def onerror(func: Callable[..., Any], p: str, _exc: Any) -> None:
        parent = os.path.dirname(p)
        with contextlib.suppress(OSError):
            os.chmod(parent, 0o755)
            if os.path.isdir(p) and not os.path.islink(p):
                os.chmod(p, 0o755)
        func(p)

    with contextlib.suppress(OSError):
        make_writable(path)
    shutil.rmtree(path, onerror=onerror)


def read_capped_text(path: Path, limit: int, what: str, *, missing_hint: str = "") -> str:
    """The UTF-8 text of a file a user names (tools.yaml, a DotSlash file, a multitool
    lockfile), read no further than ``limit`` bytes. Missing, a directory, larger than
    ``limit`` or not UTF-8 is exit 2; unreadable otherwise (permissions, I/O) exit 8. Each
    message names the file and what it should have been (``what``, e.g. ``tools.yaml``)."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except FileNotFoundError as e:
        raise UsageError(f"{path}: no such file{missing_hint}") from e
    except IsADirectoryError as e:
        raise UsageError(f"{path}: is a directory, not a {what}") from e
    except OSError as e:
        raise LocalIOError.of(e, f"cannot read {what} {path}") from e
    if len(data) > limit:
        raise UsageError(f"{path}: larger than {limit} bytes; not a {what}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(f"{path}: not UTF-8 text (byte {e.start} is {data[e.start]:#04x})"
                         ) from None
