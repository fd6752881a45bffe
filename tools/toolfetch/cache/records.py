"""A tree's record, ``trees/sha256/ab/cd/<key>.json`` (docs/design.md, "The cache"): the
one type that writes it (a fetch, once its tree is complete) and reads it (a fetch finding a
tree damaged or a ``path`` missing, gc and ``cache info`` charging blobs, ``cache verify``).

The JSON is the one toolfetch has written since cache layout 2, so caches stay readable both
ways: the fields ``key``, ``recipe`` (:func:`toolfetch.core.treekey.recipe`), ``tree`` (the
tree digest, :func:`toolfetch.cache.trees.entries_digest` of ``files``), ``files``,
``layers``, ``manifest`` and ``ref``. Fields it does not know are ignored (a newer toolfetch
may add some); ``layers`` missing is taken from the recipe, ``manifest`` and ``ref`` (who
asked first, for people reading the cache) may be missing or null. Anything else malformed is
a ValueError: the caller decides what an unreadable record means.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: The fields a file entry of each type has, in the tree digest's JSON.
ENTRY_FIELDS: dict[str, tuple[str, ...]] = {
    "file": ("path", "type", "mode", "digest", "size"),
    "symlink": ("path", "type", "mode", "target"),
    "dir": ("path", "type"),
    "other": ("path", "type", "mode"),  # never in a sound tree: verify reports it
}
_FIELD_TYPES: dict[str, type] = {"path": str, "type": str, "mode": int, "digest": str,
                                 "size": int, "target": str}


@dataclass(frozen=True)
class TreeFile:
    """One entry of a tree (:data:`ENTRY_FIELDS` says which fields each ``type`` has)."""

    path: str  # relative, ``/``-separated
    type: str  # a key of ENTRY_FIELDS
    mode: int = 0  # a symlink's is 0o777; a directory's is not recorded (0)
    digest: str | None = None  # a file's ``sha256:…``
    size: int | None = None  # a file's
    target: str | None = None  # a symlink's

    @property
    def executable(self) -> bool:
        return self.type == "file" and bool(self.mode & 0o111)

    def to_json(self) -> dict[str, str | int]:
        out: dict[str, str | int] = {}
        for name in ENTRY_FIELDS[self.type]:
            value = getattr(self, name)
            assert value is not None, f"{self.path}: a {self.type} entry without {name}"
            out[name] = value
        return out

    @classmethod
    def from_json(cls, value: object) -> TreeFile:
        if not isinstance(value, Mapping) or not isinstance(value.get("type"), str) \
                or value["type"] not in ENTRY_FIELDS:  # (a list or an object is unhashable)
            raise ValueError(f"a file entry that is not one of {', '.join(ENTRY_FIELDS)}: "
                             f"{_shown(value)}")
        fields: dict[str, Any] = {}
        for name in ENTRY_FIELDS[value["type"]]:
            field = value.get(name)
            if type(field) is not _FIELD_TYPES[name] or not _in_range(name, field):  # no bool
                raise ValueError(f"file entry {_shown(value.get('path'))}: {name} is "
                                 f"{_shown(field)}")
            fields[name] = field
        return cls(**fields)


def _in_range(name: str, value: Any) -> bool:
    """A mode is what ``stat.S_IMODE`` gives, a size is not negative."""
    if name == "mode":
        return bool(0 <= value <= 0o7777)
    return name != "size" or bool(value >= 0)


def _shown(value: object) -> str:
    """A value of a hostile record, for a message: a scalar's repr, cut; of a list or an
    object only its type (repr would walk it whole, however big or deep)."""
    if isinstance(value, (list, dict)):
        return f"a JSON {'array' if isinstance(value, list) else 'object'}"
    return f"{value!r:.80}"


@dataclass(frozen=True)
class TreeRecord:
    """What a complete tree's record says. Only ``recipe`` (what the key is the digest of),
    ``tree`` and ``files`` are vouched for by :mod:`toolfetch.cache.verify`."""

    key: str  # ``sha256:…`` of the recipe
    recipe: Mapping[str, Any]
    tree: str  # ``sha256:…`` of the file list
    files: tuple[TreeFile, ...]
    layers: tuple[str, ...]  # the blobs it was unpacked from, in order
    manifest: str | None = None
    ref: str | None = None

    def file(self, path: str) -> TreeFile | None:
        return next((f for f in self.files if f.path == path), None)

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "recipe": self.recipe, "tree": self.tree,
                "files": [f.to_json() for f in self.files], "layers": list(self.layers),
                "manifest": self.manifest, "ref": self.ref}

    def dumps(self) -> bytes:
        # compact: the C encoder (indent= takes the pure-Python one, ~6x slower)
        return json.dumps(self.to_json(), separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def loads(cls, data: bytes) -> TreeRecord:
        """Parse a record's bytes; ValueError (a JSONDecodeError included) when malformed."""
        try:
            value = json.loads(data)
        except RecursionError as e:  # nested past the parser's depth: malformed all the same
            raise ValueError("nested too deeply") from e
        if not isinstance(value, dict):
            raise ValueError("not a JSON object")
        recipe, files = value.get("recipe"), value.get("files")
        if not isinstance(recipe, dict) or not isinstance(recipe.get("layers"), list):
            raise ValueError("no recipe")
        if not isinstance(files, list):
            raise ValueError("no file list")
        layers = value.get("layers")
        if layers is None:  # who needs them (gc, info) can take them from the recipe
            layers = [step[0] if isinstance(step, list) and step else None
                      for step in recipe["layers"]]
        strings = {name: value.get(name) for name in ("key", "tree")}
        optional = {name: value.get(name) for name in ("manifest", "ref")}
        if not isinstance(layers, list) or not all(isinstance(d, str) for d in layers) \
                or not all(isinstance(v, str) for v in strings.values()) \
                or not all(v is None or isinstance(v, str) for v in optional.values()):
            raise ValueError("key, tree, layers, manifest or ref of the wrong type")
        return cls(key=str(strings["key"]), recipe=recipe, tree=str(strings["tree"]),
                   files=tuple(TreeFile.from_json(f) for f in files), layers=tuple(layers),
                   manifest=optional["manifest"], ref=optional["ref"])
