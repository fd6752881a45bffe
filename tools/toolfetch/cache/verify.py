"""``cache verify``: every blob hashes to its name, every tree is what its key says.

A blob is re-hashed. A tree's record must hold a recipe that hashes to the tree's key, the tree
on disk must hash to the recorded tree digest, and, where the recipe's blobs are in the cache
(and intact), unpacking them again must give that digest: a tree is a pure function of its key
(:mod:`toolfetch.core.treekey`), so anything else was planted or damaged. A tree directory
without a record is an interrupted unpack.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from toolfetch.cache.gc import digests_under
from toolfetch.cache.store import Cache
from toolfetch.core.digest import Digest
from toolfetch.core.errors import ToolfetchError

Problem = tuple[str, Digest, str]  # (kind, digest, why)


def _check_tree(cache: Cache, key: Digest, record_path: Path, bad_blobs: set[Digest]
                ) -> str | None:
    """Why the tree under ``key`` is bad, or None.

    The record's recipe must hash to the key, the tree on disk to the recorded digest, and,
    where the recipe's blobs are in the cache (and intact), unpacking them again must give
    that digest: a tree is a pure function of its key, so anything else was planted or
    damaged.
    """
    from toolfetch.cache.trees import tree_digest
    from toolfetch.core.treekey import recipe_digest

    try:
        record = json.loads(record_path.read_bytes())
        recorded, steps = record["tree"], record["recipe"]
        blobs = [Digest.parse(str(step[0])) for step in steps["layers"]]
        named = recipe_digest(steps)
    except (OSError, ValueError, KeyError, TypeError, ToolfetchError):
        return "unreadable record"
    if named != str(key):
        return f"its record's recipe hashes to {named}, not to the key"
    tree = cache.tree_path(key)
    if not tree.is_dir():
        return "record without a tree directory"
    actual, _ = tree_digest(tree)
    if actual != recorded:
        return f"tree hashes to {actual}, recorded {recorded}"
    if bad_blobs.intersection(blobs) or not all(cache.has_blob(b) for b in blobs):
        return None  # nothing sound to rebuild from (its files were hashed above)
    rebuilt = _rebuild_digest(cache, steps, f"tree {key.short}")
    if rebuilt != recorded:
        return f"tree differs from what its layers unpack to: {rebuilt}"
    return None


def _rebuild_digest(cache: Cache, steps: dict[str, object], what: str) -> str:
    from toolfetch.cache.trees import tree_digest
    from toolfetch.cache.unpack import unpack_recipe

    with cache.temp_dir() as scratch:
        known: dict[str, tuple[int, str]] = {}  # the hashes taken while unpacking
        try:
            unpack_recipe(steps, lambda d: cache.blob_path(Digest.parse(d)), scratch, what,
                          known)
        except ToolfetchError as e:
            return f"(cannot unpack: {e})"
        return tree_digest(scratch, known)[0]


def verify(cache: Cache) -> list[Problem]:
    """Every bad entry as (kind, digest, why)."""
    if not cache.root.exists():
        return []

    bad: list[tuple[str, Digest, str]] = []
    for digest, path in digests_under(cache.blobs):
        try:
            actual = Digest.of_file(path).hex
        except OSError as e:
            bad.append(("blob", digest, f"unreadable: {e.strerror}"))
            continue
        if actual != digest.hex:
            bad.append(("blob", digest, f"content hashes to sha256:{actual}"))
    bad_blobs = {d for _, d, _ in bad}
    cache.ensure()  # the rebuilds unpack into tmp/
    for key, record_path in digests_under(cache.trees, ".json"):
        problem = _check_tree(cache, key, record_path, bad_blobs)
        if problem is not None:
            bad.append(("tree", key, problem))
    trees_root = cache.trees / "sha256"
    if trees_root.is_dir():
        for a in trees_root.iterdir():
            for b in a.iterdir() if a.is_dir() else ():
                for entry in b.iterdir() if b.is_dir() else ():
                    if entry.is_dir() and not entry.with_name(entry.name + ".json").exists():
                        with contextlib.suppress(ToolfetchError):
                            bad.append(("tree", Digest.parse(f"sha256:{entry.name}"),
                                        "incomplete (no record; an interrupted unpack)"))
    return bad


def drop(cache: Cache, problems: list[Problem]) -> None:
    """Remove the bad entries (a tree record first, so it never looks complete)."""
    for kind, digest, _ in problems:
        if kind == "blob":
            cache.drop_blob(digest)
        else:
            cache.drop_tree(digest)
