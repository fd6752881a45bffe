"""``import-dotslash`` and ``import-multitool``: tools.yaml entries from the files of the tools
teams migrate from, HTTP release assets pinned the same way.

Every field of both formats is either carried over or named in a warning or an error; none is
dropped silently.

* A **DotSlash file** (``#!/usr/bin/env dotslash`` and JSON with comments and trailing commas,
  :mod:`toolfetch.lock.jsonc`) becomes one tool, named after the file (or ``--name``). Each
  platform key (``linux-x86_64`` → ``linux/amd64``, ``macos-aarch64`` → ``darwin/arm64``,
  ``linux-riscv64``, …; a key toolfetch does not know is skipped with a note, as DotSlash
  skips it) gets its providers as ``urls`` in order (``url`` providers, and ``github-release``
  ones as their ``https://HOST/OWNER/REPO/releases/download/TAG/NAME`` URL, GitHub Enterprise
  hosts included; other provider types, such as ``s3``, need their own client and are skipped
  with a warning), ``path``, ``format`` (every DotSlash spelling, :data:`SPELLINGS`), and the
  declared ``size`` and digest (``sha256`` or ``blake3``), which ``lock`` verifies before it
  pins anything. ``arg0`` becomes the tool's ``arg0`` (``dotslash-file``, DotSlash's default,
  is ``tool``: argv[0] names the tool as invoked); ``readonly: false`` is warned about (toolfetch
  trees are always read-only).
* A **rules_multitool lockfile** becomes one tool per entry: each binary (``os`` ``linux``,
  ``macos``, ``windows``; ``cpu`` ``x86_64``, ``arm64``) a platform with its ``url`` and
  ``sha256``; ``file`` binaries are plain files named after the tool; ``archive`` binaries
  keep ``file`` as ``path`` and ``type`` as ``format`` (every spelling of its schema, zip-based
  ``jar``/``war``/``aar`` included; without ``type``, the URL's archive extension decides, as
  Bazel's extractor does). ``pkg`` binaries (macOS installers) and ``ar``/``deb`` types are
  skipped with a warning; ``headers`` and ``auth_patterns`` are warned about, naming the
  credential mechanisms toolfetch uses instead.

Values of the wrong type are exit 2 naming the file, the tool, the platform and the field.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from toolfetch.core.errors import UsageError
from toolfetch.core.fs import read_capped_text
from toolfetch.oci.formats import SPELLINGS, format_by_extension, format_named

log = logging.getLogger("toolfetch")

DOTSLASH_PLATFORMS = {
    "linux-x86_64": "linux/amd64", "linux-aarch64": "linux/arm64",
    "linux-riscv64": "linux/riscv64",
    "macos-x86_64": "darwin/amd64", "macos-aarch64": "darwin/arm64",
    "windows-x86_64": "windows/amd64", "windows-aarch64": "windows/arm64",
}
DOTSLASH_ARG0 = {"dotslash-file": "tool", "underlying-executable": "executable"}
_DOTSLASH_FIELDS = frozenset({"size", "hash", "digest", "format", "path", "providers",
                              "arg0", "readonly"})
MULTITOOL_OS = {"linux": "linux", "macos": "darwin", "windows": "windows"}
MULTITOOL_CPU = {"x86_64": "amd64", "arm64": "arm64"}
_MULTITOOL_FIELDS = frozenset({"kind", "url", "sha256", "file", "os", "cpu", "type", "headers",
                               "auth_patterns"})
_TOOL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_HEX = re.compile(r"[0-9a-fA-F]{64}")
_SKIP = object()  # a platform entry that cannot be carried over (warned about)

Entries = dict[str, dict[str, Any]]


def _read(path: Path, what: str) -> str:
    """The file's UTF-8 text, read at most :data:`~toolfetch.lock.jsonc.MAX_BYTES` far."""
    from toolfetch.lock.jsonc import MAX_BYTES

    return read_capped_text(path, MAX_BYTES, what)


def _string(spec: dict[str, Any], key: str, where: str, required: bool = False) -> str | None:
    value = spec.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise UsageError(f"{where}: `{key}` must be a non-empty string, not {_shown(value)}")
    return value


def _shown(value: Any) -> str:
    kind = type(value).__name__
    return "nothing" if value is None else f"a {kind}" if isinstance(value, (list, dict)) \
        else repr(value)[:60]


# -- DotSlash ---------------------------------------------------------------------------------
def from_dotslash(path: Path, name: str | None = None) -> Entries:
    from toolfetch.lock import jsonc

    text = _read(path, "DotSlash file")
    first, newline, body = text.partition("\n")
    if not first.startswith("#!") or "dotslash" not in first:
        raise UsageError(f"{path}: not a DotSlash file (it must start with "
                         "`#!/usr/bin/env dotslash`)")
    data = jsonc.loads(newline + body, str(path))  # line numbers as in the file
    if not isinstance(data, dict) or not isinstance(data.get("platforms"), dict):
        raise UsageError(f"{path}: expected an object with `platforms`")
    for key in sorted(set(data) - {"name", "platforms"}):
        log.warning("%s: field `%s` is not carried over (toolfetch knows `name` and "
                    "`platforms`)", path, key)
    tool = name or path.name.removesuffix(".dotslash")
    if not _TOOL_NAME.fullmatch(tool) and name is None:
        tool = str(data.get("name", ""))
    if not _TOOL_NAME.fullmatch(tool):
        raise UsageError(f"{path}: cannot name a tool after it ({tool!r}); pass --name")
    platforms: dict[str, Any] = {}
    arg0: set[str] = set()
    for key, spec in sorted(data["platforms"].items()):
        where = f"{path}: platform {key}"
        if key not in DOTSLASH_PLATFORMS:
            log.warning("%s: skipped: toolfetch has no platform for DotSlash's %r (known: "
                        "%s)", where, key, ", ".join(sorted(DOTSLASH_PLATFORMS)))
            continue
        entry = _dotslash_platform(spec, where)
        if entry is _SKIP:
            continue
        arg0.add(entry.pop("arg0"))
        platforms[DOTSLASH_PLATFORMS[key]] = entry
    if not platforms:
        raise UsageError(f"{path}: no platform toolfetch can use")
    if len(arg0) > 1:
        raise UsageError(f"{path}: platforms disagree on `arg0` ({', '.join(sorted(arg0))}); "
                         "toolfetch keeps one per tool")
    out: dict[str, Any] = {"platforms": platforms}
    if arg0 == {"tool"}:
        out = {"arg0": "tool", **out}
    return {tool: out}


def _dotslash_platform(spec: Any, where: str) -> Any:
    if not isinstance(spec, dict):
        raise UsageError(f"{where}: expected an object, not {_shown(spec)}")
    for key in sorted(set(spec) - _DOTSLASH_FIELDS):
        log.warning("%s: field `%s` is not carried over", where, key)
    providers = spec.get("providers")
    if not isinstance(providers, list) or not providers:
        raise UsageError(f"{where}: `providers` must be a non-empty list")
    urls = [u for u in (_provider_url(p, f"{where}: providers[{i}]")
                        for i, p in enumerate(providers)) if u]
    if not urls:
        log.warning("%s: skipped: no provider toolfetch can fetch from", where)
        return _SKIP
    entry: dict[str, Any] = {"urls": urls} if len(urls) > 1 else {"url": urls[0]}
    fmt = _string(spec, "format", where)
    entry["format"] = "raw" if fmt is None else format_named(fmt, where).name
    exe = _string(spec, "path", where, required=True)
    entry["path"] = exe
    kind = _string(spec, "hash", where, required=True)
    digest = _string(spec, "digest", where, required=True)
    if kind not in ("sha256", "blake3"):
        raise UsageError(f"{where}: unknown hash {kind!r} (DotSlash's are sha256 and blake3)")
    if not _HEX.fullmatch(digest or ""):
        raise UsageError(f"{where}: `digest` must be 64 hex digits")
    entry[str(kind)] = str(digest).lower()
    size = spec.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise UsageError(f"{where}: `size` must be a non-negative integer, not {_shown(size)}")
    entry["size"] = size
    mode = spec.get("arg0", "dotslash-file")
    if mode not in DOTSLASH_ARG0:
        raise UsageError(f"{where}: `arg0` must be one of {', '.join(DOTSLASH_ARG0)}")
    entry["arg0"] = DOTSLASH_ARG0[mode]
    if spec.get("readonly", True) is not True:
        log.warning("%s: `readonly: false` is not carried over: toolfetch's trees are always "
                    "read-only (they are shared by every user of the cache)", where)
    return entry


def _provider_url(provider: Any, where: str) -> str | None:
    if not isinstance(provider, dict):
        raise UsageError(f"{where}: a provider must be an object, not {_shown(provider)}")
    kind = provider.get("type", "http")
    if kind == "http":
        url = _string(provider, "url", where, required=True)
        assert url is not None
        if not url.lower().startswith(("http://", "https://")):
            raise UsageError(f"{where}: `url` must be an http(s) URL")
        return url
    if kind == "github-release":
        repo, tag, name = (_string(provider, k, where, required=True)
                           for k in ("repo", "tag", "name"))
        return github_release_url(str(repo), str(tag), str(name), where)
    log.warning("%s: skipped: a %r provider needs its own client (toolfetch fetches HTTP(S) "
                "URLs; mirror the artifact to one, or to a registry with `toolfetch publish`)",
                where, kind)
    return None


def github_release_url(repo: str, tag: str, name: str, where: str) -> str:
    """``https://HOST/OWNER/REPO/releases/download/TAG/NAME`` for DotSlash's ``repo`` spellings:
    ``OWNER/REPO`` (github.com), ``HOST/OWNER/REPO`` and ``https://HOST/OWNER/REPO`` (GitHub
    Enterprise)."""
    from urllib.parse import quote

    text = repo.strip().rstrip("/").removesuffix(".git")
    if "://" in text:
        parts = urlsplit(text)
        host, rest = parts.netloc, parts.path.strip("/")
    else:
        segments = text.split("/")
        host, rest = ("github.com", text) if len(segments) == 2 else (
            segments[0], "/".join(segments[1:]))
    if not host or rest.count("/") != 1 or not all(rest.split("/")):
        raise UsageError(f"{where}: `repo` {repo!r} is not OWNER/REPO, HOST/OWNER/REPO or a "
                         "URL")
    return f"https://{host}/{rest}/releases/download/{quote(tag)}/{quote(name)}"


def _format_of_url(url: str, where: str) -> str:
    """An archive's format from its URL, as Bazel's extractor reads it: an archive extension
    (``.tar.xz``, ``.jar``), else a single compressed file's (``tool.gz``: decompressed)."""
    name = urlsplit(url).path.rpartition("/")[2].lower()
    by_name = format_by_extension(name)
    if by_name.is_archive:
        return by_name.name
    suffix = name.rpartition(".")[2]
    if "." in name and SPELLINGS.get(suffix, "raw") != "raw":
        return SPELLINGS[suffix]
    raise UsageError(f"{where}: an archive without `type` whose URL names no archive "
                     "extension; give its `type`")


# -- rules_multitool --------------------------------------------------------------------------
def from_multitool(path: Path) -> Entries:
    import json

    text = _read(path, "multitool lockfile")
    try:
        data = json.loads(text)
    except RecursionError:
        raise UsageError(f"{path}: nested too deeply") from None
    except ValueError as e:
        raise UsageError(f"{path}: not a valid multitool lockfile (JSON): {e}") from None
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
            raise UsageError(f"{where}: expected `binaries`, a non-empty list")
        platforms: dict[str, Any] = {}
        for i, binary in enumerate(binaries):
            found = _multitool_binary(tool, binary, f"{where}: binaries[{i}]")
            if found is None:
                continue
            key, entry = found
            if key in platforms:
                raise UsageError(f"{where}: platform {key} is given twice")
            platforms[key] = entry
        if platforms:
            out[tool] = {"platforms": dict(sorted(platforms.items()))}
        else:
            log.warning("%s: skipped: no binary toolfetch can carry over", where)
    return out


def _multitool_binary(tool: str, b: Any, where: str) -> tuple[str, dict[str, Any]] | None:
    if not isinstance(b, dict):
        raise UsageError(f"{where}: a binary must be an object, not {_shown(b)}")
    os_name, cpu = MULTITOOL_OS.get(str(b.get("os"))), MULTITOOL_CPU.get(str(b.get("cpu")))
    if os_name is None or cpu is None:
        log.warning("%s: skipped: unknown os/cpu %r/%r", where, b.get("os"), b.get("cpu"))
        return None
    key = f"{os_name}/{cpu}"
    where = f"{where} ({key})"
    for field in sorted(set(b) - _MULTITOOL_FIELDS):
        log.warning("%s: field `%s` is not carried over", where, field)
    for field in ("headers", "auth_patterns"):
        if field in b:
            host = urlsplit(str(b.get("url", ""))).hostname or "the host"
            log.warning("%s: `%s` is not carried over: toolfetch sends credentials for %s "
                        "from TOOLFETCH_HTTP_AUTH_<HOST>, TOOLFETCH_CREDENTIAL_HELPER or "
                        "~/.netrc (README, \"Tools from release pages\")", where, field, host)
    url = _string(b, "url", where, required=True)
    assert url is not None
    entry: dict[str, Any] = {"url": url}
    sha = _string(b, "sha256", where)
    if sha is not None:
        if not _HEX.fullmatch(sha):
            raise UsageError(f"{where}: `sha256` must be 64 hex digits")
        entry["sha256"] = sha.lower()
    kind = b.get("kind")
    if kind == "file":
        entry.update(format="raw", path=tool + (".exe" if os_name == "windows" else ""))
    elif kind == "archive":
        entry["path"] = _string(b, "file", where, required=True)
        kind_of = _string(b, "type", where)
        if kind_of is not None:
            if kind_of.lower().lstrip(".") in ("ar", "deb"):
                log.warning("%s: skipped: archive type %r is not supported (%s)", where,
                            kind_of, ", ".join(sorted(SPELLINGS)))
                return None
            entry["format"] = format_named(kind_of, where).name
        else:  # as Bazel's extractor: by the URL's extension
            entry["format"] = _format_of_url(url, where)
    elif kind == "pkg":
        log.warning("%s: skipped: a macOS installer package (`kind: pkg`) cannot be carried "
                    "over", where)
        return None
    else:
        raise UsageError(f"{where}: `kind` must be file, archive or pkg, not {_shown(kind)}")
    return key, entry
