"""Streaming a blob into a sink while it is verified, resuming interrupted downloads.

Shared by registry blobs (:class:`toolfetch.registry.client.RegistryClient`) and HTTP
release assets (:mod:`toolfetch.registry.assets`): the same ``Range`` resume, the same
checks, the same buffers, whoever serves the bytes.
"""

from __future__ import annotations

import http.client
import logging
import re
import time
from collections.abc import Callable
from typing import BinaryIO

import requests
import urllib3

from toolfetch.core.digest import StreamVerifier, copy_verified
from toolfetch.core.errors import IntegrityError, ToolfetchError, UnreachableError
from toolfetch.registry.retry import RetryPolicy, describe_network_error

log = logging.getLogger("toolfetch")
Progress = Callable[[int], None]
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class _NetworkFailure(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def stream_verified(get: Callable[[dict[str, str]], requests.Response],
                    fail: Callable[[requests.Response], ToolfetchError],
                    verifier: StreamVerifier, sink: BinaryIO, progress: Progress | None,
                    policy: RetryPolicy, server: str) -> None:
    """Copy the blob ``get(headers)`` answers into ``sink`` (positioned at 0), verified.

    An interrupted stream resumes with ``Range: bytes=N-`` (``get`` sends the request again,
    so redirects are resolved afresh); only a ``206`` whose ``Content-Range`` starts at N and
    ends at the declared size is appended, anything else restarts from byte 0. ``fail`` makes
    the error of an unexpected status; ``server`` names who serves it, in messages. Bytes the
    sink cannot take (``OSError``, e.g. ENOSPC) propagate unchanged.
    """
    what = verifier.what
    failures = 0
    while True:
        headers = {"Accept-Encoding": "identity"}
        resuming = verifier.received > 0
        if resuming:
            headers["Range"] = f"bytes={verifier.received}-"
        resp = get(headers)
        with resp:
            if resp.status_code == 206 and resuming:
                if not _range_matches(resp, verifier.received, verifier.size):
                    log.warning("%s: %s answered a resume with a mismatched range (%s); "
                                "restarting from byte 0", what, server,
                                resp.headers.get("Content-Range", "none"))
                    _restart(sink, verifier)
                    continue
            elif resp.status_code == 200:
                if resuming:
                    log.debug("%s: server ignored Range; restarting from byte 0", what)
                    _restart(sink, verifier)
            elif resp.status_code == 416 and resuming:  # it has no byte past the cut
                raise IntegrityError(f"{what}: size mismatch: {server} serves "
                                     f"{verifier.received} of the {verifier.size} bytes "
                                     f"of {verifier.expected} (HTTP 416 on resume)")
            else:
                raise fail(resp)
            error = drain(resp, verifier, sink, progress)
        if error is None and verifier.received >= verifier.size:
            verifier.finish()
            return
        failures += 1
        reason = error or f"stream ended at {verifier.received} of {verifier.size} bytes"
        if failures >= policy.attempts:
            if error is None:
                verifier.finish()  # raises the size mismatch: the server serves less
            raise UnreachableError(f"{what}: connection to {server} kept failing "
                                   f"({failures} interruptions, last: {reason})")
        delay = policy.delay(failures)
        log.debug("%s: %s; resuming at byte %d in %.2fs", what, reason, verifier.received,
                  delay)
        time.sleep(delay)


def drain(resp: requests.Response, verifier: StreamVerifier, sink: BinaryIO,
          progress: Progress | None) -> str | None:
    """Copy the raw body into ``sink``; returns why the network failed, or None at its end.

    Reads with http.client's ``readinto`` under urllib3 (which would allocate and copy
    every chunk; nothing is decoded either way), into reused buffers.
    """
    body = getattr(resp.raw, "_fp", None)
    source = body.readinto if isinstance(body, http.client.HTTPResponse) else resp.raw.readinto

    def readinto(buffer: memoryview) -> int:
        try:
            return source(buffer)
        except (urllib3.exceptions.HTTPError, requests.exceptions.RequestException,
                http.client.HTTPException, OSError) as e:
            raise _NetworkFailure(describe_network_error(e)) from e

    try:
        copy_verified(readinto, sink, verifier, progress)
    except _NetworkFailure as e:
        return e.reason
    if isinstance(body, http.client.HTTPResponse):
        if body.length:  # http.client ends a truncated body quietly; urllib3 would raise
            return f"connection broken ({body.length} bytes of the response missing)"
        if body.isclosed():
            resp.raw.release_conn()  # read to the end: the connection goes back to the pool
    return None


def _range_matches(resp: requests.Response, start: int, size: int) -> bool:
    m = _CONTENT_RANGE.fullmatch(resp.headers.get("Content-Range", "").strip())
    if not m:
        return False
    first, last, total = int(m.group(1)), int(m.group(2)), m.group(3)
    return first == start and last == size - 1 and total in ("*", str(size))


def _restart(sink: BinaryIO, verifier: StreamVerifier) -> None:
    sink.seek(0)
    sink.truncate()
    verifier.reset()
