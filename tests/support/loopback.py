"""The one HTTP server class behind the tests' own fake servers (asset host, token service,
fault proxy, canned handlers).

``http.server``'s default ``handle_error`` prints a traceback to whatever ``sys.stderr`` is at
the time.  While ``tf.tf_main`` runs the CLI in-process that is the CLI's captured stderr, so a
client that closes a kept-alive connection (as toolfetch does after a 404) made a server
thread's ``ConnectionResetError`` look like a traceback from toolfetch.  Here a peer hanging
up is not an error, and any other server fault goes to the process's real stderr (pytest
still shows it), never into what the test asserts on.
"""

from __future__ import annotations

import sys
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_HANG_UPS = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class LoopbackHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: Any) -> None:
        super().__init__(("127.0.0.1", 0), handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], _HANG_UPS):
            return
        out = sys.__stderr__
        if out is not None:
            print(f"test server {self.server_address}: error serving {client_address}",
                  file=out)
            traceback.print_exc(file=out)


class QuietHandler(BaseHTTPRequestHandler):
    """A handler that logs nothing and answers with :meth:`send` (the fake registries')."""

    def log_message(self, *args: Any) -> None:
        pass

    def send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
             content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
