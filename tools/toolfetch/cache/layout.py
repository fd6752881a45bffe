"""Where the cache keeps an entry: ``<base>/sha256/ab/cd/<hex>`` (blobs, trees, records).

The one place that spells the shard layout, both ways: the name of an entry
(:func:`sharded`, what :class:`~toolfetch.cache.store.Cache` hands out) and every entry a
directory holds (:func:`digests_under`, what ``cache info``, gc and verify walk). The hit
path (``cli/hitpath.py``, standard library only) spells the name once more for itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from toolfetch.core.digest import HEX, Digest


def sharded(base: Path, digest: Digest) -> Path:
    return base / "sha256" / digest.hex[:2] / digest.hex[2:4] / digest.hex


def digests_under(base: Path, suffix: str = "", dirs: bool = False
                  ) -> Iterator[tuple[Digest, Path]]:
    """Files (or ``dirs``) named ``<hex><suffix>`` in ``base/sha256/ab/cd/`` (no temp names)."""
    root = base / "sha256"
    if not root.is_dir():
        return
    for a in os.scandir(root):
        for b in os.scandir(a.path) if a.is_dir() else ():
            for e in os.scandir(b.path) if b.is_dir() else ():
                if e.is_dir(follow_symlinks=False) != dirs or not e.name.endswith(suffix):
                    continue
                hexpart = e.name[: len(e.name) - len(suffix)]
                if HEX.fullmatch(hexpart):
                    yield Digest(hexpart), Path(e.path)
