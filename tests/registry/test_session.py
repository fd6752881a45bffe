"""The HTTP session honours the proxy and CA environment as requests does, read per origin."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from loopback import LoopbackHTTPServer

from toolfetch.registry.session import Http


class _Recorder(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.lines.append(self.requestline)  # type: ignore[attr-defined]
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[LoopbackHTTPServer]:
    server = LoopbackHTTPServer(_Recorder)
    server.lines = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_http_proxy_from_the_environment_is_used(recorder: LoopbackHTTPServer,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = f"http://127.0.0.1:{recorder.server_address[1]}"
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy)
    http = Http()
    for _ in range(2):  # the second request uses the origin's remembered settings
        resp = http.request("GET", "http://registry.invalid:5000/v2/", timeout=5)
        assert resp.status_code == 200 and resp.content == b"ok"
    # a forward proxy receives the absolute URL: the request went through it
    assert recorder.lines == ["GET http://registry.invalid:5000/v2/ HTTP/1.1"] * 2  # type: ignore[attr-defined]


def test_no_proxy_bypasses_the_proxy(recorder: LoopbackHTTPServer,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # discard port: fails if used
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    url = f"http://127.0.0.1:{recorder.server_address[1]}/v2/"
    resp = Http().request("GET", url, timeout=5)
    assert resp.status_code == 200
    assert recorder.lines == ["GET /v2/ HTTP/1.1"]  # type: ignore[attr-defined]


def test_ca_bundle_from_the_environment_verifies_remote_hosts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    sent: list[object] = []
    http = Http()
    monkeypatch.setattr(http.session, "request",
                        lambda method, url, **kw: sent.append((url, kw["verify"])))
    http.request("GET", "https://registry.example/v2/")
    http.request("GET", "https://127.0.0.1:5000/v2/")  # loopback: unverified, as docker
    http.request("GET", "https://registry.example/v2/", verify=False)  # the probe's override
    assert sent == [("https://registry.example/v2/", str(bundle)),
                    ("https://127.0.0.1:5000/v2/", False),
                    ("https://registry.example/v2/", False)]
