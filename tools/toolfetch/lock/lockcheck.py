"""Reading a lockfile and checking by hand what toolfetch uses of it.

The JSON Schema (:mod:`toolfetch.lock.schema`) is the full check; these are the checks the
fast paths make without jsonschema (``which``/``run``, a fetch before the schema's verdict):
each names the file and the JSON path of the field at fault (exit 2), so a lockfile the code
cannot use is refused the same way whichever path reads it.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import replace
from pathlib import Path
from typing import Any

from toolfetch.core.digest import HEX, Digest
from toolfetch.core.errors import LocalIOError, UsageError
from toolfetch.core.platform import Platform
from toolfetch.lock.locked import ANY_PLATFORM, LockedLayer, LockedPlatform
from toolfetch.lock.verified import Verified
from toolfetch.oci.formats import check_title

MAX_BYTES = 64 << 20  # a lockfile is text a person reviews; this is far past any real one
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")  # as the schema's pattern


def read(path: Path) -> tuple[bytes, Any, os.stat_result]:
    """The bytes, the parsed file and its stat, taken before reading (what the lockfile
    index is keyed by). Missing or not JSON: exit 2; unreadable (permissions, I/O): exit 8;
    not a regular file, or larger than :data:`MAX_BYTES`: exit 2."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"{path}: not a regular file; a lockfile is a JSON file")
        if st.st_size > MAX_BYTES:
            raise UsageError(f"{path}: larger than {MAX_BYTES} bytes; not a toolfetch lockfile")
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
        return raw, json.loads(raw), st
    except FileNotFoundError as e:
        raise UsageError(f"{path}: lockfile not found (run `toolfetch lock`)") from e
    except OSError as e:
        raise LocalIOError.of(e, f"cannot read lockfile {path}") from e
    except ValueError as e:
        raise UsageError(f"{path}: lockfile is not valid JSON: {e}") from e
    except RecursionError:
        raise UsageError(f"{path}: lockfile is not valid JSON: nested too deeply") from None


def check_keys(data: Any, path: Path) -> None:
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


def platform_entry(entry: Any, path: Path, where: str) -> LockedPlatform:
    if not isinstance(entry, dict):
        raise UsageError(f"{path}: {where}: expected an object")
    try:
        tool_path = entry["path"]
        try:
            check_title(tool_path)  # names a file: not ".", no NUL, no "..", relative
        except UsageError as e:
            raise UsageError(f"{path}: {where}.path: must name a file inside the tool "
                             f"({e.message})") from None
        layers = entry["layers"]
        if not isinstance(layers, list) or not layers:
            raise UsageError(f"{path}: {where}.layers: expected a non-empty list")
        verified = (Verified.from_json(entry["verified"], path, f"{where}.verified")
                    if "verified" in entry else None)
        if "urls" in entry:
            return replace(_asset_platform(entry, tool_path, layers, path, where),
                           verified=verified)
        return LockedPlatform(
            ref=str(entry["ref"]),
            path=tool_path,
            manifest=_digest(entry, "manifest", path, where),
            index=_digest(entry, "index", path, where) if entry.get("index") else None,
            layers=tuple(_layer(layer, path, f"{where}.layers[{i}]")
                         for i, layer in enumerate(layers)),
            verified=verified,
        )
    except KeyError as e:
        raise UsageError(f"{path}: {where}: missing field {e.args[0]!r}") from None
    except UsageError as e:  # the entry's frame (said already by the checks above)
        raise e.context(f"{path}: {where}") from e.__cause__


def _asset_platform(entry: dict[str, Any], tool_path: str, layers: list[Any], path: Path,
                    where: str) -> LockedPlatform:
    urls = entry["urls"]
    if not isinstance(urls, list) or not urls or not all(
            isinstance(u, str) and u.lower().startswith(("http://", "https://")) for u in urls):
        raise UsageError(f"{path}: {where}.urls: expected a non-empty list of http(s) URLs")
    if len(layers) != 1:
        raise UsageError(f"{path}: {where}.layers: an HTTP asset has exactly one layer")
    blake3 = entry.get("blake3")
    if blake3 is not None and not (isinstance(blake3, str) and HEX.fullmatch(blake3)):
        raise UsageError(f"{path}: {where}.blake3: expected 64 lower-case hex digits")
    return LockedPlatform(ref="", path=tool_path, manifest=None, index=None,
                          layers=(_layer(layers[0], path, f"{where}.layers[0]"),),
                          urls=tuple(urls), blake3=blake3)


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
    if title is not None:  # joined into a path when the layer is a file: check it now
        try:
            check_title(title)
        except UsageError as e:
            raise UsageError(f"{path}: {where}.title: {e.message}") from e
    try:
        return LockedLayer(_digest(entry, "digest", path, where), size, str(entry["mediaType"]),
                           entry.get("title"), str(entry["unpack"]))
    except KeyError as e:
        raise UsageError(f"{path}: {where}: missing field {e.args[0]!r}") from None
