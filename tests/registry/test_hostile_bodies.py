"""Issue 14.12: every JSON answer of a registry is read capped (per page, decoded size,
``Content-Encoding`` included), so a hostile registry cannot drive toolfetch's memory up.

A loopback server streams endless tag lists, gzip bombs and oversized referrer indexes without
a Content-Length; toolfetch runs in a subprocess that reports its own peak RSS.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import ocitest
import pytest
from tf import assert_error, assert_ok, tf_main

RSS_LIMIT_KIB = 150 * 1024  # toolfetch itself needs ~50 MiB; a 4 MiB cap adds little


def gzip_bomb_chunks(inflated: int) -> Iterator[bytes]:
    """A gzip stream of ``inflated`` zero bytes, produced lazily."""
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"\0" * (1 << 20)
    for _ in range(inflated >> 20):
        out = z.compress(block)
        if out:
            yield out
    yield z.flush()


def endless_tags() -> Iterator[bytes]:
    yield b'{"name": "big", "tags": ['
    item = b'"' + b"t" * 1000 + b'",'
    while True:
        yield item * 1000


class _Hostile(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # the body ends when the connection does: no length

    def log_message(self, *args: Any) -> None:
        pass

    def _stream(self, chunks: Iterator[bytes], headers: dict[str, str]) -> None:
        self.send_response(200)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        try:
            for chunk in chunks:
                self.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading: what it must do

    def do_GET(self) -> None:
        path = self.path.partition("?")[0]
        gz = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        if path == "/v2/":
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
        elif path == "/v2/big/tags/list":
            self._stream(endless_tags(), {"Content-Type": "application/json"})
        elif path == "/v2/bomb/tags/list":
            self._stream(gzip_bomb_chunks(2 << 30), gz)
        elif path.startswith("/v2/bomb/manifests/"):
            self._stream(gzip_bomb_chunks(2 << 30), {
                **gz, "Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        elif path.startswith("/v2/big/referrers/"):
            self._stream(endless_tags(),
                         {"Content-Type": "application/vnd.oci.image.index.v1+json"})
        elif path == "/v2/small/tags/list":  # a sane gzip-encoded answer still works
            body = zlib.compress(json.dumps({"name": "small", "tags": ["1.0", "2.0"]}).encode())
            self.send_response(200)
            self.send_header("Content-Encoding", "deflate")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()


@pytest.fixture
def hostile() -> Iterator[str]:
    with ocitest.loopback_server(_Hostile) as host:
        yield host


# VmHWM, not ru_maxrss: Linux folds the forked parent's RSS into ru_maxrss at exec.
PROBE = """
import sys
from toolfetch.cli import main
rc = main(sys.argv[1:])
hwm = [l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM:")][0]
sys.stderr.write(f"MAXRSS {hwm}\\n")
sys.exit(rc)
"""


def run_measured(*args: str) -> tuple[int, str, int]:
    p = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                       timeout=120)
    lines = p.stderr.splitlines()
    rss = int(lines[-1].split()[1])
    return p.returncode, "\n".join(lines[:-1]), rss


@pytest.mark.parametrize("repo", ["big", "bomb"])
def test_a_huge_tag_list_is_refused_in_bounded_memory(hostile: str, repo: str) -> None:
    code, err, rss = run_measured("tags", f"{hostile}/{repo}")
    assert code == 3, err
    assert f"tags of {hostile}/{repo}" in err and "larger than" in err
    assert rss < RSS_LIMIT_KIB, f"peak RSS {rss} KiB"


def test_a_gzip_bomb_manifest_is_refused_in_bounded_memory(hostile: str) -> None:
    code, err, rss = run_measured("inspect", f"{hostile}/bomb:1")
    assert code == 3 and f"{hostile}/bomb" in err and "larger than" in err, err
    assert rss < RSS_LIMIT_KIB, f"peak RSS {rss} KiB"


def test_an_endless_referrers_answer_is_refused(hostile: str) -> None:
    subject = "sha256:" + "a" * 64
    code, err, rss = run_measured("referrers", f"{hostile}/big@{subject}")
    assert code == 3 and "larger than" in err, err
    assert rss < RSS_LIMIT_KIB, f"peak RSS {rss} KiB"


def test_a_compressed_answer_within_the_cap_is_read(hostile: str) -> None:
    r = tf_main("tags", f"{hostile}/small")
    assert_ok(r)
    assert r.stdout.split() == ["1.0", "2.0"]
    assert_error(tf_main("tags", f"{hostile}/nothing"), 4)
