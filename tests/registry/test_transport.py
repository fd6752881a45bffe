"""Transport under faults: retries, Retry-After, resume, redirects, size limits, pagination.

A :class:`faultproxy.FaultProxy` on loopback sits between toolfetch and a real Distribution;
its second port plays object storage for redirected blobs.
"""

from __future__ import annotations

import email.utils
import io
import json
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import ocitest
import pytest
from faultproxy import FaultProxy, lock_entry, push_tool, registry_storage, write_lockfile
from tf import tf_main

from toolfetch.core.errors import IntegrityError, UnreachableError
from toolfetch.registry import client as registry_module
from toolfetch.registry.client import RegistryClient
from toolfetch.registry.transport import RetryPolicy, Transport

BLOB_SIZE = 512 * 1024
USER, PASSWORD = "bob", "proxy-test-secret"


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLFETCH_RETRY_DELAY", "0.01")


@pytest.fixture(scope="module")
def blob() -> bytes:
    return random.Random(7).randbytes(BLOB_SIZE)


@pytest.fixture
def proxy(registry: ocitest.Registry) -> Iterator[FaultProxy]:
    with FaultProxy(registry.host, storage=registry_storage(registry)) as p:
        yield p


@pytest.fixture(scope="module")
def htreg(tmp_path_factory: pytest.TempPathFactory, need_registry: None
          ) -> Iterator[ocitest.Registry]:
    reg = ocitest.Registry(workdir=tmp_path_factory.mktemp("ht"), htpasswd=(USER, PASSWORD))
    try:
        yield reg
    finally:
        reg.close()


@pytest.fixture
def tool(registry: ocitest.Registry, proxy: FaultProxy, unique_repo: str, blob: bytes,
         tmp_path: Path) -> Path:
    """A lockfile with tool ``big`` (one raw BLOB_SIZE layer) reached through the proxy."""
    _, entry = push_tool(registry, unique_repo, {"big": blob}, host=proxy.host)
    return write_lockfile(tmp_path / "tools.lock.json", {"big": entry})


def fetch(lockfile: Path, *extra: str) -> Any:
    return tf_main("fetch", "--lockfile", str(lockfile), *extra)


def cache_entries(kind: str) -> list[Path]:
    root = Path(os.environ["TOOLFETCH_CACHE_DIR"]) / kind
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def assert_fetched(lockfile: Path, blob: bytes) -> None:
    tree = json.loads(tf_main("fetch", "--lockfile", str(lockfile), "--json").stdout)[0]["path"]
    assert Path(tree).read_bytes() == blob


# ------------------------------------------------------------------------------------------
# resume
# ------------------------------------------------------------------------------------------


def test_resume_after_connection_cuts(proxy: FaultProxy, tool: Path, blob: bytes) -> None:
    proxy.add("cut", keep=150_000, ranged=False)
    proxy.add("cut", keep=100_000, ranged=True)
    r = fetch(tool)
    assert r.returncode == 0, r
    gets = proxy.requests("/blobs/")
    assert [g.headers.get("range") for g in gets] == [None, "bytes=150000-", "bytes=250000-"]
    assert proxy.relayed() < 1.3 * BLOB_SIZE  # well under twice the blob
    assert_fetched(tool, blob)


def test_short_body_resumes(proxy: FaultProxy, tool: Path, blob: bytes) -> None:
    proxy.add("short", keep=200_000)  # honest Content-Length, just too few bytes
    r = fetch(tool)
    assert r.returncode == 0, r
    assert [g.headers.get("range") for g in proxy.requests("/blobs/")] == [None, "bytes=200000-"]
    assert proxy.relayed() == BLOB_SIZE
    assert_fetched(tool, blob)


def test_ignored_range_restarts_cleanly(proxy: FaultProxy, tool: Path, blob: bytes) -> None:
    proxy.add("cut", keep=100_000, ranged=False)
    proxy.add("ignore_range", ranged=True)  # the registry answers 200 with the whole blob
    r = fetch(tool)
    assert r.returncode == 0, r
    assert [g.status for g in proxy.requests("/blobs/")] == [200, 200]
    assert_fetched(tool, blob)


def test_mismatched_content_range_restarts(proxy: FaultProxy, tool: Path, blob: bytes) -> None:
    proxy.add("cut", keep=100_000, ranged=False)
    proxy.add("bad_range", ranged=True)
    r = fetch(tool)
    assert r.returncode == 0, r
    assert "mismatched range" in r.stderr
    gets = proxy.requests("/blobs/")
    assert [g.headers.get("range") for g in gets] == [None, "bytes=100000-", None]
    assert_fetched(tool, blob)


def test_interruptions_are_finite(proxy: FaultProxy, tool: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLFETCH_RETRIES", "3")
    proxy.add("cut", keep=1000, times=None)
    r = fetch(tool)
    assert r.returncode == 6, r
    assert "3 interruptions" in r.stderr
    assert len(proxy.requests("/blobs/")) == 3
    assert cache_entries("blobs") == [] and cache_entries("trees") == []


# ------------------------------------------------------------------------------------------
# integrity of sizes
# ------------------------------------------------------------------------------------------


def test_longer_blob_than_declared_is_integrity_failure(proxy: FaultProxy, tool: Path) -> None:
    proxy.add("pad", body=b"extra bytes")
    r = fetch(tool)
    assert r.returncode == 3, r
    assert "size mismatch" in r.stderr
    assert len(proxy.requests("/blobs/")) == 1  # not retried: the bytes are wrong
    assert cache_entries("blobs") == [] and cache_entries("trees") == []


def test_always_short_blob_is_integrity_failure(proxy: FaultProxy, tool: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLFETCH_RETRIES", "2")
    proxy.add("short", keep=1000, times=None, ranged=False)
    proxy.add("status", status=416, times=None, ranged=True)
    r = fetch(tool)
    assert r.returncode == 3 and "size mismatch" in r.stderr and cache_entries("blobs") == [], r


@pytest.mark.parametrize("chunked", [False, True])
def test_manifest_size_cap(proxy: FaultProxy, registry: ocitest.Registry, unique_repo: str,
                           tmp_path: Path, chunked: bool) -> None:
    push_tool(registry, unique_repo, {"t": b"x"})
    huge = b'{"schemaVersion": 2, "pad": "' + b"x" * (5 << 20) + b'"}'
    proxy.add("replace", path="/manifests/", body=huge, chunked=chunked,
              content_type=ocitest.OCI_MANIFEST, times=None)
    (tmp_path / "tools.yaml").write_text(
        f"tools:\n  t:\n    ref: {proxy.host}/{unique_repo}:1\n    path: t\n")
    r = tf_main("lock", "--lockfile", str(tmp_path / "tools.lock.json"))
    assert r.returncode == 3, r
    assert "larger than" in r.stderr


# ------------------------------------------------------------------------------------------
# retries
# ------------------------------------------------------------------------------------------


def test_retries_5xx_then_succeeds(proxy: FaultProxy, tool: Path, blob: bytes) -> None:
    proxy.add("status", status=503, times=1)
    proxy.add("status", status=500, times=1)
    proxy.add("status", status=408, times=1)
    proxy.add("reset", times=1)
    r = fetch(tool)
    assert r.returncode == 0, r
    assert [g.status for g in proxy.requests("/blobs/")] == [503, 500, 408, -1, 200]
    assert_fetched(tool, blob)


def test_retry_after_is_honoured(proxy: FaultProxy, tool: Path) -> None:
    proxy.add("status", status=429, retry_after="1")
    start = time.monotonic()
    r = fetch(tool)
    assert r.returncode == 0, r
    assert time.monotonic() - start >= 0.95
    assert [g.status for g in proxy.requests("/blobs/")] == [429, 200]


def test_retry_after_is_capped(proxy: FaultProxy, tool: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLFETCH_RETRY_AFTER_MAX", "0.2")
    proxy.add("status", status=503, retry_after="3600")
    future = email.utils.format_datetime(
        __import__("datetime").datetime.now(__import__("datetime").timezone.utc)
        .replace(microsecond=0) + __import__("datetime").timedelta(hours=1), usegmt=True)
    proxy.add("status", status=503, retry_after=future)
    start = time.monotonic()
    r = fetch(tool)
    assert r.returncode == 0, r
    assert time.monotonic() - start < 3


def test_retry_after_http_date() -> None:
    policy = RetryPolicy(max_retry_after=30)
    when = email.utils.formatdate(time.time() + 10, usegmt=True)
    assert 8 <= policy.delay(1, when) <= 10
    assert policy.delay(1, email.utils.formatdate(time.time() - 100, usegmt=True)) == 0
    assert policy.delay(1, "120") == 30  # capped
    assert 0 < policy.delay(1, "soon") <= policy.base_delay  # unparsable: backoff
    backoffs = [RetryPolicy(base_delay=1, max_delay=8).delay(n) for n in (1, 2, 3, 4, 5, 6)]
    assert [0.5 <= backoffs[0] <= 1, 1 <= backoffs[1] <= 2, 2 <= backoffs[2] <= 4,
            4 <= backoffs[3] <= 8, 4 <= backoffs[5] <= 8] == [True] * 5


def test_gives_up_after_finite_attempts(proxy: FaultProxy, tool: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLFETCH_RETRIES", "3")
    proxy.add("status", status=503, times=None)
    r = fetch(tool)
    assert r.returncode == 6, r
    assert "HTTP 503" in r.stderr and proxy.host in r.stderr
    assert len(proxy.requests("/blobs/")) == 3


@pytest.mark.parametrize(("status", "code"), [(404, 4), (403, 5), (401, 5)])
def test_never_retries_404_403_401(proxy: FaultProxy, tool: Path, status: int,
                                   code: int) -> None:
    proxy.add("status", status=status, times=None)
    r = fetch(tool)
    assert r.returncode == code, r
    assert len(proxy.requests("/blobs/")) == 1


def test_read_timeout_is_retried(proxy: FaultProxy, tool: Path, blob: bytes,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLFETCH_TIMEOUT", "0.3")
    proxy.add("hang", delay=1.0)
    r = fetch(tool)
    assert r.returncode == 0, r
    assert len(proxy.requests("/blobs/")) == 2
    assert_fetched(tool, blob)


def test_connection_refused_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    dead = f"127.0.0.1:{ocitest.free_port()}"
    monkeypatch.setenv("TOOLFETCH_RETRY_DELAY", "0.5")  # 5 attempts would take > 3.5 s
    t = Transport()
    start = time.monotonic()
    with pytest.raises(UnreachableError, match=r"after 2 attempts \(connection refused\)"):
        t.request("GET", dead, "/v2/", scope="")
    assert time.monotonic() - start < 2


def test_dead_mirror_is_skipped_quickly(proxy: FaultProxy, tool: Path, blob: bytes,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    dead = f"127.0.0.1:{ocitest.free_port()}"
    monkeypatch.setenv("TOOLFETCH_RETRY_DELAY", "0.5")
    monkeypatch.setenv("TOOLFETCH_MIRRORS", f"{proxy.host}={dead}/prefix")
    start = time.monotonic()
    r = fetch(tool)
    assert r.returncode == 0, r
    assert time.monotonic() - start < 3
    assert dead in r.stderr and "trying the next source" in r.stderr
    assert_fetched(tool, blob)


def test_request_bodies_are_resent_on_retry(proxy: FaultProxy, unique_repo: str) -> None:
    data = b"uploaded bytes " * 100
    digest = ocitest.sha256_digest(data)
    t = Transport()
    scope = f"repository:{unique_repo}:pull,push"
    with t.request("POST", proxy.host, f"/v2/{unique_repo}/blobs/uploads/", scope=scope) as r:
        assert r.status_code == 202
        loc = urlsplit(r.headers["Location"])
        location = f"{loc.path}?{loc.query}" if loc.query else loc.path
    proxy.add("status", path="/uploads/", method="PUT", status=503, times=2)
    sep = "&" if "?" in location else "?"
    with t.request("PUT", proxy.host, f"{location}{sep}digest={digest}", scope=scope,
                   data=io.BytesIO(data), headers={"Content-Type": "application/octet-stream",
                                                   "Content-Length": str(len(data))}) as r:
        assert r.status_code == 201, r.text
    puts = proxy.requests("/uploads/", method="PUT")
    assert [p.status for p in puts] == [503, 503, 201]
    assert all(p.headers["content-length"] == str(len(data)) for p in puts)
    with t.request("GET", proxy.host, f"/v2/{unique_repo}/blobs/{digest}", scope=scope) as r:
        assert r.content == data


# ------------------------------------------------------------------------------------------
# redirects: Authorization stays home, no netrc, no cookies
# ------------------------------------------------------------------------------------------


def test_redirects_never_leak_authorization(htreg: ocitest.Registry, unique_repo: str,
                                            blob: bytes, tmp_path: Path) -> None:
    netrc = Path.home() / ".netrc"
    netrc.write_text("machine 127.0.0.1 login netrc-user password netrc-password\n")
    netrc.chmod(0o600)
    (Path(os.environ["DOCKER_CONFIG"]) / "config.json").write_text(json.dumps(
        {"auths": {htreg.host: {"username": USER, "password": PASSWORD}}}))
    with FaultProxy(htreg.host, storage=registry_storage(htreg)) as proxy:
        _, entry = push_tool(htreg, unique_repo, {"big": blob}, host=proxy.host)
        (tmp_path / "auths").mkdir()
        (Path(os.environ["DOCKER_CONFIG"]) / "config.json").write_text(json.dumps(
            {"auths": {proxy.host: {"username": USER, "password": PASSWORD}}}))
        lock = write_lockfile(tmp_path / "tools.lock.json", {"big": entry})
        proxy.add("relay", set_cookie=True)  # the registry tries to set a cookie on its 401
        proxy.add("redirect", target="same", set_cookie=True)  # same origin: keeps auth
        proxy.add("redirect", target="storage", times=None, set_cookie=True)  # another port
        proxy.add("cut", path="/storage/", server="storage", keep=200_000, set_cookie=True)
        r = fetch(lock, "-v")
        assert r.returncode == 0, r
        for secret in (PASSWORD, "presigned-secret"):
            assert secret not in r.text
        blob_gets = proxy.requests("/blobs/")
        stored = proxy.requests(server="storage")
        # unauthenticated, challenge, then: same-origin hop, storage (cut), resume at the
        # registry URL again, storage with Range
        assert [g.headers.get("range") for g in stored] == [None, "bytes=200000-"]
        assert any("redirected=1" in g.path and "authorization" in g.headers for g in blob_gets)
        assert blob_gets[-1].headers.get("range") == "bytes=200000-"
        assert blob_gets[-1].headers["authorization"].startswith("Basic ")
        for g in stored:
            assert "authorization" not in g.headers, g
            assert "cookie" not in g.headers, g
        for g in proxy.requests(method=None):
            assert "cookie" not in g.headers, g
            assert "netrc" not in g.headers.get("authorization", "")
        assert proxy.relayed(server="storage") < 1.5 * BLOB_SIZE
        assert_fetched(lock, blob)


def test_redirect_loops_and_schemes_are_refused(proxy: FaultProxy, tool: Path) -> None:
    proxy.add("redirect", target="same", times=None)
    r = fetch(tool)
    assert r.returncode == 6 and "redirects" in r.stderr, r
    proxy.clear()
    proxy.add("redirect", target="file:///etc/passwd", times=None)
    r = fetch(tool)
    assert r.returncode == 6 and "non-HTTP" in r.stderr, r


# ------------------------------------------------------------------------------------------
# pagination
# ------------------------------------------------------------------------------------------


def test_tag_pagination_same_origin_and_capped(proxy: FaultProxy, registry: ocitest.Registry,
                                               unique_repo: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    push_tool(registry, unique_repo, {"t": b"x"}, tag="a")
    client = RegistryClient(Transport(), proxy.host, unique_repo)
    proxy.add("link", path="/tags/list", link=f"/v2/{unique_repo}/tags/list?n=1&last=a")
    assert client.list_tags() == ["a", "a"]
    proxy.add("link", path="/tags/list", times=1,
              link=f"http://127.0.0.1:{ocitest.free_port()}/v2/{unique_repo}/tags/list?last=a")
    with pytest.raises(IntegrityError, match="leaves"):
        client.list_tags()
    monkeypatch.setattr(registry_module, "MAX_TAG_PAGES", 4)
    proxy.add("link", path="/tags/list", times=None, link=f"/v2/{unique_repo}/tags/list?n=1")
    with pytest.raises(IntegrityError, match="more than 4 pages"):
        client.list_tags()


def test_lock_entry_helper_matches_lock(proxy: FaultProxy, registry: ocitest.Registry,
                                        unique_repo: str, tmp_path: Path) -> None:
    """The handcrafted lockfiles these tests use agree with ``toolfetch lock``."""
    art, entry = push_tool(registry, unique_repo, {"tool": b"#!/bin/sh\n"}, host=registry.host)
    (tmp_path / "tools.yaml").write_text(
        f"tools:\n  tool:\n    ref: {registry.host}/{unique_repo}:1\n    path: tool\n")
    r = tf_main("lock", "--lockfile", str(tmp_path / "tools.lock.json"))
    assert r.returncode == 0, r
    locked = json.loads((tmp_path / "tools.lock.json").read_text())["tools"]["tool"]
    assert locked["platforms"]["*"] == lock_entry(entry["ref"], art, "tool")


def test_blob_downloads_reuse_one_keep_alive_connection(
        registry: ocitest.Registry, unique_repo: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A body read to its end returns the connection to the pool (http.client reads it, so
    toolfetch hands it back itself); small and pipelined large blobs alike."""
    import urllib3.util.connection

    from toolfetch.core import digest as digest_module

    blobs = [random.Random(i).randbytes(size) for i, size in
             enumerate((1000, BLOB_SIZE, digest_module.PIPELINE_MIN_BYTES + 5))]
    for data in blobs:
        ocitest.push_blob(registry, unique_repo, data)
    t = Transport()
    client = RegistryClient(t, registry.host, unique_repo)
    t.base_url(registry.host)  # the scheme probe is not what is counted
    connects: list[object] = []
    real = urllib3.util.connection.create_connection

    def counting(*args: Any, **kw: Any) -> Any:
        connects.append(args[0])
        return real(*args, **kw)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", counting)
    for data in blobs * 2:
        sink = io.BytesIO()
        digest = registry_module.Digest.of_bytes(data)
        client.fetch_blob(digest, len(data), sink, "blob")
        assert sink.getvalue() == data
    assert connects == [("127.0.0.1", registry.port)]
