"""A loopback HTTP server answering from a table: the fake registry, object store, token
service or asset host of a hostile-input test, one line per route.

``Canned()`` serves ``routes`` (a path, without the query, -> a :class:`Reply` or a function
of the request giving one) and records every request (:class:`Hit`). A :class:`Reply` can
send a ``Content-Length`` that does not match its body, or trickle its body byte by byte, as
broken and hostile servers do. Loopback only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from loopback import LoopbackHTTPServer


@dataclass(frozen=True)
class Hit:
    method: str
    path: str
    headers: dict[str, str]


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    length: int | None = None  # the Content-Length sent (default: the body's)
    drip: float = 0.0  # seconds between single bytes of the body (0: all at once)


Route = Reply | Callable[[Hit], Reply]


class Canned:
    def __init__(self, routes: dict[str, Route] | None = None) -> None:
        self.routes: dict[str, Route] = dict(routes or {})
        self.hits: list[Hit] = []
        self.lock = threading.Lock()
        self.server = LoopbackHTTPServer(_Handler)
        self.server.canned = self  # type: ignore[attr-defined]
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://{self.host}{path}"

    def seen(self, path: str | None = None) -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if path is None or h.path == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Canned:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._answer()

    def do_HEAD(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self._answer()

    def _answer(self) -> None:
        canned: Canned = self.server.canned  # type: ignore[attr-defined]
        hit = Hit(self.command, self.path.partition("?")[0], dict(self.headers.items()))
        with canned.lock:
            canned.hits.append(hit)
            route = canned.routes.get(hit.path)
        reply = Reply(404, b"not found") if route is None else (
            route if isinstance(route, Reply) else route(hit))
        self.send_response(reply.status)
        for k, v in reply.headers.items():
            self.send_header(k, v)
        length = len(reply.body) if reply.length is None else reply.length
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if self.command == "HEAD":
            return
        try:
            if reply.drip:
                for i in range(len(reply.body)):
                    self.wfile.write(reply.body[i:i + 1])
                    self.wfile.flush()
                    time.sleep(reply.drip)
            else:
                self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            return
        if length != len(reply.body):
            self.close_connection = True
