"""``lock`` checks a tool's ``path`` against what the artifact holds (issue 23, item 6).

One rule and one message wherever ``lock`` knows the files: the titles of single-file layers,
the members of a downloaded asset, the members of registry layers already in the cache. A
missing path is exit 4 naming the closest files, so ``lock --check`` never passes what every
fetch would refuse.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from toolfetch.core.errors import NotFoundError
from toolfetch.oci.formats import split_relative


def check_path(what: str, path: str, names: Iterable[str], source: str,
               config_path: Path) -> None:
    """``path`` (normalised) must be one of ``names``, the files of ``source``."""
    import difflib

    files = sorted(set(names))
    if "/".join(split_relative(path)) in files:
        return
    close = difflib.get_close_matches(path, files, n=3, cutoff=0.5)
    hint = f"closest: {', '.join(close)}; " if close else ""
    shown = ", ".join(files[:20]) + (" …" if len(files) > 20 else "")
    raise NotFoundError(f"{what}: path {path!r} is not in {source} ({hint}it has: "
                        f"{shown or 'no files'}); fix `path` in {config_path}")
