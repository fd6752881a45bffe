"""A loopback HTTP server for release assets, with the faults real release hosts have.

``AssetServer()`` serves ``files`` (path -> bytes) and ``disk_files`` (path -> a file on disk,
streamed, for artifacts too large to hold in memory) with ``Range`` support, records every
request (path, headers) and counts the body bytes sent per path (``sent``).  Per path one
can require Basic credentials, redirect elsewhere (e.g. to a second AssetServer: another
origin), or cut the body after N bytes for the first K requests. Loopback only.
"""

from __future__ import annotations

import base64
import re
import shutil
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from loopback import LoopbackHTTPServer


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


@dataclass
class Rules:
    basic: dict[str, tuple[str, str]] = field(default_factory=dict)  # path -> (user, password)
    redirects: dict[str, str] = field(default_factory=dict)  # path -> absolute URL
    cuts: dict[str, list[int]] = field(default_factory=dict)  # path -> [after N bytes, times]


class AssetServer:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.disk_files: dict[str, Path] = {}
        self.sent: dict[str, int] = {}
        self.rules = Rules()
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.server = LoopbackHTTPServer(_Handler)
        self.server.assets = self  # type: ignore[attr-defined]
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def requests(self, path: str | None = None) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if path is None or s.path == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
               head: bool = False) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _serve(self, head: bool) -> None:
        assets: AssetServer = self.server.assets  # type: ignore[attr-defined]
        path = self.path.split("?")[0]
        with assets.lock:
            assets.seen.append(Seen(path, dict(self.headers.items())))
            rules = assets.rules
            cut = rules.cuts.get(path)
            cut_at = None
            if cut and cut[1] > 0:
                cut[1] -= 1
                cut_at = cut[0]
        if path in rules.redirects:
            self._reply(302, headers={"Location": rules.redirects[path]}, head=head)
            return
        if path in rules.basic:
            user, password = rules.basic[path]
            want = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            if self.headers.get("Authorization") != want:
                self._reply(401, b"unauthorized", {"WWW-Authenticate": 'Basic realm="x"'},
                            head)
                return
        disk = assets.disk_files.get(path)
        if disk is not None:
            self._send_file(assets, path, disk, head)
            return
        data = assets.files.get(path)
        if data is None:
            self._reply(404, b"not found", head=head)
            return
        start, status, extra = 0, 200, {}
        m = _RANGE.fullmatch(self.headers.get("Range", ""))
        if m:
            start = int(m.group(1))
            if start >= len(data):
                self._reply(416, headers={"Content-Range": f"bytes */{len(data)}"}, head=head)
                return
            status = 206
            extra["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        body = data[start:]
        self.send_response(status)
        for k, v in extra.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if head:
            return
        if cut_at is not None and cut_at < len(body):
            self.wfile.write(body[:cut_at])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)  # the cut: the client sees a short body
            return
        self.wfile.write(body)
        with assets.lock:
            assets.sent[path] = assets.sent.get(path, 0) + len(body)

    def _send_file(self, assets: AssetServer, path: str, disk: Path, head: bool) -> None:
        size = disk.stat().st_size
        start, status, extra = 0, 200, {}
        m = _RANGE.fullmatch(self.headers.get("Range", ""))
        if m:
            start = int(m.group(1))
            if start >= size:
                self._reply(416, headers={"Content-Range": f"bytes */{size}"}, head=head)
                return
            status = 206
            extra["Content-Range"] = f"bytes {start}-{size - 1}/{size}"
        self.send_response(status)
        for k, v in extra.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(size - start))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if head:
            return
        with disk.open("rb") as f:
            f.seek(start)
            shutil.copyfileobj(f, self.wfile, 1 << 20)
        with assets.lock:
            assets.sent[path] = assets.sent.get(path, 0) + size - start
