"""Unpacked trees: their digest (for ``cache verify``) and their read-only state."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from toolfetch.cache.records import TreeFile
from toolfetch.core.digest import Digest


def _walk(root: Path) -> Iterator[tuple[str, os.stat_result, str]]:
    stack = [("", str(root))]
    while stack:
        prefix, directory = stack.pop()
        with os.scandir(directory) as it:
            for entry in it:
                st = entry.stat(follow_symlinks=False)
                yield prefix + entry.name, st, entry.path
                if stat.S_ISDIR(st.st_mode):
                    stack.append((prefix + entry.name + "/", entry.path))


def tree_digest(root: Path, known: Mapping[str, tuple[int, str]] | None = None
                ) -> tuple[str, tuple[TreeFile, ...]]:
    """``sha256:…`` over the sorted entries, and the entries themselves.

    ``known`` maps relative paths to the (inode, digest) unpacking computed while writing
    them; a file whose inode still matches is not read again (one pass over the bytes).

    Entries (:class:`~toolfetch.cache.records.TreeFile`): files with mode, digest and size,
    symlinks with mode 0o777 and target, directories without a mode (it changes when the
    tree is made read-only). Paths are relative, ``/``-separated.
    """
    entries: list[TreeFile] = []
    for rel, st, full in _walk(root):
        if stat.S_ISREG(st.st_mode):
            seen = (known or {}).get(rel)
            fresh = seen is not None and seen[0] == st.st_ino
            digest = seen[1] if seen is not None and fresh else str(Digest.of_file(full))
            entries.append(TreeFile(rel, "file", stat.S_IMODE(st.st_mode), digest=digest,
                                    size=st.st_size))
        elif stat.S_ISLNK(st.st_mode):
            entries.append(TreeFile(rel, "symlink", 0o777, target=os.readlink(full)))
        elif stat.S_ISDIR(st.st_mode):
            entries.append(TreeFile(rel, "dir"))
        else:
            entries.append(TreeFile(rel, "other", stat.S_IMODE(st.st_mode)))
    entries.sort(key=lambda e: e.path)
    return entries_digest(entries), tuple(entries)


def entries_digest(entries: Sequence[TreeFile]) -> str:
    """The tree digest of a list of entries (:func:`tree_digest`'s, or a record's ``files``)."""
    ordered = sorted(entries, key=lambda e: e.path)  # linear when already sorted
    blob = json.dumps([e.to_json() for e in ordered], sort_keys=True,
                      separators=(",", ":")).encode()
    return f"sha256:{hashlib.sha256(blob).hexdigest()}"


DIR_MODE = 0o555


def file_mode(st_mode: int) -> int:
    """The mode a read-only tree's regular file has: 0o555 if it had any x bit, else 0o444."""
    return 0o555 if st_mode & 0o111 else 0o444


def make_read_only(root: Path) -> None:
    """Files :func:`file_mode`, directories :data:`DIR_MODE`, bottom-up; symlinks untouched."""
    for dirpath, _dirs, files in os.walk(root, topdown=False):
        for name in files:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            want = file_mode(st.st_mode)
            if stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) != want:
                os.chmod(path, want)
        os.chmod(dirpath, DIR_MODE)


def not_read_only(root: Path) -> str | None:
    """Why the tree at the real directory ``root`` is not as :func:`make_read_only` and the
    unpacker leave it (a directory not :data:`DIR_MODE`, a file not :func:`file_mode`, an
    entry neither file, directory nor symlink), or None.

    Names the first such entry by path, and how many more there are.
    """
    found: list[str] = []
    mode = stat.S_IMODE(os.lstat(root).st_mode)
    if mode != DIR_MODE:
        found.append(f"its root directory has mode {mode:#o}, not {DIR_MODE:#o}")
    wrong: list[tuple[str, str]] = []
    for rel, st, _full in _walk(root):
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            if mode != DIR_MODE:
                wrong.append((rel, f"directory {rel} has mode {mode:#o}, not {DIR_MODE:#o}"))
        elif stat.S_ISREG(st.st_mode):
            if mode != file_mode(st.st_mode):
                wrong.append((rel, f"file {rel} has mode {mode:#o}, "
                                   f"not {file_mode(st.st_mode):#o}"))
        elif not stat.S_ISLNK(st.st_mode):
            wrong.append((rel, f"{rel} is not a file, a directory or a symlink"))
    found += [why for _rel, why in sorted(wrong)]
    if not found:
        return None
    others = len(found) - 1
    more = f" (and {others} more {'entry' if others == 1 else 'entries'})" if others else ""
    return found[0] + more
