"""``cache verify`` of the lockfile indexes the hit path trusts (:mod:`toolfetch.core.lockindex`).

An index that still describes its lockfile (same path and stat fingerprint) must list exactly
what that lockfile pins, as the full path would write it: one rewritten to name another
cached tree would make ``which``/``run`` serve that tree while every tree and blob is sound.
An index whose lockfile changed or is gone is stale, used by nobody (gc drops it), not bad.
"""

from __future__ import annotations

import os
from pathlib import Path

from toolfetch.cache.verify import Problem
from toolfetch.core import lockindex
from toolfetch.core.digest import HEX, Digest
from toolfetch.core.errors import ToolfetchError
from toolfetch.lock.lockfile import Lockfile


def verify_indexes(cache_root: Path) -> list[Problem]:
    """Every index that does not list what its lockfile pins, as ("index", name, why)."""
    directory = cache_root / lockindex.INDEX_DIR
    if not directory.is_dir():
        return []
    bad: list[Problem] = []
    for name in sorted(os.listdir(directory)):
        if not HEX.fullmatch(name):
            continue  # schema verdicts (valid-...) and temp files
        found = lockindex.described(str(cache_root), str(directory / name))
        if found is None:
            continue  # stale: its lockfile changed or is gone
        path, index = found
        try:
            lockfile = Lockfile.load_fast(Path(path))
        except ToolfetchError as e:
            bad.append(("index", Digest(name), f"of {path}, which does not load: {e}"))
            continue
        if lockfile.stat is None or lockindex.read(str(cache_root), path,
                                                   lockfile.stat) is None:
            continue  # changed while it was read
        if not index.lists(lockfile.pins()):
            bad.append(("index", Digest(name), f"lists other trees or paths than {path} "
                        "pins (the hit path would serve them)"))
    return bad
