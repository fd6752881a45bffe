"""``import-dotslash`` and ``import-multitool``: tools.yaml entries from the files of the tools
teams migrate from, HTTP release assets pinned the same way.

* A DotSlash file (``#!/usr/bin/env dotslash`` and a JSON body that may hold ``//`` comments
  and trailing commas, as DotSlash's own parser allows) becomes one tool named after the file:
  its ``platforms`` (``linux-x86_64`` → ``linux/amd64``, ``macos-aarch64`` → ``darwin/arm64``,
  …), each with its providers as ``urls`` (``{"url": …}``, and ``github-release`` providers
  as their ``https://github.com/REPO/releases/download/TAG/NAME`` URL), ``path``, and
  ``format`` (``tar.gz`` → ``tar+gzip``, none: a plain file). A ``sha256`` digest is kept; a
  ``blake3`` one is left for ``lock`` to replace by the sha256 it pins.
* A rules_multitool lockfile becomes one tool per entry: each binary (``os`` ``linux``,
  ``macos``, ``windows``, and ``cpu`` ``x86_64``, ``arm64``) a platform with its ``url`` and
  ``sha256``; ``archive`` binaries keep ``file`` as ``path`` and ``type`` as ``format``,
  ``file`` binaries are named after the tool.

What cannot be carried over (``pkg`` binaries, ``tar.xz`` and single compressed files,
providers other than URLs) is refused with a message naming the tool, the platform and why.
The entries are inserted under ``tools:`` in tools.yaml as text, so its comments stay; the
result is validated before it replaces the file (a tool that exists already is an error).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from toolfetch.core.errors import LocalIOError, UsageError

DOTSLASH_PLATFORMS = {
    "linux-x86_64": "linux/amd64", "linux-aarch64": "linux/arm64",
    "macos-x86_64": "darwin/amd64", "macos-aarch64": "darwin/arm64",
    "windows-x86_64": "windows/amd64", "windows-aarch64": "windows/arm64",
}
DOTSLASH_FORMATS = {"tar": "tar", "tar.gz": "tar+gzip", "tgz": "tar+gzip",
                    "tar.zst": "tar+zstd", "zip": "zip"}
MULTITOOL_OS = {"linux": "linux", "macos": "darwin", "windows": "windows"}
MULTITOOL_CPU = {"x86_64": "amd64", "arm64": "arm64"}
MULTITOOL_TYPES = {"zip": "zip", "tar": "tar", "tar.gz": "tar+gzip", "tgz": "tar+gzip",
                   "tar.zst": "tar+zstd", "tzst": "tar+zstd"}
_TOOL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

Entries = dict[str, dict[str, Any]]


def _jsonrc(text: str, where: str) -> Any:
    """JSON with ``//`` and ``/* */`` comments and trailing commas (DotSlash's dialect)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':  # copy a string whole, escapes included
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith("//", i):
            i = text.find("\n", i) if "\n" in text[i:] else n
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        else:
            out.append(c)
            i += 1
    cleaned = re.sub(r",(\s*[}\]])", r"\1", "".join(out))
    try:
        return json.loads(cleaned)
    except ValueError as e:
        raise UsageError(f"{where}: not valid JSON: {e}") from e


def from_dotslash(path: Path) -> Entries:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"{path}: cannot read: {e}") from e
    first, _, body = text.partition("\n")
    if not first.startswith("#!") or "dotslash" not in first:
        raise UsageError(f"{path}: not a DotSlash file (it must start with "
                         "`#!/usr/bin/env dotslash`)")
    data = _jsonrc(body, str(path))
    if not isinstance(data, dict) or not isinstance(data.get("platforms"), dict):
        raise UsageError(f"{path}: expected an object with `platforms`")
    tool = path.name.removesuffix(".dotslash")
    if not _TOOL_NAME.fullmatch(tool):
        tool = str(data.get("name", ""))
    if not _TOOL_NAME.fullmatch(tool):
        raise UsageError(f"{path}: cannot name a tool after it ({tool!r})")
    platforms: dict[str, Any] = {}
    for key, spec in sorted(data["platforms"].items()):
        where = f"{path}: platform {key}"
        if key not in DOTSLASH_PLATFORMS:
            raise UsageError(f"{where}: unknown DotSlash platform (known: "
                             f"{', '.join(sorted(DOTSLASH_PLATFORMS))})")
        platforms[DOTSLASH_PLATFORMS[key]] = _dotslash_platform(spec, where)
    return {tool: {"platforms": platforms}}


def _dotslash_platform(spec: Any, where: str) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise UsageError(f"{where}: expected an object")
    urls = [_provider_url(p, where) for p in spec.get("providers") or []]
    urls = [u for u in urls if u]
    if not urls:
        raise UsageError(f"{where}: no provider with a URL")
    entry: dict[str, Any] = {"urls": urls} if len(urls) > 1 else {"url": urls[0]}
    fmt = spec.get("format")
    if fmt is not None:
        if fmt not in DOTSLASH_FORMATS:
            raise UsageError(f"{where}: format {fmt!r} is not supported by toolfetch "
                             f"(supported: {', '.join(sorted(DOTSLASH_FORMATS))})")
        entry["format"] = DOTSLASH_FORMATS[fmt]
    else:
        entry["format"] = "raw"
    if spec.get("path"):
        entry["path"] = str(spec["path"])
    if spec.get("hash") == "sha256" and isinstance(spec.get("digest"), str):
        entry["sha256"] = spec["digest"].lower()
    elif spec.get("hash") not in ("blake3", "sha256"):
        raise UsageError(f"{where}: unknown hash {spec.get('hash')!r}")
    return entry


def _provider_url(provider: Any, where: str) -> str | None:
    if not isinstance(provider, dict):
        raise UsageError(f"{where}: a provider is not an object")
    kind = provider.get("type", "http")
    if kind == "http" and isinstance(provider.get("url"), str):
        return str(provider["url"])
    if kind == "github-release" and all(isinstance(provider.get(k), str)
                                        for k in ("repo", "tag", "name")):
        repo = provider["repo"].removeprefix("https://github.com/").strip("/")
        return f"https://github.com/{repo}/releases/download/{provider['tag']}/{provider['name']}"
    return None  # e.g. an s3 provider: not a URL toolfetch can fetch


def from_multitool(path: Path) -> Entries:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UsageError(f"{path}: cannot read a multitool lockfile: {e}") from e
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected an object of tools")
    out: Entries = {}
    for tool, spec in sorted(data.items()):
        if tool.startswith("$"):
            continue  # $schema
        where = f"{path}: tool {tool}"
        if not _TOOL_NAME.fullmatch(tool):
            raise UsageError(f"{where}: not a valid tool name")
        binaries = spec.get("binaries") if isinstance(spec, dict) else None
        if not isinstance(binaries, list) or not binaries:
            raise UsageError(f"{where}: expected `binaries`")
        platforms: dict[str, Any] = {}
        for binary in binaries:
            key, entry = _multitool_binary(tool, binary, where)
            if key in platforms:
                raise UsageError(f"{where}: platform {key} is given twice")
            platforms[key] = entry
        out[tool] = {"platforms": dict(sorted(platforms.items()))}
    return out


def _multitool_binary(tool: str, b: Any, where: str) -> tuple[str, dict[str, Any]]:
    if not isinstance(b, dict):
        raise UsageError(f"{where}: a binary is not an object")
    os_name, cpu = MULTITOOL_OS.get(b.get("os", "")), MULTITOOL_CPU.get(b.get("cpu", ""))
    if os_name is None or cpu is None:
        raise UsageError(f"{where}: unknown os/cpu {b.get('os')!r}/{b.get('cpu')!r}")
    key = f"{os_name}/{cpu}"
    entry: dict[str, Any] = {"url": str(b.get("url", ""))}
    if isinstance(b.get("sha256"), str):
        entry["sha256"] = b["sha256"].lower()
    kind = b.get("kind")
    if kind == "file":
        entry.update(format="raw", path=tool + (".exe" if os_name == "windows" else ""))
    elif kind == "archive":
        if not isinstance(b.get("file"), str):
            raise UsageError(f"{where} ({key}): an archive binary needs `file`")
        entry["path"] = b["file"]
        if b.get("type"):
            if b["type"] not in MULTITOOL_TYPES:
                raise UsageError(f"{where} ({key}): archive type {b['type']!r} is not "
                                 f"supported (supported: {', '.join(sorted(MULTITOOL_TYPES))})")
            entry["format"] = MULTITOOL_TYPES[b["type"]]
    else:
        raise UsageError(f"{where} ({key}): binary kind {kind!r} is not supported "
                         "(file and archive are; a macOS pkg is not)")
    return key, entry


def add_to_config(config_path: Path, entries: Entries) -> None:
    """Insert ``entries`` under ``tools:`` (as text: comments stay), validated, atomically."""
    import yaml

    from toolfetch.core.fs import atomic_write
    from toolfetch.lock.config import Config

    text = config_path.read_text(encoding="utf-8") if config_path.exists() else "tools:\n"
    current = yaml.safe_load(text) or {}
    if not isinstance(current, dict):
        raise UsageError(f"{config_path}: not a mapping")
    clash = sorted(set(entries) & set(current.get("tools") or {}))
    if clash:
        raise UsageError(f"{config_path}: already has {', '.join(clash)}; remove "
                         f"{'it' if len(clash) == 1 else 'them'} first")
    m = re.search(r"^tools:[ \t]*(#.*)?$", text, re.M)
    if m is None:
        raise UsageError(f"{config_path}: no block-style `tools:` mapping to add to")
    after = text[m.end():]
    indent = re.match(r"(?:\n[ \t]*(?:#.*)?)*\n([ \t]+)\S", after)
    pad = indent.group(1) if indent else "  "
    block = yaml.safe_dump(entries, sort_keys=False, default_flow_style=False, width=1000)
    block = "".join(pad + line + "\n" for line in block.splitlines())
    new = text[:m.end()] + "\n" + block.rstrip("\n") + after if after.strip() else \
        text[:m.end()] + "\n" + block
    Config.from_data(yaml.safe_load(new), config_path)  # refuse to write an invalid file
    try:
        atomic_write(config_path, new.encode(), 0o644)
    except OSError as e:
        raise LocalIOError.of(e, f"cannot write {config_path}") from e
