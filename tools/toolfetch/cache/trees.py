"""Unpacked trees: their digest (for ``cache verify``) and their read-only state."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path

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
                ) -> tuple[str, list[dict[str, str | int]]]:
    """``sha256:…`` over the sorted entries, and the entries themselves.

    ``known`` maps relative paths to the (inode, digest) unpacking computed while writing
    them; a file whose inode still matches is not read again (one pass over the bytes).

    Entries: files ``{path, type: "file", mode, digest, size}``, symlinks ``{path, type:
    "symlink", mode: 0o777, target}``, directories ``{path, type: "dir"}`` (their mode is left
    out: it changes when the tree is made read-only).  Paths are relative, ``/``-separated.
    """
    entries: list[dict[str, str | int]] = []
    for rel, st, full in _walk(root):
        if stat.S_ISREG(st.st_mode):
            seen = (known or {}).get(rel)
            fresh = seen is not None and seen[0] == st.st_ino
            digest = seen[1] if seen is not None and fresh else str(Digest.of_file(full))
            entries.append({"path": rel, "type": "file", "mode": stat.S_IMODE(st.st_mode),
                            "digest": digest, "size": st.st_size})
        elif stat.S_ISLNK(st.st_mode):
            entries.append({"path": rel, "type": "symlink", "mode": 0o777,
                            "target": os.readlink(full)})
        elif stat.S_ISDIR(st.st_mode):
            entries.append({"path": rel, "type": "dir"})
        else:
            entries.append({"path": rel, "type": "other", "mode": stat.S_IMODE(st.st_mode)})
    entries.sort(key=lambda e: str(e["path"]))
    blob = json.dumps(entries, sort_keys=True, separators=(",", ":")).encode()
    return f"sha256:{hashlib.sha256(blob).hexdigest()}", entries


def make_read_only(root: Path) -> None:
    """Files 0o555 (any x bit) or 0o444, directories 0o555, bottom-up; symlinks untouched."""
    for dirpath, _dirs, files in os.walk(root, topdown=False):
        for name in files:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            want = 0o555 if st.st_mode & 0o111 else 0o444
            if stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) != want:
                os.chmod(path, want)
        os.chmod(dirpath, 0o555)


