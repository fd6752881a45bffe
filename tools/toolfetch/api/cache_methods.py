"""The cache questions of :class:`toolfetch.Client` besides ``verify_cache`` and
``clear_cache``: how big it is and which tools its entries belong to (``toolfetch cache
info``, and the names ``cache gc`` reports). A mixin, as the registry methods are."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from toolfetch.cache.store import Cache


@dataclass(frozen=True)
class CachedTree:
    """A tree in the cache (``sha256:…``, its tree key) and the ``tool platform`` names of
    the lockfiles that use it."""

    tree: str
    tools: tuple[str, ...]


@dataclass(frozen=True)
class CacheInfo:
    """What ``toolfetch cache info`` reports. Sizes are on-disk bytes, each inode counted
    once: ``size`` in all (``allocated``: as the file system allocates it), ``blob_size``
    of the ``blobs``, ``tree_size`` of the ``trees`` besides the blobs they link,
    ``other_size`` the rest (indexes, locks, temp files). ``oldest_use`` and ``newest_use``
    are ISO 8601 (UTC) or None for an empty cache; ``tools`` the named trees, by digest."""

    path: Path
    size: int
    allocated: int
    blobs: int
    blob_size: int
    trees: int
    tree_size: int
    other_size: int
    oldest_use: str | None
    newest_use: str | None
    tools: tuple[CachedTree, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """What ``cache info --json`` prints."""
        return {"path": str(self.path), "size": self.size, "allocated": self.allocated,
                "blobs": self.blobs, "blob_size": self.blob_size, "trees": self.trees,
                "tree_size": self.tree_size, "other_size": self.other_size,
                "oldest_use": self.oldest_use, "newest_use": self.newest_use,
                "tools": [{"tree": t.tree, "tools": list(t.tools)} for t in self.tools]}


class CacheMethods:
    """Reports on the client's cache."""

    cache: Cache

    def cache_info(self) -> CacheInfo:
        """The cache's location, sizes, entries, oldest and newest use, and which tools its
        trees hold (``toolfetch cache info``)."""
        from toolfetch.cache.inventory import cache_info
        from toolfetch.core.digest import Digest

        figures = cache_info(self.cache)
        named = sorted((digest, names) for digest, names in self.cache_tools().items()
                       if self.cache.has_tree(Digest(digest.removeprefix("sha256:"))))

        def number(key: str) -> int:
            return int(str(figures[key]))

        def when(key: str) -> str | None:
            value = figures[key]
            return None if value is None else str(value)

        return CacheInfo(
            Path(str(figures["path"])), number("size"), number("allocated"), number("blobs"),
            number("blob_size"), number("trees"), number("tree_size"), number("other_size"),
            when("oldest_use"), when("newest_use"),
            tuple(CachedTree(digest, names) for digest, names in named))

    def cache_tools(self) -> dict[str, tuple[str, ...]]:
        """``sha256:…`` of cached trees and their blobs -> the ``tool platform`` names that
        use them, sorted, from the lockfile indexes in the cache (every lockfile this cache
        served, as it is now on disk). :meth:`clear_cache` reads it before collecting, to
        name what it removes (``Removal.tools``)."""
        from toolfetch.cache.layout import digests_under
        from toolfetch.cache.records import TreeRecord
        from toolfetch.core import lockindex

        names: dict[str, set[str]] = {}
        root = self.cache.root
        index_dir = root / lockindex.INDEX_DIR
        paths = sorted(index_dir.iterdir()) if index_dir.is_dir() else []
        for path in paths:
            if path.name.startswith(lockindex.VERDICT_PREFIX):
                continue
            index = lockindex.read_any(str(root), str(path))
            for (tool, key), (hexpart, _, _) in (index.entries.items() if index else ()):
                names.setdefault(f"sha256:{hexpart}", set()).add(f"{tool} {key}")
        for tree_key, record in digests_under(self.cache.trees, ".json"):
            tree_names = names.get(str(tree_key))
            if not tree_names:
                continue
            try:
                layers = TreeRecord.loads(record.read_bytes()).layers
            except (OSError, ValueError):  # unreadable or damaged: verify's business, not info's
                continue
            for layer in layers:
                names.setdefault(layer, set()).update(tree_names)
        return {digest: tuple(sorted(found)) for digest, found in names.items()}
