"""Where content comes from: upstream registries, mirrors and OCI layouts, tried in order.

Order for a registry reference: ``TOOLFETCH_MIRRORS`` (machine-specific), the lockfile's
``mirrors``, then upstream. A mirror is a registry host, ``host/prefix`` (the repository is
appended to the prefix) or ``oci-layout:DIR``. A mirror key is a registry as references
name it: Docker Hub's ``index.docker.io`` and ``registry-1.docker.io`` are ``docker.io``.
Content is verified by digest whatever its source, so a mirror can make a fetch fail over,
never substitute bytes.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol, TypeVar

from toolfetch.core.digest import Digest
from toolfetch.core.errors import IntegrityError, ToolfetchError, UnreachableError, UsageError
from toolfetch.core.progress import ByteReport
from toolfetch.core.reference import (
    LAYOUT_PREFIX,
    AnyReference,
    LayoutReference,
    canonical_registry,
)
from toolfetch.core.urls import host_problem
from toolfetch.oci.manifest import Manifest

if TYPE_CHECKING:
    from toolfetch.registry.assets import AssetSource
    from toolfetch.registry.httpauth import HttpAuth
    from toolfetch.registry.transport import Transport

log = logging.getLogger("toolfetch")
T = TypeVar("T")
S = TypeVar("S")


class BlobSource(Protocol):
    """What a blob comes from: a registry, a layout, or an HTTP release asset's URL."""

    def fetch_blob(self, digest: Digest, size: int, sink: BinaryIO, what: str,
                   progress: ByteReport | None = None) -> None: ...


class ContentSource(Protocol):
    """What both :class:`RegistryClient` and :class:`LayoutSource` offer."""

    def get_manifest(self, target: str, expected: Digest | None = None) -> Manifest: ...

    def manifest_exists(self, target: str) -> Digest | None: ...

    def fetch_blob(self, digest: Digest, size: int, sink: BinaryIO, what: str,
                   progress: ByteReport | None = None) -> None: ...

    def read_blob_head(self, digest: Digest, length: int = 512) -> bytes: ...

    def blob_exists(self, digest: Digest) -> bool: ...

    def list_tags(self) -> list[str]: ...


@dataclass(frozen=True)
class Mirror:
    """``host[:port][/prefix]`` or ``oci-layout:DIR`` (absolute once parsed)."""

    host: str = ""
    prefix: str = ""
    layout: Path | None = None

    @classmethod
    def parse(cls, text: str, base_dir: Path) -> Mirror:
        text = text.strip()
        if text.startswith(LAYOUT_PREFIX):
            directory = text[len(LAYOUT_PREFIX):]
            if not directory:  # Path("") is ".": test the text
                raise UsageError(f"malformed mirror {text!r}: missing directory")
            path = Path(directory)
            return cls(layout=path if path.is_absolute() else (base_dir / path))
        host, _, prefix = text.partition("/")
        if not host or "@" in text or any(c.isspace() for c in text) or text.lower().startswith(
                ("http://", "https://")):
            raise UsageError(f"malformed mirror {text!r}: expected host[:port][/prefix] "
                             "or oci-layout:DIR")
        problem = host_problem(host)
        if problem:
            raise UsageError(f"malformed mirror {text!r}: {problem}")
        return cls(host=host, prefix=prefix.strip("/"))

    def __str__(self) -> str:
        if self.layout is not None:
            return f"{LAYOUT_PREFIX}{self.layout}"
        return f"{self.host}/{self.prefix}" if self.prefix else self.host


def parse_mirror_map(mapping: object, base_dir: Path,
                     where: str | None = None) -> dict[str, list[Mirror]]:
    """A ``mirrors`` map (HOST -> [mirror, …]) as read from ``where`` (the file, put in front
    of every message; without it a message starts at the JSON path): each entry checked."""
    at = f"{where}: $.mirrors" if where else "$.mirrors"
    if not isinstance(mapping, Mapping):
        raise UsageError(f"{at}: expected an object HOST -> [mirror, …]")
    out: dict[str, list[Mirror]] = {}
    spelled: dict[str, str] = {}
    for host, mirrors in mapping.items():
        if not isinstance(mirrors, (list, tuple)):
            raise UsageError(f"{at}.{host}: expected a list of mirrors")
        key = canonical_registry(str(host))
        if key in spelled:
            raise UsageError(f"{at}: {spelled[key]!r} and {host!r} name one registry ({key}); "
                             "list its mirrors under one key")
        spelled[key] = str(host)
        out[key] = []
        for i, text in enumerate(mirrors):
            if not isinstance(text, str) or not text.strip():
                raise UsageError(f"{at}.{host}[{i}]: expected a non-empty string")
            try:
                out[key].append(Mirror.parse(text, base_dir))
            except UsageError as e:
                raise e.context(f"{at}.{host}[{i}]") from e
    return out


def env_mirrors() -> dict[str, list[Mirror]]:
    """``TOOLFETCH_MIRRORS="host=mirror1,mirror2;host2=…"`` (relative dirs: the cwd)."""
    text = os.environ.get("TOOLFETCH_MIRRORS", "").strip()
    result: dict[str, list[Mirror]] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        host, sep, mirrors = part.partition("=")
        if not sep or not host.strip():
            raise UsageError(f"TOOLFETCH_MIRRORS: malformed entry {part!r}: expected host=m1,m2")
        try:
            result.setdefault(canonical_registry(host.strip()), []).extend(
                Mirror.parse(m, Path.cwd()) for m in mirrors.split(",") if m.strip())
        except UsageError as e:
            raise e.context("TOOLFETCH_MIRRORS") from e
    return result


class SourceFactory:
    """Builds the ordered source list for a reference; remembers dead hosts for the command."""

    def __init__(self, lock_mirrors: Mapping[str, list[Mirror]] | None = None,
                 offline: bool = False) -> None:
        self._env_mirrors: dict[str, list[Mirror]] | None = None
        self.lock_mirrors = dict(lock_mirrors or {})
        self.offline = offline
        self._transport: Transport | None = None
        self._dead: set[str] = set()
        self._made: dict[tuple[str, bool], list[tuple[str, ContentSource]]] = {}
        self._http_auth: HttpAuth | None = None
        self._lock = threading.Lock()

    @property
    def env_mirrors(self) -> dict[str, list[Mirror]]:
        """``TOOLFETCH_MIRRORS``, read when a source is first needed: a bad value fails a
        command that needs the network, never one the cache serves."""
        if self._env_mirrors is None:
            self._env_mirrors = env_mirrors()
        return self._env_mirrors

    @property
    def transport(self) -> Transport:
        from toolfetch.registry.transport import Transport

        with self._lock:
            if self._transport is None:
                self._transport = Transport()
            return self._transport

    def prepare(self) -> None:
        """Import what remote sources need (requests) and make the transport, on the calling
        thread: a command about to download does it before starting other work."""
        from toolfetch.registry import client  # noqa: F401

        _ = self.transport

    def sources(self, ref: AnyReference,
                upstream_first: bool = False) -> list[tuple[str, ContentSource]]:
        """The sources to try for ``ref``, in order; made once per reference and command."""
        key = (str(ref), upstream_first)
        with self._lock:
            made = self._made.get(key)
        if made is None:
            made = self._sources(ref, upstream_first)
            with self._lock:
                self._made[key] = made
        return made

    def _sources(self, ref: AnyReference,
                 upstream_first: bool) -> list[tuple[str, ContentSource]]:
        from toolfetch.oci.layout import LayoutSource

        if isinstance(ref, LayoutReference):
            return [(str(ref.path), LayoutSource(ref.path))]
        from toolfetch.registry.client import RegistryClient

        out: list[tuple[str, ContentSource]] = []
        for mirror in self.env_mirrors.get(ref.registry, []) + self.lock_mirrors.get(
            ref.registry, []
        ):
            if mirror.layout is not None:
                out.append((str(mirror), LayoutSource(mirror.layout, ref.name)))
            elif not self.offline:
                repo = f"{mirror.prefix}/{ref.repository}" if mirror.prefix else ref.repository
                out.append((str(mirror), RegistryClient(self.transport, mirror.host, repo)))
        if self.offline:  # only oci-layout mirrors are local
            if not out:
                raise UnreachableError(f"{ref}: not in the cache, and --offline or "
                                       "TOOLFETCH_OFFLINE=1 forbids the network")
            return out
        upstream = (ref.api_host, RegistryClient(self.transport, ref.api_host, ref.repository))
        return [upstream, *out] if upstream_first else [*out, upstream]

    def _is_down(self, source: object) -> bool:
        """Whether a registry that failed accepts no connection at all (then skip it for the
        rest of the command). One answering 5xx, e.g. a pull-through cache whose upstream is
        down, may still serve other content, so it stays in the rotation."""
        import socket
        from urllib.parse import urlsplit

        host = getattr(source, "host", None)
        if host is None:
            return False
        url = urlsplit(self.transport.base_url(host))
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            with socket.create_connection((url.hostname or host, port), timeout=2):
                return False
        except OSError:
            return True

    def first_success(self, ref: AnyReference, what: str, action: Callable[[ContentSource], T],
                      upstream_first: bool = False) -> T:
        """Run ``action`` on each source in order until one succeeds.

        Integrity failures are discarded with a warning and the next source is tried; if
        none succeeds the error is an integrity failure when any source served wrong bytes,
        else the last failure.
        """
        return self.try_in_order(self.sources(ref, upstream_first), what, action)

    def asset_sources(self, urls: Sequence[str], tool: str | None = None
                      ) -> list[tuple[str, BlobSource]]:
        """Where an HTTP release asset comes from, in order: with ``tool``, the mirrors of
        its URLs' hosts first (``TOOLFETCH_MIRRORS``, then the lockfile's: an oci-layout, or
        a registry ``host/prefix`` holding it in ``prefix/<tool>``, as ``publish
        --from-lockfile`` puts it; found by sha256), then the URLs themselves."""
        from urllib.parse import urlsplit

        from toolfetch.oci.layout import LayoutSource

        out: list[tuple[str, BlobSource]] = []
        if tool is not None:
            for host in dict.fromkeys(urlsplit(u).netloc for u in urls):
                for mirror in self.env_mirrors.get(host, []) + self.lock_mirrors.get(host, []):
                    if mirror.layout is not None:
                        out.append((str(mirror), LayoutSource(mirror.layout)))
                    elif not self.offline:
                        from toolfetch.registry.client import RegistryClient

                        repo = f"{mirror.prefix}/{tool}" if mirror.prefix else tool
                        out.append((str(mirror),
                                    RegistryClient(self.transport, mirror.host, repo)))
        if self.offline and out:
            return out
        return out + list(self.url_sources(urls))

    def url_sources(self, urls: Sequence[str]) -> list[tuple[str, AssetSource]]:
        """An asset's URLs, in order, with the command's credentials for HTTP hosts."""
        from toolfetch.core.urls import check_url, shown_url
        from toolfetch.registry.assets import AssetSource
        from toolfetch.registry.httpauth import HttpAuth

        for url in urls:
            check_url(url, "asset URL")
        if self.offline:
            raise UnreachableError(f"{shown_url(urls[0])}: not in the cache, and "
                                   "--offline or TOOLFETCH_OFFLINE=1 forbids the network")
        with self._lock:
            if self._http_auth is None:
                self._http_auth = HttpAuth()
            auth = self._http_auth
        return [(shown_url(u), AssetSource(self.transport, u, auth)) for u in urls]

    def try_in_order(self, candidates: Sequence[tuple[str, S]], what: str,
                     action: Callable[[S], T]) -> T:
        """:meth:`first_success` over given ``(label, source)`` candidates."""
        last: ToolfetchError | None = None
        integrity: IntegrityError | None = None
        for i, (label, source) in enumerate(candidates):
            is_last = i == len(candidates) - 1
            with self._lock:
                if label in self._dead and not is_last:
                    continue
            try:
                return action(source)
            except IntegrityError as e:
                if not is_last:  # the last one's failure is the error itself: said once
                    log.warning("%s: %s served wrong content (%s); trying the next source",
                                what, label, e)
                integrity = integrity or e
                last = e
            except ToolfetchError as e:
                if isinstance(e, UnreachableError) and not is_last and self._is_down(source):
                    with self._lock:
                        self._dead.add(label)
                if not is_last:
                    log.warning("%s: source %s failed (%s); trying the next source",
                                what, label, e)
                last = e
        if integrity is not None:
            detail = integrity.message.removeprefix(f"{what}: ")
            tried = ", ".join(label for label, _ in candidates)
            raise IntegrityError(f"{what}: no source served verified content (tried {tried}): "
                                 f"{detail}") from (None if last is integrity else last)
        assert last is not None
        raise last
