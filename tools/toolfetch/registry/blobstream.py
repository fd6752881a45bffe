"""Streaming a blob into a sink while it is verified, resuming interrupted downloads.

Shared by registry blobs (:class:`toolfetch.registry.client.RegistryClient`) and HTTP
release assets (:mod:`toolfetch.registry.assets`): the same ``Range`` resume, the same
checks, the same buffers, whoever serves the bytes. Interruptions are the command's retry
policy's (:meth:`~toolfetch.registry.retry.RetryPolicy.download`). Every download keeps a pace
(:class:`~toolfetch.registry.retry.Pace`, ``TOOLFETCH_MIN_RATE``) over all its attempts, and a
body whose framing does not match its ``Content-Length`` is refused (:class:`BodyReader`).
"""

from __future__ import annotations

import http.client
import logging
import re
import select
import socket
from collections.abc import Callable
from typing import BinaryIO

import requests
import urllib3

from toolfetch.core.digest import StreamVerifier, copy_verified
from toolfetch.core.errors import IntegrityError, ToolfetchError
from toolfetch.core.progress import ByteReport
from toolfetch.registry.retry import Pace, RetryPolicy, describe_network_error

log = logging.getLogger("toolfetch")
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class NetworkFailure(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def stream_verified(get: Callable[[dict[str, str]], requests.Response],
                    fail: Callable[[requests.Response], ToolfetchError],
                    verifier: StreamVerifier, sink: BinaryIO, progress: ByteReport | None,
                    policy: RetryPolicy, server: str) -> None:
    """Copy the blob ``get(headers)`` answers into ``sink`` (positioned at 0), verified.

    An interrupted stream resumes with ``Range: bytes=N-`` (``get`` sends the request again,
    so redirects are resolved afresh); only a ``206`` whose ``Content-Range`` starts at N and
    ends at the declared size is appended, anything else restarts from byte 0. ``fail`` makes
    the error of an unexpected status; ``server`` names who serves it, in messages. Bytes the
    sink cannot take (``OSError``, e.g. ENOSPC) propagate unchanged.
    """
    download = policy.download(verifier.what, server)
    while True:
        download.pace.check(verifier.received)
        headers = {"Accept-Encoding": "identity"}
        resuming = verifier.received > 0
        if resuming:
            headers["Range"] = f"bytes={verifier.received}-"
        resp = get(headers)
        with resp:
            if resp.status_code == 206 and resuming:
                if not _range_matches(resp, verifier.received, verifier.size):
                    log.warning("%s: %s answered a resume with a mismatched range (%s); "
                                "restarting from byte 0", verifier.what, server,
                                resp.headers.get("Content-Range", "none"))
                    _restart(sink, verifier)
                    continue
            elif resp.status_code == 200:
                if resuming:
                    log.debug("%s: server ignored Range; restarting from byte 0", verifier.what)
                    _restart(sink, verifier)
            elif resp.status_code == 416 and resuming:  # it has no byte past the cut
                raise IntegrityError(f"{verifier.what}: size mismatch: {server} serves "
                                     f"{verifier.received} of the {verifier.size} bytes "
                                     f"of {verifier.expected} (HTTP 416 on resume)")
            else:
                raise fail(resp)
            error = drain(resp, verifier, sink, progress, download.pace)
        if error is None and verifier.received >= verifier.size:
            verifier.finish()
            return
        if error is None and download.last_attempt:
            verifier.finish()  # raises the size mismatch: the server serves less
        download.interrupted(
            error.reason if error else
            f"stream ended at {verifier.received} of {verifier.size} bytes",
            verifier.received, error.__cause__ if error else None)


def drain(resp: requests.Response, verifier: StreamVerifier, sink: BinaryIO,
          progress: ByteReport | None, pace: Pace) -> NetworkFailure | None:
    """Copy the raw body into ``sink``; returns how the network failed (its ``__cause__``
    the exception a read raised), or None at the body's end."""
    body = BodyReader(resp, pace, verifier.what)
    try:
        copy_verified(body.readinto, sink, verifier, progress)
    except NetworkFailure as e:
        return e
    reason = body.finish()
    return NetworkFailure(reason) if reason else None


class BodyReader:
    """The raw body of a streamed response, read into the caller's buffers, held to ``pace``
    and to its framing: bytes past the ``Content-Length`` that have arrived by the body's end
    are an IntegrityError (the declared body is then not what the server sent; a pin of it
    would pin a prefix), a body that ends early is a network failure (for a resume).

    Reads under urllib3 (which would allocate and copy every chunk; nothing is decoded
    either way) from http.client's buffered socket, at most one ``recv`` a read
    (``readinto1``): a buffered ``readinto`` waits until the whole buffer is full, which a
    trickling server makes last for ever, out of reach of the pace check. Network errors of
    a read raise :class:`NetworkFailure` with a secret-free reason.
    """

    def __init__(self, resp: requests.Response, pace: Pace, what: str) -> None:
        self.resp = resp
        self.pace = pace
        self.what = what
        self.received = 0
        body = getattr(resp.raw, "_fp", None)
        self.body = body if isinstance(body, http.client.HTTPResponse) else None

    def _read(self, buffer: memoryview) -> int:
        body = self.body
        if body is None:
            return int(self.resp.raw.readinto(buffer))
        if body.chunked:  # rare for downloads; read1 reads one chunk's bytes at most
            data = body.read1(len(buffer))
            buffer[:len(data)] = data
            return len(data)
        if body.fp is None:
            return 0
        view = buffer if body.length is None or len(buffer) <= body.length else (
            buffer[:body.length])
        n = 0
        while n < len(view):  # whole buffers for the hasher and the sink, as fast as they come
            got = body.fp.readinto1(view[n:])
            if not got:
                body.close()  # the end (as http.client does): the connection can be reused
                break
            n += got
            self.pace.check(self.received + n)
        if body.length is not None:
            body.length -= n
            if body.length == 0:
                body.close()
        return n

    def readinto(self, buffer: memoryview) -> int:
        body = self.body
        try:
            # Before the last read: what is buffered already must not go past the declared
            # end (http.client would drop it quietly with the connection).
            if (body is not None and body.fp is not None and body.length is not None
                    and 0 < body.length <= len(buffer)
                    and len(body.fp.peek(body.length + 1)) > body.length):
                raise self._excess()
            n = self._read(buffer)
        except (urllib3.exceptions.HTTPError, requests.exceptions.RequestException,
                http.client.HTTPException, OSError) as e:
            raise NetworkFailure(describe_network_error(e)) from e
        self.received += n
        self.pace.check(self.received)
        return int(n)

    def finish(self) -> str | None:
        """After the last read: why the body is incomplete, or None (then the connection
        goes back to the pool unless more bytes than declared are waiting on it)."""
        body = self.body
        if body is None:
            return None
        if body.length:  # http.client ends a truncated body quietly; urllib3 would raise
            return f"connection broken ({body.length} bytes of the response missing)"
        if body.isclosed():
            if _bytes_waiting(self.resp):
                raise self._excess()
            self.resp.raw.release_conn()  # read to the end: the connection goes back
        return None

    def _excess(self) -> IntegrityError:
        declared = self.resp.headers.get("Content-Length", "?")
        return IntegrityError(f"{self.what}: the server sent more bytes than its "
                              f"Content-Length ({declared}); refusing a body whose framing "
                              "does not match")


def _bytes_waiting(resp: requests.Response) -> bool:
    """Whether the connection of a fully read response has unread bytes (not EOF)."""
    sock = getattr(resp.raw.connection, "sock", None)
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and bool(sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except (OSError, ValueError):
        return False


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
