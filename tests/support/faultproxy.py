"""Fault injection on loopback: a reverse proxy in front of a registry, plus test helpers.

:class:`FaultProxy` relays every request to the registry behind it and applies the first
matching :class:`Rule`: answer a status (with ``Retry-After``), reset the connection, hang,
cut the body after N bytes, send a short or padded body, ignore or garble ``Range``, redirect
(to a second listener on another port standing in for object storage, or to itself), set
cookies or ``Link`` headers, throttle. It records what it saw (headers included) and how many
body bytes it relayed, so tests can assert that ``Authorization`` never reached the redirect
target and that resumes relayed well under twice the blob.

Also here: :func:`lock_entry`/:func:`write_lockfile` (a lockfile for pushed artifacts,
without running ``toolfetch lock``) and :func:`toolfetch_proc` (the CLI as a real
subprocess); the in-process runner is ``tf.tf_main``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import ocitest
from loopback import LoopbackHTTPServer

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-authenticate", "content-length"}


@dataclass
class Rule:
    """One fault. ``action`` is one of:

    ``status`` (answer ``status`` with ``retry_after``/``body``, upstream untouched),
    ``reset`` (close the connection without answering), ``hang`` (wait ``delay`` s, then
    relay), ``cut`` (relay headers, then only ``keep`` body bytes and drop the connection),
    ``cut_reset`` (as ``cut``, but drop it with a reset: the client's read raises),
    ``short`` (honest headers for only ``keep`` bytes), ``pad`` (append ``body``),
    ``ignore_range`` (drop the request's Range: a full 200), ``bad_range`` (answer a ranged
    request with a 206 whose Content-Range starts at 0), ``redirect`` (``status`` 307 to
    ``target``: ``"storage"``, ``"same"`` or a URL), ``relay`` (no fault), ``link``
    (add ``Link: <link>; rel="next"``), ``slow`` (``rate`` bytes per second), ``replace``
    (serve ``body`` instead, chunked when ``chunked``).
    """

    action: str
    path: str = ""  # regex searched in the request path
    method: str | None = "GET"
    times: int | None = 1  # None: every matching request
    ranged: bool | None = None  # only requests with (True) / without (False) a Range header
    status: int = 503
    retry_after: str | None = None
    keep: int = 0
    delay: float = 0.0
    rate: int = 0
    body: bytes = b""
    target: str = "storage"
    link: str = ""
    chunked: bool = False
    content_type: str | None = None
    server: str = "proxy"  # or "storage"
    set_cookie: bool = False  # also add a Set-Cookie header to the answer
    headers: dict[str, str] = field(default_factory=dict)  # extra headers for ``status``
    hits: int = 0

    def matches(self, server: str, method: str, path: str, headers: Mapping[str, str]) -> bool:
        if server != self.server:
            return False
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method is not None and method != self.method:
            return False
        if self.ranged is not None and ("range" in headers) != self.ranged:
            return False
        return re.search(self.path, path) is not None


@dataclass
class Seen:
    server: str  # "proxy" or "storage"
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    status: int = 0
    sent: int = 0  # body bytes written
    action: str = ""


class FaultProxy:
    """``FaultProxy(upstream_host, storage=callable)``; ``host`` is what clients use."""

    def __init__(self, upstream: str, storage: Callable[[str], bytes | None] | None = None
                 ) -> None:
        self.upstream = upstream
        self.storage_source = storage
        self.rules: list[Rule] = []
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self._servers = [self._serve("proxy"), self._serve("storage")]
        self.port = int(self._servers[0].server_address[1])
        self.storage_port = int(self._servers[1].server_address[1])

    def _serve(self, kind: str) -> LoopbackHTTPServer:
        server = LoopbackHTTPServer(_Handler)
        server.fault = self  # type: ignore[attr-defined]
        server.kind = kind  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        return server

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def storage_host(self) -> str:
        return f"127.0.0.1:{self.storage_port}"

    def add(self, action: str, path: str = "/blobs/", **kw: Any) -> Rule:
        rule = Rule(action, path, **kw)
        with self.lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()
            self.seen.clear()

    def close(self) -> None:
        for s in self._servers:
            s.shutdown()
            s.server_close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what happened ----------------------------------------------------------------------
    def requests(self, path: str = "", server: str = "proxy", method: str | None = "GET"
                 ) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.server == server and re.search(path, s.path)
                    and (method is None or s.method == method)]

    def relayed(self, path: str = "/blobs/", server: str | None = None) -> int:
        with self.lock:
            return sum(s.sent for s in self.seen if re.search(path, s.path)
                       and (server is None or s.server == server))

    def _rule_for(self, server: str, method: str, path: str,
                  headers: Mapping[str, str]) -> Rule | None:
        with self.lock:
            for rule in self.rules:
                if rule.matches(server, method, path, headers):
                    rule.hits += 1
                    return rule
        return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LoopbackHTTPServer
    rule: Rule | None = None
    timeout = 10  # a client that promises a body and sends none must not hang a test

    def log_message(self, format: str, *args: Any) -> None:
        pass

    @property
    def fault(self) -> FaultProxy:
        return self.server.fault  # type: ignore[attr-defined,no-any-return]

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    # -- plumbing ---------------------------------------------------------------------------
    def _handle(self) -> None:
        self.close_connection = True
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        seen = Seen(self.server.kind, self.command, self.path, headers)  # type: ignore
        with self.fault.lock:
            self.fault.seen.append(seen)
        rule = self.fault._rule_for(seen.server, self.command, self.path, headers)
        self.rule = rule
        seen.action = rule.action if rule else ""
        try:
            if self.server.kind == "storage":  # type: ignore[attr-defined]
                self._storage(seen, rule)
            else:
                self._proxy(seen, rule, body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _reset(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            self.connection.close()

    def _pre(self, seen: Seen, rule: Rule | None) -> bool:
        """Faults answered without upstream; True when the request is done."""
        if rule is None:
            return False
        if rule.action == "status":
            extra = {"Retry-After": rule.retry_after} if rule.retry_after else {}
            self._respond(seen, rule.status, {"Content-Type": "application/json", **extra,
                                              **rule.headers}, rule.body)
            return True
        if rule.action == "reset":
            seen.status = -1
            self._reset()
            return True
        if rule.action == "hang":
            time.sleep(rule.delay)
        if rule.action == "redirect":
            if rule.target == "storage":
                digest = self.path.rsplit("/", 1)[-1].split("?")[0]
                location = (f"http://{self.fault.storage_host}/storage/{digest}"
                            "?X-Amz-Signature=presigned-secret")
            elif rule.target == "same":
                location = self.path + ("&" if "?" in self.path else "?") + "redirected=1"
            else:
                location = rule.target
            self._respond(seen, rule.status if rule.status in (301, 302, 303, 307, 308)
                          else 307, {"Location": location}, b"")
            return True
        return False

    def _proxy(self, seen: Seen, rule: Rule | None, body: bytes) -> None:
        if self._pre(seen, rule):
            return
        fwd = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP
               and k.lower() != "host"}
        if rule is not None and rule.action == "ignore_range":
            fwd = {k: v for k, v in fwd.items() if k.lower() != "range"}
        conn = http.client.HTTPConnection(self.fault.upstream, timeout=30)
        try:
            conn.request(self.command, self.path, body=body or None, headers=fwd)
            up = conn.getresponse()
            data = up.read()
            out = {k: v for k, v in up.getheaders() if k.lower() not in HOP_BY_HOP}
            self._emit(seen, rule, up.status, out, data)
        finally:
            conn.close()

    def _storage(self, seen: Seen, rule: Rule | None) -> None:
        if self._pre(seen, rule):
            return
        digest = self.path.split("?")[0].rsplit("/", 1)[-1]
        source = self.fault.storage_source
        data = source(digest) if source is not None else None
        if data is None:
            self._respond(seen, 404, {}, b"")
            return
        headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
        m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if m and not (rule is not None and rule.action == "ignore_range"):
            start = int(m.group(1))
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            self._emit(seen, rule, 206, headers, data[start:])
        else:
            self._emit(seen, rule, 200, headers, data)

    def _emit(self, seen: Seen, rule: Rule | None, status: int, headers: dict[str, str],
              data: bytes) -> None:
        action = rule.action if rule else ""
        if action == "bad_range" and status == 206:
            headers["Content-Range"] = f"bytes 0-{len(data) - 1}/{len(data) + 1}"
        if action == "link":
            headers["Link"] = f'<{rule.link}>; rel="next"'  # type: ignore[union-attr]
        if action == "replace":
            assert rule is not None
            data = rule.body
            if rule.content_type:
                headers["Content-Type"] = rule.content_type
            for k in [k for k in headers if k.lower() in ("docker-content-digest", "etag")]:
                del headers[k]
            if rule.chunked:
                self._chunked(seen, status, headers, data)
                return
        if action == "pad":
            assert rule is not None
            data = data + (rule.body or b"\0" * 16)
        if action == "short":
            assert rule is not None
            data = data[: rule.keep]
        if action in ("cut", "cut_reset"):
            assert rule is not None
            self._respond(seen, status, headers, data, stop_after=rule.keep,
                          reset=action == "cut_reset")
            return
        rate = rule.rate if rule is not None and action == "slow" else 0
        self._respond(seen, status, headers, data, rate=rate)

    def _respond(self, seen: Seen, status: int, headers: Mapping[str, str], data: bytes,
                 stop_after: int | None = None, rate: int = 0, reset: bool = False) -> None:
        seen.status = status
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        if self.rule is not None and self.rule.set_cookie:
            self.send_header("Set-Cookie", f"session={self.server.kind}; Path=/")  # type: ignore
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command == "HEAD":
            return
        payload = data if stop_after is None else data[:stop_after]
        step = max(1, rate // 20) if rate else 64 * 1024
        for i in range(0, len(payload), step):
            piece = payload[i:i + step]
            self.wfile.write(piece)
            self.wfile.flush()
            seen.sent += len(piece)
            if rate:
                time.sleep(len(piece) / rate)
        if reset:
            time.sleep(0.05)  # the bytes sent get there first; then the read fails
            self._reset()
        elif stop_after is not None:  # FIN, not RST: the client keeps what it already received
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_WR)

    def _chunked(self, seen: Seen, status: int, headers: Mapping[str, str], data: bytes) -> None:
        seen.status = status
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        step = 256 * 1024
        for i in range(0, len(data), step):
            piece = data[i:i + step]
            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            seen.sent += len(piece)
        self.wfile.write(b"0\r\n\r\n")


# ------------------------------------------------------------------------------------------
# Project helpers
# ------------------------------------------------------------------------------------------


def registry_storage(reg: ocitest.Registry) -> Callable[[str], bytes | None]:
    """A storage callable serving blobs straight from the registry's files."""

    def read(digest: str) -> bytes | None:
        try:
            return ocitest.blob_path(reg, digest).read_bytes()
        except (OSError, ValueError):
            return None

    return read


def lock_entry(ref: str, art: ocitest.Artifact, path: str,
               unpack: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One lockfile platform entry for an artifact pushed as ``ref`` (``host/repo:tag``)."""
    from toolfetch.oci.formats import detect_format

    layers = []
    for layer in art.layers:
        title = (layer.get("annotations") or {}).get(ocitest.TITLE)
        fmt = (unpack or {}).get(layer["digest"]) or detect_format(
            layer["mediaType"], title, art.blobs[layer["digest"]][:512]).name
        entry = {"digest": layer["digest"], "mediaType": layer["mediaType"],
                 "size": layer["size"], "unpack": fmt}
        if title is not None:
            entry["title"] = title
        layers.append(entry)
    return {"layers": layers, "manifest": art.digest, "path": path, "ref": ref}


def write_lockfile(path: Path, tools: Mapping[str, dict[str, Any]],
                   mirrors: Mapping[str, Sequence[str]] | None = None) -> Path:
    """``tools``: name -> :func:`lock_entry` (locked under ``"*"``, every platform)."""
    data: dict[str, Any] = {
        "tools": {name: {"path": e["path"], "platforms": {"*": e}, "ref": e["ref"]}
                  for name, e in tools.items()},
        "version": 1,
    }
    if mirrors:
        data["mirrors"] = {h: list(m) for h, m in mirrors.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


def push_tool(reg: ocitest.Registry, repo: str, files: Mapping[str, bytes], *,
              host: str | None = None, tag: str = "1",
              exe: str | None = None) -> tuple[ocitest.Artifact, dict[str, Any]]:
    """Push an ORAS-style artifact; returns it and its lock entry (ref on ``host``)."""
    art = ocitest.oras_artifact(files)
    ocitest.push_artifact(reg, repo, tag, art)
    ref = f"{host or reg.host}/{repo}:{tag}"
    return art, lock_entry(ref, art, exe or next(iter(files)))


def toolfetch_proc(*argv: str, env: Mapping[str, str] | None = None,
                   **kw: Any) -> subprocess.Popen[bytes]:
    """``python -m toolfetch ARGV`` as a subprocess (stdout/stderr piped)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.Popen([sys.executable, "-m", "toolfetch", *argv], env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
