"""Small HTTP bodies (manifests, tag lists, referrers, tokens, error documents), read capped.

A hostile or broken registry can answer a JSON request with gigabytes, or with a gzip body that
inflates to gigabytes. :func:`read_capped` reads the raw stream itself, decodes
``Content-Encoding`` (gzip, deflate) with zlib's output limit, and stops with an
:class:`IntegrityError` naming what was read as soon as either the encoded or the decoded size
passes the cap: memory stays bounded by the cap whatever the server sends. Requests for such
bodies send :data:`ACCEPT_ENCODING`, so no other encoding is offered. Bodies are read as
blobs are (:class:`~toolfetch.registry.blobstream.BodyReader`): held to the download pace
(``TOOLFETCH_MIN_RATE``) and to their ``Content-Length``.
"""

from __future__ import annotations

import zlib
from typing import Any

import requests

from toolfetch.core.errors import IntegrityError, UnreachableError
from toolfetch.registry.blobstream import BodyReader, NetworkFailure
from toolfetch.registry.retry import RetryPolicy

ACCEPT_ENCODING = "gzip, deflate"
_CHUNK = 64 * 1024


def _decoder(encoding: str, what: str) -> Any:
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj()
    raise IntegrityError(f"{what}: unsupported Content-Encoding {encoding!r}")


def read_capped(resp: requests.Response, cap: int, what: str, policy: RetryPolicy) -> bytes:
    """The decoded body of a streamed response, refused once it exceeds ``cap`` bytes; held
    to ``policy``'s pace (the command's, read from the environment once)."""
    too_big = IntegrityError(f"{what}: response larger than {cap} bytes; refusing it")
    encoding = resp.headers.get("Content-Encoding", "").strip().lower()
    length = resp.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > cap:
        raise too_big
    decoder = _decoder(encoding, what)
    out = bytearray()
    # The blob stream's reader: one recv a read, the download pace, the framing checks (a
    # registry trickling a manifest cannot hold a command either).
    body = BodyReader(resp, policy.pace(what), what)
    buffer = memoryview(bytearray(_CHUNK))
    try:
        while n := body.readinto(buffer):
            if body.received > cap:
                raise too_big
            if decoder is None:
                out += buffer[:n]
            else:
                out += decoder.decompress(buffer[:n], cap + 1 - len(out))
                if decoder.unconsumed_tail or len(out) > cap:
                    raise too_big
        broken = body.finish()
        if broken:
            raise UnreachableError(f"{what}: {broken}")
        if decoder is not None:
            out += decoder.flush()
    except zlib.error as e:
        raise IntegrityError(f"{what}: corrupt {encoding} body: {e}") from e
    except NetworkFailure as e:
        raise UnreachableError(f"{what}: {e.reason}").with_detail(e) from e
    if len(out) > cap:
        raise too_big
    return bytes(out)


def read_json(resp: requests.Response, cap: int, what: str, policy: RetryPolicy) -> Any:
    """:func:`read_capped`, parsed as JSON (IntegrityError when it is not)."""
    import json

    body = read_capped(resp, cap, what, policy)
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as e:  # RecursionError: nested past the parser's depth
        raise IntegrityError(f"{what}: malformed JSON: {e}") from e
