"""tools.yaml: the human-edited input of ``toolfetch lock``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolfetch.core.errors import UsageError
from toolfetch.core.platform import Platform
from toolfetch.core.reference import parse_any
from toolfetch.lock.schema import validate
from toolfetch.registry.sources import parse_mirror_map


@dataclass(frozen=True)
class PlatformSpec:
    """One platform's source: a tag of its own (``ref``), or an HTTP release asset
    (``urls``, tried in order, with an optional ``format`` and the digests and size its
    publisher declares: ``sha256``, ``blake3`` (DotSlash's), ``size``; ``lock`` checks each
    one given before it pins anything)."""

    ref: str | None
    path: str | None
    urls: tuple[str, ...] = ()
    sha256: str | None = None  # lower-case hex
    format: str | None = None  # a name of toolfetch.oci.formats.FORMATS
    blake3: str | None = None  # lower-case hex
    size: int | None = None

    @property
    def is_asset(self) -> bool:
        return bool(self.urls)


@dataclass(frozen=True)
class VerifyPolicy:
    """A tool's ``verify:`` policy (docs/signing.md): a cosign public key, or a Sigstore
    identity and issuer (``identity`` exact, or ``identity_regexp`` matched in full) with
    an optional ``bundle`` location template (``{url}`` = the asset's URL) and trusted
    root. Paths are absolute (given relative to tools.yaml)."""

    cosign_key: Path | None = None
    identity: str | None = None
    identity_regexp: str | None = None
    issuer: str | None = None
    bundle: str | None = None
    trusted_root: Path | None = None

    @property
    def kind(self) -> str:
        """What the lockfile's ``verified.kind`` says: ``cosign-key`` or ``sigstore``."""
        return "cosign-key" if self.cosign_key is not None else "sigstore"

    @classmethod
    def parse(cls, raw: Mapping[str, Any], base: Path, path: Path, where: str) -> VerifyPolicy:
        sigstore = raw.get("sigstore") or {}
        regexp = sigstore.get("identity-regexp")
        if regexp is not None:
            import re

            try:
                re.compile(regexp)
            except re.error as e:
                raise UsageError(f"{path}: {where}.sigstore.identity-regexp: {e}") from e
        bundle = raw.get("bundle")
        if bundle is not None and "{url}" not in bundle and not bundle.startswith(
                ("http://", "https://")):
            raise UsageError(f"{path}: {where}.bundle: expected an http(s) URL or a template "
                             f"with {{url}} (the asset's URL), not {bundle!r}")

        def file(key: str) -> Path | None:
            return base / raw[key] if key in raw else None

        return cls(file("cosign-key"), sigstore.get("identity"), regexp,
                   sigstore.get("issuer"), bundle, file("trusted-root"))


@dataclass(frozen=True)
class ToolSpec:
    name: str
    ref: str | None
    path: str | None
    version: str | None
    platform_list: tuple[Platform, ...] | None = None
    per_platform: Mapping[Platform, PlatformSpec] | None = None
    arg0: str | None = None  # ARG0_MODES: what the tool is given as argv[0]
    verify: VerifyPolicy | None = None

    @property
    def is_assets(self) -> bool:
        """Every platform is an HTTP release asset (``version`` is then informational)."""
        return self.per_platform is not None and all(
            s.is_asset for s in self.per_platform.values())

    def to_lock_fields(self) -> dict[str, str]:
        out = {"ref": self.ref, "path": self.path, "version": self.version, "arg0": self.arg0}
        return {k: v for k, v in out.items() if v is not None}


@dataclass(frozen=True)
class Config:
    path: Path
    platforms: tuple[Platform, ...] | None
    mirrors: Mapping[str, tuple[str, ...]]
    tools: Mapping[str, ToolSpec] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Config:
        from toolfetch.lock import yamlfile

        return cls.from_data(yamlfile.load(path), path)

    @classmethod
    def from_data(cls, data: Any, path: Path) -> Config:
        validate(data, "tools.schema.json", str(path))
        base = path.parent
        platforms = _platforms(data.get("platforms"), path, "$.platforms")
        tools: dict[str, ToolSpec] = {}
        for name, spec in data["tools"].items():
            where = f"$.tools.{name}"
            ref = spec.get("ref")
            if ref is not None:
                _check_ref(ref, path, f"{where}.ref", base)
            raw_platforms = spec.get("platforms")
            per_platform = None
            platform_list = None
            if isinstance(raw_platforms, dict):
                if ref is not None:
                    raise UsageError(f"{path}: {where}: use either ref or a platforms mapping "
                                     "of {ref, path} or {url, sha256, path}, not both")
                per_platform = {}
                for key, entry in raw_platforms.items():
                    entry_path = entry.get("path", spec.get("path"))
                    if "ref" not in entry:
                        urls = tuple(entry["urls"]) if "urls" in entry else (entry["url"],)
                        _check_urls(urls, path, f"{where}.platforms.{key}")
                        sha, blake3 = entry.get("sha256"), entry.get("blake3")
                        per_platform[Platform.parse(key)] = PlatformSpec(
                            None, entry_path, urls, sha.lower() if sha else None,
                            entry.get("format"), blake3.lower() if blake3 else None,
                            entry.get("size"))
                        continue
                    _check_ref(entry["ref"], path, f"{where}.platforms.{key}.ref", base)
                    per_platform[Platform.parse(key)] = PlatformSpec(entry["ref"], entry_path)
            elif raw_platforms is not None:
                platform_list = _platforms(raw_platforms, path, f"{where}.platforms")
            _one_spelling(per_platform or platform_list or (), path, f"{where}.platforms")
            policy = (VerifyPolicy.parse(spec["verify"], base, path, f"{where}.verify")
                      if "verify" in spec else None)
            tools[name] = ToolSpec(name, ref, spec.get("path"), spec.get("version"),
                                   platform_list, per_platform, spec.get("arg0"), policy)
        mirrors = {h: tuple(ms) for h, ms in (data.get("mirrors") or {}).items()}
        parse_mirror_map(mirrors, base, where=str(path))  # each entry, naming $.mirrors.H[i]
        return cls(path, platforms, mirrors, tools)


def _platforms(raw: Any, path: Path, where: str) -> tuple[Platform, ...] | None:
    if raw is None:
        return None
    try:
        platforms = tuple(Platform.parse(p) for p in raw)
    except UsageError as e:
        raise UsageError(f"{path}: {where}: {e}") from e
    _one_spelling(platforms, path, where)
    return platforms


def _one_spelling(platforms: Iterable[Platform], path: Path, where: str) -> None:
    """Refuse two spellings of one platform (``linux/arm`` and ``linux/arm/v7``): they
    would be one lock key, and which source it got would depend on their order."""
    seen: dict[str, Platform] = {}
    for p in platforms:
        if p.key in seen:
            raise UsageError(f"{path}: {where}: {seen[p.key]} and {p} name the same platform "
                             f"({p.key}); list it once")
        seen[p.key] = p


def _check_urls(urls: tuple[str, ...], path: Path, where: str) -> None:
    """Each URL one a request can be made of (:func:`toolfetch.core.urls.url_problem`):
    exit 2 naming the field and the reason, never the URL (it may carry secrets)."""
    from toolfetch.core.urls import url_problem

    for i, url in enumerate(urls):
        field = f"{where}.urls[{i}]" if len(urls) > 1 else f"{where}.url"
        problem = url_problem(url)
        if problem is not None:
            raise UsageError(f"{path}: {field}: not a valid URL ({problem})")


def _check_ref(ref: str, path: Path, where: str, base: Path) -> None:
    try:
        parse_any(ref, base)
    except UsageError as e:
        raise UsageError(f"{path}: {where}: {e}") from e
