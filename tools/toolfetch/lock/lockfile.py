"""tools.lock.json: load (validated, hand-checked, or both at once), write.

:meth:`Lockfile.load` validates with the shipped JSON Schema. :meth:`Lockfile.load_fast` skips
jsonschema and checks by hand the fields it uses (:mod:`toolfetch.lock.lockcheck`;
``which``/``run`` when :mod:`toolfetch.cli.hitpath` left them to the full CLI); a lockfile it
cannot use still exits 2. :func:`validating` hand-checks at once and runs the schema beside a
fetch. The values it holds are in :mod:`toolfetch.lock.locked`.
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
from toolfetch.core.errors import LocalIOError, NotFoundError, ToolfetchError, UsageError
from toolfetch.lock.lockcheck import check_keys, platform_entry, read
from toolfetch.lock.locked import (
    ANY_PLATFORM,
    ARG0_MODES,
    FIELDS,
    LockedLayer,
    LockedPlatform,
    LockedTool,
)
from toolfetch.registry.sources import parse_mirror_map

__all__ = ["ANY_PLATFORM", "VERSION", "LockedLayer", "LockedPlatform", "LockedTool",
           "Lockfile", "validating"]
VERSION = 1


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
        return cls.load_with_bytes(path)[0]

    @classmethod
    def load_with_bytes(cls, path: Path) -> tuple[Lockfile, bytes]:
        """:meth:`load`, and the bytes it read (``lock`` compares them with what it would
        write, without reading the file a second time)."""
        from toolfetch.lock.schema import validate

        raw, data, st = read(path)
        check_keys(data, path)
        validate(data, "lockfile.schema.json", str(path))
        return replace(cls.from_json(data, path), stat=st), raw

    @classmethod
    def load_fast(cls, path: Path) -> Lockfile:
        """Load without jsonschema; hand checks of what is used."""
        _, data, st = read(path)
        return replace(cls._checked(data, path), stat=st)

    @classmethod
    def _checked(cls, data: Any, path: Path) -> Lockfile:
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise UsageError(f"{path}: $.version: expected {VERSION} (not a toolfetch v1 lockfile)")
        if not isinstance(data.get("tools"), dict):
            raise UsageError(f"{path}: $.tools: expected an object")
        check_keys(data, path)
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

    def pins(self) -> list[tuple[str, str, str, str, str]]:
        """(tool, platform key, tree key hex, path, arg0 mode) of every entry: what its index
        lists."""
        return [(name, key, entry.tree.hex, entry.path, tool.arg0)
                for name, tool in self.tools.items() for key, entry in tool.platforms.items()]

    @classmethod
    def from_json(cls, data: dict[str, Any], path: Path) -> Lockfile:
        tools: dict[str, LockedTool] = {}
        for name, tool in data["tools"].items():
            where = f"$.tools.{name}"
            if not isinstance(tool, dict) or not isinstance(tool.get("platforms"), dict):
                raise UsageError(f"{path}: {where}.platforms: expected an object")
            platforms = {
                key: platform_entry(entry, path, f"{where}.platforms.{key}")
                for key, entry in tool["platforms"].items()
            }
            fields = {k: str(tool[k]) for k in FIELDS if k in tool}
            if fields.get("arg0", ARG0_MODES[-1]) not in ARG0_MODES:
                raise UsageError(f"{path}: {where}.arg0: one of {', '.join(ARG0_MODES)}")
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

    def write(self, text: str | None = None) -> None:
        """Atomic and fsync'd: a reader sees the old lockfile or the new one. ``text``: the
        :meth:`dumps` the caller already has."""
        from toolfetch.core.fs import atomic_write

        try:
            atomic_write(self.path, (text or self.dumps()).encode(), 0o644, fsync=True)
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
    raw, data, st = read(path)
    check_keys(data, path)  # not left to the schema: it names the key's object only
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
