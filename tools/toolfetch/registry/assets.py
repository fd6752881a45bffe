"""HTTP release assets: files on plain URLs (GitHub releases, vendor pages), by sha256.

An asset is fetched like a registry blob: streamed into the cache while hashed, resumed with
``Range`` after a cut, retried on 5xx/429 and network errors (the command's
:class:`~toolfetch.registry.transport.Transport`: its session, retry policy and redirect
rules; a pin that breaks off starts over, as the same policy's download), and accepted only
when size and sha256 match the lockfile. Redirects are followed
(release hosts redirect to storage) and credentials (:mod:`toolfetch.registry.httpauth`) never
go to another origin. ``lock`` pins an asset it has no sha256 for with :meth:`pin`.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any, BinaryIO

import requests

from toolfetch.core.digest import COPY_CHUNK as CHUNK
from toolfetch.core.digest import Digest, StreamVerifier
from toolfetch.core.errors import (
    AuthError,
    IntegrityError,
    NotFoundError,
    ToolfetchError,
    UnreachableError,
    UsageError,
)
from toolfetch.core.progress import ByteReport
from toolfetch.core.urls import shown_url
from toolfetch.registry.blobstream import BodyReader, NetworkFailure, stream_verified
from toolfetch.registry.httpauth import HttpAuth
from toolfetch.registry.transport import Transport

log = logging.getLogger("toolfetch")


class AssetSource:
    """One URL of an asset, through the command's transport."""

    def __init__(self, transport: Transport, url: str, auth: HttpAuth) -> None:
        self.transport = transport
        self.url = url
        self.auth = auth
        self.shown = shown_url(url)

    def __str__(self) -> str:
        return self.shown

    def _get(self, headers: dict[str, str], what: str) -> requests.Response:
        def send() -> requests.Response:
            credentials = self.auth.for_url(self.url).headers
            return self.transport.send_following("GET", self.url, {**credentials, **headers},
                                                 True, None, None, True, what,
                                                 private=credentials)

        return self.transport.policy.send(send, f"{what}: {self.shown}")

    def _fail(self, resp: requests.Response, what: str) -> ToolfetchError:
        status = resp.status_code
        if status in (401, 403):
            tried = self.auth.for_url(self.url).describe()
            return AuthError(f"{what}: {self.shown} answered HTTP {status} ({tried}; see "
                             "README, \"Tools from release pages\", for private hosts)")
        if status in (404, 410):
            return NotFoundError(f"{what}: {self.shown}: not found (HTTP {status})")
        return UnreachableError(f"{what}: {self.shown} answered HTTP {status}")

    def fetch_blob(self, digest: Digest, size: int, sink: BinaryIO, what: str,
                   progress: ByteReport | None = None) -> None:
        """Stream the asset into ``sink``, verifying ``size`` and ``digest``."""
        with StreamVerifier(digest, size, what) as verifier:
            stream_verified(lambda h: self._get(h, what), lambda r: self._fail(r, what),
                            verifier, sink, progress, self.transport.policy, self.shown)

    def pin(self, sink: BinaryIO, what: str, progress: ByteReport | None = None, *,
            blake3: bool = False, limit: int | None = None) -> Pin:
        """Download the whole asset into ``sink`` (positioned at 0), hashing as it streams
        (constant memory): its sha256, size and, with ``blake3``, its BLAKE3 digest. A body
        longer than ``limit`` bytes (a size the entry declares) stops there: IntegrityError.
        A broken stream starts over."""
        download = self.transport.policy.download(what, self.shown)
        buffer = memoryview(bytearray(CHUNK))
        while True:
            sink.seek(0)
            sink.truncate()
            hashers = _Hashers(blake3, what)
            download.pace.check(0)
            with self._get({"Accept-Encoding": "identity"}, what) as resp:
                if resp.status_code != 200:
                    raise self._fail(resp, what)
                body = BodyReader(resp, download.pace, what)
                try:  # the sink's errors (disk full) propagate
                    while n := body.readinto(buffer):
                        if limit is not None and body.received > limit:
                            raise IntegrityError(f"{what}: {self.shown} serves more than the "
                                                 f"declared {limit} bytes")
                        hashers.update(buffer[:n])
                        sink.write(buffer[:n])
                        if progress:
                            progress(n)
                    error, cause = body.finish(), None
                except NetworkFailure as e:
                    error, cause = e.reason, e.__cause__
            if error is None:
                return hashers.pin(body.received)
            download.interrupted(error, 0, cause)


@dataclass(frozen=True)
class Pin:
    """What a download of a whole asset found: its sha256, size and (when asked) BLAKE3."""

    digest: Digest
    size: int
    blake3: str | None = None


class _Hashers:
    """sha256, and BLAKE3 when a source declares one (DotSlash files), in one pass."""

    def __init__(self, blake3: bool, what: str) -> None:
        self.sha256 = hashlib.sha256()
        self.blake3: Any = _blake3_hasher(what) if blake3 else None

    def update(self, chunk: bytes | memoryview) -> None:
        self.sha256.update(chunk)
        if self.blake3 is not None:
            self.blake3.update(chunk)

    def pin(self, size: int) -> Pin:
        return Pin(Digest.parse("sha256:" + self.sha256.hexdigest()), size,
                   None if self.blake3 is None else str(self.blake3.hexdigest()))


def _blake3_hasher(what: str) -> Any:
    try:
        from blake3 import blake3
    except ImportError as e:  # a dependency: only a broken install lacks it
        raise UsageError(f"{what}: its declared blake3 digest needs the 'blake3' package, a "
                         "dependency of toolfetch (pip install blake3); refusing to pin it "
                         "unchecked") from e
    return blake3(max_threads=blake3.AUTO)
