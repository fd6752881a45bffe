"""HTTP release assets: files on plain URLs (GitHub releases, vendor pages), by sha256.

An asset is fetched like a registry blob: streamed into the cache while hashed, resumed with
``Range`` after a cut, retried on 5xx/429 and network errors (the command's
:class:`~toolfetch.registry.transport.Transport`: its session, retry policy and redirect
rules), and accepted only when size and sha256 match the lockfile. Redirects are followed
(release hosts redirect to storage) and credentials (:mod:`toolfetch.registry.httpauth`) never
go to another origin. ``lock`` pins an asset it has no sha256 for with :meth:`pin`.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import BinaryIO

import requests

from toolfetch.core.digest import Digest, StreamVerifier
from toolfetch.core.errors import AuthError, NotFoundError, ToolfetchError, UnreachableError
from toolfetch.registry.blobstream import BodyReader, NetworkFailure, stream_verified
from toolfetch.registry.httpauth import HttpAuth
from toolfetch.registry.retry import attempts_text, send_retrying
from toolfetch.registry.session import strip_query
from toolfetch.registry.transport import Transport

log = logging.getLogger("toolfetch")
Progress = Callable[[int], None]
CHUNK = 1 << 20


class AssetSource:
    """One URL of an asset, through the command's transport."""

    def __init__(self, transport: Transport, url: str, auth: HttpAuth) -> None:
        self.transport = transport
        self.url = url
        self.auth = auth
        self.shown = strip_query(url)

    def __str__(self) -> str:
        return self.shown

    def _get(self, headers: dict[str, str], what: str) -> requests.Response:
        def send() -> requests.Response:
            credentials = self.auth.for_url(self.url).headers
            return self.transport.send_following("GET", self.url, {**credentials, **headers},
                                                 True, None, None, True, what,
                                                 private=credentials)

        return send_retrying(self.transport.policy, send, lambda n, why: f"{what}: "
                             f"{self.shown} unreachable after {attempts_text(n)} ({why})")

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
                   progress: Progress | None = None) -> None:
        """Stream the asset into ``sink``, verifying ``size`` and ``digest``."""
        with StreamVerifier(digest, size, what) as verifier:
            stream_verified(lambda h: self._get(h, what), lambda r: self._fail(r, what),
                            verifier, sink, progress, self.transport.policy, self.shown)

    def pin(self, sink: BinaryIO, what: str, progress: Progress | None = None
            ) -> tuple[Digest, int]:
        """Download the whole asset into ``sink`` (positioned at 0), hashing as it streams
        (constant memory); returns its sha256 and size. A broken stream starts over."""
        policy = self.transport.policy
        pace = policy.pace(f"{what}: {self.shown}")
        buffer = memoryview(bytearray(CHUNK))
        failures = 0
        while True:
            sink.seek(0)
            sink.truncate()
            h = hashlib.sha256()
            pace.check(0)
            with self._get({"Accept-Encoding": "identity"}, what) as resp:
                if resp.status_code != 200:
                    raise self._fail(resp, what)
                body = BodyReader(resp, pace, what)
                try:  # the sink's errors (disk full) propagate
                    while n := body.readinto(buffer):
                        h.update(buffer[:n])
                        sink.write(buffer[:n])
                        if progress:
                            progress(n)
                    error = body.finish()
                except NetworkFailure as e:
                    error = e.reason
            if error is None:
                return Digest.parse("sha256:" + h.hexdigest()), body.received
            failures += 1
            if failures >= policy.attempts:
                raise UnreachableError(f"{what}: downloading {self.shown} kept failing "
                                       f"({failures} attempts, last: {error})")
            time.sleep(policy.delay(failures))
