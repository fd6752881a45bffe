"""Registry write operations (distribution-spec push): blobs and manifests. HTTP only.

A blob the repository already has (``HEAD``) is skipped; one that lives in another repository
of the same registry is mounted (``POST …/uploads/?mount=&from=``); anything else is uploaded,
in one ``PUT`` when small, else in ``PATCH`` chunks. Every request carries the push scope
``repository:<repo>:pull,push`` (plus ``pull`` on the source repository for a mount).
Upload ``Location``s must stay on the registry's origin: credentials never leave it.

``TOOLFETCH_UPLOAD_CHUNK_SIZE`` (a size, :mod:`toolfetch.core.sizes`) sets both the largest
monolithic upload and the chunk size of chunked ones.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

import requests

from toolfetch.core.digest import Digest
from toolfetch.core.errors import IntegrityError, ToolfetchError, UsageError
from toolfetch.core.progress import ByteReport
from toolfetch.core.sizes import parse_size
from toolfetch.registry.bodies import ACCEPT_ENCODING, read_json
from toolfetch.registry.client import RegistryClient
from toolfetch.registry.retry import RetryPolicy

log = logging.getLogger("toolfetch")

DEFAULT_CHUNK_SIZE = 16 << 20
CHUNK_ENV = "TOOLFETCH_UPLOAD_CHUNK_SIZE"


def chunk_size_from_env() -> int:
    """``TOOLFETCH_UPLOAD_CHUNK_SIZE`` (a size, at least 1 KiB), else 16 MiB."""
    text = os.environ.get(CHUNK_ENV, "").strip()
    return parse_size(text, CHUNK_ENV, minimum=1024) if text else DEFAULT_CHUNK_SIZE


@dataclass
class UploadStats:
    """What happened to each blob (for ``-v`` and tests)."""

    skipped: list[Digest] = field(default_factory=list)
    mounted: list[Digest] = field(default_factory=list)
    uploaded: list[Digest] = field(default_factory=list)
    chunked: list[Digest] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, kind: str, digest: Digest) -> None:
        with self._lock:
            getattr(self, kind).append(digest)


@dataclass(frozen=True)
class PutResult:
    digest: Digest
    subject_ack: bool  # the registry answered OCI-Subject: it indexes referrers itself


MAX_ERROR_BODY = 64 * 1024


def error_detail(resp: requests.Response, policy: RetryPolicy) -> str:
    """The registry's error codes and messages, if its body (read capped) has any."""
    try:
        errors = read_json(resp, MAX_ERROR_BODY, "error body", policy).get("errors") or []
        parts = [f"{e.get('code', '?')}: {e.get('message', '')}".strip() for e in errors[:3]]
        return "; ".join(parts)[:1000]
    except (ToolfetchError, AttributeError, TypeError):
        return ""


class Uploader:
    """Writes to one ``host/repository`` through the client's shared transport."""

    def __init__(self, client: RegistryClient, chunk_size: int | None = None,
                 stats: UploadStats | None = None) -> None:
        self.client = client
        self.transport = client.transport
        self.host = client.host
        self.repository = client.repository
        self.chunk_size = chunk_size or chunk_size_from_env()
        self.stats = stats or UploadStats()

    def __str__(self) -> str:
        return str(self.client)

    @property
    def scope(self) -> str:
        return f"repository:{self.repository}:pull,push"

    def _fail(self, resp: requests.Response, what: str) -> ToolfetchError:
        detail = error_detail(resp, self.transport.policy)
        suffix = f" ({detail})" if detail else ""
        if resp.status_code == 405:
            return UsageError(f"{what}: {self.host} does not accept pushes (HTTP 405{suffix}); "
                              "is it a read-only mirror or pull-through cache?")
        if resp.status_code in (400, 413, 416):
            return UsageError(f"{what}: {self.host} rejected it (HTTP "
                              f"{resp.status_code}{suffix})")
        return self.client.error_for(resp, what, suffix)

    def _request(self, method: str, path: str, what: str, scope: str | None = None,
                 headers: dict[str, str] | None = None, data: bytes | None = None,
                 ) -> requests.Response:
        # Writes answer 201/202 with a Location to use next; a 3xx on a write would turn a
        # POST into a GET or send the content elsewhere, so only HEAD follows redirects.
        headers = {"Accept-Encoding": ACCEPT_ENCODING, **(headers or {})}
        return self.transport.request(method, self.host, path, scope=scope or self.scope,
                                      headers=headers, data=data, what=what, stream=True,
                                      follow_redirects=method == "HEAD")

    def _location(self, resp: requests.Response, request_path: str, what: str) -> str:
        """The upload ``Location`` as a path on the registry's origin."""
        location = resp.headers.get("Location")
        if not location:
            raise ToolfetchError(f"{what}: {self.host} sent no upload Location")
        base = self.transport.base_url(self.host)
        url = urljoin(base + request_path, location)
        if not url.startswith(base + "/"):
            raise ToolfetchError(f"{what}: upload location {location!r} leaves {base}; "
                                 "refusing to send credentials and content elsewhere")
        return url[len(base):]

    # -- blobs ----------------------------------------------------------------------------
    def blob_exists(self, digest: Digest) -> bool:
        what = f"blob {self}@{digest}"
        path = f"/v2/{self.repository}/blobs/{digest}"
        with self._request("HEAD", path, what) as resp:
            if resp.status_code == 200:
                return True
            if resp.status_code == 404:
                return False
            raise self._fail(resp, what)

    def mount(self, digest: Digest, from_repository: str) -> str | None:
        """Try a cross-repository mount; ``None`` when mounted, else an upload location."""
        what = f"mount of blob {digest} from {self.host}/{from_repository} into {self}"
        path = f"/v2/{self.repository}/blobs/uploads/?mount={digest}&from={from_repository}"
        scope = f"{self.scope} repository:{from_repository}:pull"
        with self._request("POST", path, what, scope=scope) as resp:
            if resp.status_code == 201:
                return None
            if resp.status_code == 202:  # not mountable: a plain upload session instead
                return self._location(resp, path, what)
            raise self._fail(resp, what)

    def _start(self, what: str) -> str:
        path = f"/v2/{self.repository}/blobs/uploads/"
        with self._request("POST", path, what) as resp:
            if resp.status_code != 202:
                raise self._fail(resp, what)
            return self._location(resp, path, what)

    def upload(self, digest: Digest, size: int, provide: Callable[[], Path],
               mount_from: Sequence[str] = (), progress: ByteReport | None = None) -> str:
        """Make the blob present; returns ``skipped``, ``mounted`` or ``uploaded``.

        ``provide`` is called only when the bytes must really be sent: it returns a local
        file holding exactly the blob (already verified by the caller).
        """
        what = f"upload of blob {digest} to {self}"
        if self.blob_exists(digest):
            self.stats.add("skipped", digest)
            return "skipped"
        location: str | None = None
        for repo in mount_from:
            if repo == self.repository:
                continue
            location = self.mount(digest, repo)
            if location is None:
                self.stats.add("mounted", digest)
                log.debug("mounted %s from %s/%s into %s", digest, self.host, repo, self)
                return "mounted"
            break  # the session the refused mount opened is ours to use
        path = provide()
        location = location or self._start(what)
        if size <= self.chunk_size:
            self._finish(location, digest, path.read_bytes(), what)
            if progress:
                progress(size)
        else:
            self._chunked(location, digest, size, path, what, progress)
            self.stats.add("chunked", digest)
        self.stats.add("uploaded", digest)
        return "uploaded"

    def _chunked(self, location: str, digest: Digest, size: int, path: Path, what: str,
                 progress: ByteReport | None) -> None:
        offset = 0
        with path.open("rb") as f:
            while offset < size:
                chunk = f.read(self.chunk_size)
                if not chunk:
                    raise IntegrityError(f"{what}: {path} is shorter than {size} bytes")
                end = offset + len(chunk) - 1
                headers = {"Content-Type": "application/octet-stream",
                           "Content-Range": f"{offset}-{end}",
                           "Content-Length": str(len(chunk))}
                with self._request("PATCH", location, what, headers=headers,
                                   data=chunk) as resp:
                    if resp.status_code != 202:
                        raise self._fail(resp, f"{what} (chunk at byte {offset})")
                    received = resp.headers.get("Range", "")
                    if received and received.rpartition("-")[2] != str(end):
                        raise ToolfetchError(f"{what}: registry acknowledged {received!r}, "
                                             f"expected 0-{end}")
                    location = self._location(resp, location, what)
                offset = end + 1
                if progress:
                    progress(len(chunk))
        self._finish(location, digest, b"", what)

    def _finish(self, location: str, digest: Digest, body: bytes, what: str) -> None:
        sep = "&" if "?" in location else "?"
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(body))}
        with self._request("PUT", f"{location}{sep}digest={digest}", what, headers=headers,
                           data=body) as resp:
            if resp.status_code not in (201, 204):
                raise self._fail(resp, what)
            stored = resp.headers.get("Docker-Content-Digest")
        if stored and stored != str(digest):
            raise IntegrityError(f"{what}: registry stored it as {stored}")

    # -- manifests ------------------------------------------------------------------------
    def put_manifest(self, raw: bytes, media_type: str, reference: str | None = None,
                     ) -> PutResult:
        """PUT a manifest under a tag, or under its own digest when ``reference`` is None."""
        digest = Digest.of_bytes(raw)
        reference = reference or str(digest)
        what = f"manifest {self}:{reference}" if not reference.startswith("sha256:") else (
            f"manifest {self}@{reference}")
        with self._request("PUT", f"/v2/{self.repository}/manifests/{reference}", what,
                           headers={"Content-Type": media_type}, data=raw) as resp:
            if resp.status_code not in (200, 201):
                raise self._fail(resp, what)
            stored = resp.headers.get("Docker-Content-Digest")
            subject_ack = "OCI-Subject" in resp.headers
        if stored and stored != str(digest):
            raise IntegrityError(f"{what}: registry stored it as {stored}, expected {digest}")
        return PutResult(digest, subject_ack)
