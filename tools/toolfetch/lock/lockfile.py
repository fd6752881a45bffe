"""tools.lock.json: load (validated, hand-checked, or both at once), match platforms, write.

:meth:`Lockfile.load` validates with the shipped JSON Schema. :meth:`Lockfile.load_fast` skips
jsonschema and checks by hand the fields it uses (``which``/``run`` when
:mod:`toolfetch.cli.hitpath` left them to the full CLI); a lockfile it cannot use still exits 2.
:func:`validating` hand-checks at once and runs the schema beside a fetch.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from toolfetch.core import lockindex
from toolfetch.core.digest import Digest
from toolfetch.core.errors import LocalIOError, NotFoundError, ToolfetchError, UsageError
from toolfetch.core.platform import Platform, select_platform
from toolfetch.oci.formats import check_title
from toolfetch.registry.sources import parse_mirror_map

VERSION = 1
ANY_PLATFORM = "*"
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")  # as the schema's pattern


@dataclass(frozen=True)
class LockedLayer:
    digest: Digest
    size: int
    media_type: str
    title: str | None
    unpack: str

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"digest": str(self.digest), "mediaType": self.media_type,
                               "size": self.size, "unpack": self.unpack}
        if self.title is not None:
            out["title"] = self.title
        return out


@dataclass(frozen=True)
class LockedPlatform:
    """One platform of a tool: from a registry (``ref``, ``manifest``) or an HTTP release
    asset (``urls``, tried in order; one layer, the file itself; ``ref`` is empty)."""

    ref: str
    path: str
    manifest: Digest | None
    index: Digest | None
    layers: tuple[LockedLayer, ...]
    urls: tuple[str, ...] = ()

    @property
    def is_asset(self) -> bool:
        return bool(self.urls)

    @property
    def source(self) -> str:
        """Where it comes from, for messages: the ref, or the first URL."""
        return self.ref or self.urls[0]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"layers": [layer.to_json() for layer in self.layers],
                               "path": self.path}
        if self.urls:
            out["urls"] = list(self.urls)
            return out
        out.update(manifest=str(self.manifest), ref=self.ref)
        if self.index is not None:
            out["index"] = str(self.index)
        return out

    @cached_property
    def tree(self) -> Digest:
        """The key of this entry's tree in the cache (see :mod:`toolfetch.core.treekey`)."""
        from toolfetch.core.treekey import tree_key

        return Digest.parse(tree_key(layer.to_json() for layer in self.layers))


@dataclass(frozen=True)
class LockedTool:
    name: str
    fields: Mapping[str, str]  # ref / path / version as written in tools.yaml
    platforms: Mapping[str, LockedPlatform]

    def for_platform(self, wanted: Platform, lockfile: Path) -> tuple[str, LockedPlatform]:
        for key in (str(wanted), wanted.key):  # as written, then as lock writes it
            if key in self.platforms:
                return key, self.platforms[key]
        specific = [k for k in self.platforms if k != ANY_PLATFORM]
        offered = [Platform.parse(k) for k in specific]
        if any(wanted.accepts(p) for p in offered):
            chosen = specific[select_platform(wanted, offered, f"tool {self.name}")]
            return chosen, self.platforms[chosen]
        if ANY_PLATFORM in self.platforms:
            return ANY_PLATFORM, self.platforms[ANY_PLATFORM]
        raise NotFoundError(f"tool {self.name} is not locked for platform {wanted} in {lockfile}; "
                            f"locked platforms: {', '.join(sorted(self.platforms))}")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.fields)
        out["platforms"] = {k: v.to_json() for k, v in sorted(self.platforms.items())}
        return out


@dataclass(frozen=True)
class Lockfile:
    path: Path
    tools: Mapping[str, LockedTool]
    mirrors: Mapping[str, tuple[str, ...]]
    # The file's stat taken before it was read: what the lockfile index is keyed by.
    stat: os.stat_result | None = field(default=None, compare=False, repr=False)

    @classmethod
    def load(cls, path: Path) -> Lockfile:
        """Load and validate against the shipped JSON Schema."""
        from toolfetch.lock.schema import validate

        _, data, st = _read(path)
        _check_keys(data, path)
        validate(data, "lockfile.schema.json", str(path))
        return replace(cls.from_json(data, path), stat=st)

    @classmethod
    def load_fast(cls, path: Path) -> Lockfile:
        """Load without jsonschema; hand checks of what is used."""
        _, data, st = _read(path)
        return replace(cls._checked(data, path), stat=st)

    @classmethod
    def _checked(cls, data: Any, path: Path) -> Lockfile:
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise UsageError(f"{path}: $.version: expected {VERSION} (not a toolfetch v1 lockfile)")
        if not isinstance(data.get("tools"), dict):
            raise UsageError(f"{path}: $.tools: expected an object")
        _check_keys(data, path)
        return cls.from_json(data, path)

    def record_index(self, cache_root: Path, validated: bool) -> None:
        """Best effort: the lockfile index of what was loaded, for the hit path (``validated``:
        it passed the JSON schema); see :func:`toolfetch.core.lockindex.record`."""
        if self.stat is not None:
            lockindex.record(str(cache_root), os.path.realpath(self.path), self.stat,
                             self.pins(), validated)

    def known_valid(self, cache_root: Path) -> bool:
        """Whether an index of this very file, listing what it pins, says it passed the JSON
        schema already."""
        return self.stat is not None and lockindex.known_valid(
            str(cache_root), os.path.realpath(self.path), self.stat, self.pins())

    def pins(self) -> list[tuple[str, str, str, str]]:
        """(tool, platform key, tree key hex, path) of every entry: what its index lists."""
        return [(name, key, entry.tree.hex, entry.path)
                for name, tool in self.tools.items() for key, entry in tool.platforms.items()]

    @classmethod
    def from_json(cls, data: dict[str, Any], path: Path) -> Lockfile:
        tools: dict[str, LockedTool] = {}
        for name, tool in data["tools"].items():
            where = f"$.tools.{name}"
            if not isinstance(tool, dict) or not isinstance(tool.get("platforms"), dict):
                raise UsageError(f"{path}: {where}.platforms: expected an object")
            platforms = {
                key: _platform(entry, path, f"{where}.platforms.{key}")
                for key, entry in tool["platforms"].items()
            }
            fields = {k: str(tool[k]) for k in ("ref", "path", "version") if k in tool}
            tools[name] = LockedTool(name, fields, platforms)
        raw_mirrors = data.get("mirrors", {})
        parse_mirror_map(raw_mirrors, path.parent, where=str(path))  # as a fetch will
        return cls(path, tools, {h: tuple(ms) for h, ms in raw_mirrors.items()})

    @cached_property
    def base_dir(self) -> Path:
        """Where relative ``oci-layout:`` refs start: the real lockfile's directory, so a
        symlinked lockfile (as build systems like to make) resolves them correctly."""
        return self.path.resolve().parent

    def tool(self, name: str) -> LockedTool:
        try:
            return self.tools[name]
        except KeyError:
            raise NotFoundError(f"no tool {name!r} in {self.path}; it has: "
                                f"{', '.join(sorted(self.tools)) or 'none'}") from None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"tools": {n: t.to_json() for n, t in sorted(self.tools.items())},
                               "version": VERSION}
        if self.mirrors:
            out["mirrors"] = {h: list(ms) for h, ms in sorted(self.mirrors.items())}
        return out

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    def write(self) -> None:
        """Atomic and fsync'd: a reader sees the old lockfile or the new one."""
        from toolfetch.core.fs import atomic_write

        try:
            atomic_write(self.path, self.dumps().encode(), 0o644, fsync=True)
        except OSError as e:
            raise LocalIOError.of(e, f"cannot write {self.path}") from e


@contextlib.contextmanager
def validating(path: Path, cache_root: Path | None = None,
               start: threading.Event | None = None) -> Iterator[Lockfile]:
    """The lockfile, hand-checked, while jsonschema validates it on a helper thread.

    A fetch starts at once instead of waiting for jsonschema to import and run (~100 ms, a
    tenth of a cold 512 MiB fetch). Leaving the block waits for the validation and raises its
    error, which replaces any ToolfetchError of the block: an invalid lockfile explains a
    failure best. What was fetched meanwhile is verified by digest, so nothing wrong enters
    the cache; a lockfile the hand checks refuse gets the schema's message at once.

    With ``cache_root``, the verdict is remembered in the lockfile index: a file that passed
    once is not validated again until it changes (jsonschema is then not even imported), and
    the index is written for the hit path. With ``start``, the helper waits for that event (or
    the end of the block) first: a fetch sets it once its transport is imported, so importing
    jsonschema does not hold the GIL while requests imports, which delayed the first byte of a
    cold fetch by ~100 ms (docs/performance.md).
    """
    raw, data, st = _read(path)
    _check_keys(data, path)  # not left to the schema: it names the key's object only
    try:
        lockfile = replace(Lockfile._checked(data, path), stat=st)
    except UsageError:
        from toolfetch.lock.schema import validate

        validate(data, "lockfile.schema.json", str(path))
        raise
    if cache_root is not None:
        if lockfile.known_valid(cache_root):
            yield lockfile
            return
        if lockindex.known_valid_content(str(cache_root), raw):
            lockfile.record_index(cache_root, validated=True)  # next time by stat, at once
            yield lockfile
            return
    from toolfetch.lock.schema import validate

    failure: list[BaseException] = []

    if start is None:  # nothing to wait for
        start = threading.Event()
        start.set()
    started = start

    def run() -> None:
        started.wait()
        try:
            validate(data, "lockfile.schema.json", str(path))
        except BaseException as e:  # handed to the caller's thread below
            failure.append(e)

    checker = threading.Thread(target=run, name="lockfile-schema", daemon=True)
    checker.start()
    block_error: ToolfetchError | None = None
    try:
        yield lockfile
    except ToolfetchError as e:
        block_error = e
    finally:
        started.set()  # on any way out of the block: the helper must not wait forever
    checker.join()
    if failure:
        raise failure[0] from block_error
    if block_error is not None:
        raise block_error
    if cache_root is not None:
        lockindex.record_valid_content(str(cache_root), raw)
        lockfile.record_index(cache_root, validated=True)


def _read(path: Path) -> tuple[bytes, Any, os.stat_result]:
    """The bytes, the parsed file and its stat, taken before reading (see
    :meth:`Lockfile.stat`)."""
    try:
        st = os.stat(path)
        raw = path.read_bytes()
        return raw, json.loads(raw), st
    except FileNotFoundError as e:
        raise UsageError(f"{path}: lockfile not found (run `toolfetch lock`)") from e
    except OSError as e:
        raise UsageError(f"{path}: cannot read lockfile: {e}") from e
    except ValueError as e:
        raise UsageError(f"{path}: lockfile is not valid JSON: {e}") from e


def _check_keys(data: Any, path: Path) -> None:
    """Each tool's platform keys: ``*`` or lower-case ``os/arch[/variant]``, as the schema
    has them (whose message would name ``$.tools.T.platforms``, not the key at fault)."""
    tools = data.get("tools") if isinstance(data, dict) else None
    for name, tool in tools.items() if isinstance(tools, dict) else ():
        platforms = tool.get("platforms") if isinstance(tool, dict) else None
        seen: dict[str, str] = {}
        for key in platforms if isinstance(platforms, dict) else ():
            parts = key.split("/")
            if key != ANY_PLATFORM and (len(parts) not in (2, 3) or not all(
                    p and set(p) <= _KEY_CHARS for p in parts)):
                raise UsageError(f"{path}: $.tools.{name}.platforms.{key}: malformed platform "
                                 f"key {key!r}: expected os/arch[/variant] in lower case "
                                 f"(linux/amd64, linux/arm/v7) or {ANY_PLATFORM!r}")
            # One binary per platform, whoever reads the file (the rule shims refuse the
            # same): two spellings of a platform, or "*" beside platforms, would let the
            # choice depend on the reader's order of preference.
            where = f"{path}: $.tools.{name}.platforms"
            if seen and ANY_PLATFORM in (key, *seen):
                raise UsageError(f"{where}: locked for {ANY_PLATFORM!r} (one manifest for every "
                                 "platform) and per platform; a tool is one or the other")
            same = key if key == ANY_PLATFORM else Platform.parse(key).key
            if same in seen:
                raise UsageError(f"{where}: {seen[same]!r} and {key!r} name the same platform "
                                 f"({same}), as an older toolfetch wrote them; a full "
                                 "`toolfetch lock` (no tool names) rewrites it with one key")
            seen[same] = key


def _platform(entry: Any, path: Path, where: str) -> LockedPlatform:
    if not isinstance(entry, dict):
        raise UsageError(f"{path}: {where}: expected an object")
    try:
        tool_path = entry["path"]
        if not isinstance(tool_path, str) or not tool_path or tool_path.startswith("/") or (
            ".." in tool_path.split("/")
        ):
            raise UsageError(f"{path}: {where}.path: must be a relative path inside the tool")
        layers = entry["layers"]
        if not isinstance(layers, list) or not layers:
            raise UsageError(f"{path}: {where}.layers: expected a non-empty list")
        if "urls" in entry:
            return _asset_platform(entry, tool_path, layers, path, where)
        return LockedPlatform(
            ref=str(entry["ref"]),
            path=tool_path,
            manifest=_digest(entry, "manifest", path, where),
            index=_digest(entry, "index", path, where) if entry.get("index") else None,
            layers=tuple(_layer(layer, path, f"{where}.layers[{i}]")
                         for i, layer in enumerate(layers)),
        )
    except KeyError as e:
        raise UsageError(f"{path}: {where}: missing field {e.args[0]!r}") from None
    except UsageError as e:
        if str(path) in e.message:
            raise
        raise UsageError(f"{path}: {where}: {e.message}") from e


def _asset_platform(entry: dict[str, Any], tool_path: str, layers: list[Any], path: Path,
                    where: str) -> LockedPlatform:
    urls = entry["urls"]
    if not isinstance(urls, list) or not urls or not all(
            isinstance(u, str) and u.lower().startswith(("http://", "https://")) for u in urls):
        raise UsageError(f"{path}: {where}.urls: expected a non-empty list of http(s) URLs")
    if len(layers) != 1:
        raise UsageError(f"{path}: {where}.layers: an HTTP asset has exactly one layer")
    return LockedPlatform(ref="", path=tool_path, manifest=None, index=None,
                          layers=(_layer(layers[0], path, f"{where}.layers[0]"),),
                          urls=tuple(urls))


def _digest(entry: dict[str, Any], key: str, path: Path, where: str) -> Digest:
    try:
        return Digest.parse(str(entry[key]))
    except UsageError as e:
        raise UsageError(f"{path}: {where}.{key}: {e.message}") from e


def _layer(entry: Any, path: Path, where: str) -> LockedLayer:
    if not isinstance(entry, dict):
        raise UsageError(f"{path}: {where}: expected an object")
    size = entry.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise UsageError(f"{path}: {where}.size: expected a non-negative integer")
    title = entry.get("title")
    if title is not None:  # joined into a path when the layer is a raw file: check it now
        try:
            check_title(str(title))
        except UsageError as e:
            raise UsageError(f"{path}: {where}.title: {e.message}") from e
    try:
        return LockedLayer(_digest(entry, "digest", path, where), size, str(entry["mediaType"]),
                           entry.get("title"), str(entry["unpack"]))
    except KeyError as e:
        raise UsageError(f"{path}: {where}: missing field {e.args[0]!r}") from None
