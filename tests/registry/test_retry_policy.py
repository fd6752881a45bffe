"""One retry policy per command: every network operation of a transport (a registry request,
a blob's resume, an asset pin's restart, a small body's pace) goes through the policy it was
made with, read from the environment once; an unreachable registry says why, and ``-v`` adds
the network's own exception."""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from pathlib import Path

import ocitest
import pytest
from faultproxy import FaultProxy, push_tool, registry_storage
from tf import TRACEBACK, tf_main

from toolfetch.core.digest import Digest
from toolfetch.core.errors import UnreachableError
from toolfetch.registry.assets import AssetSource
from toolfetch.registry.client import RegistryClient
from toolfetch.registry.httpauth import HttpAuth
from toolfetch.registry.retry import RetryPolicy
from toolfetch.registry.transport import Transport

BLOB = random.Random(25).randbytes(300_000)


@pytest.fixture
def proxy(registry: ocitest.Registry) -> Iterator[FaultProxy]:
    with FaultProxy(registry.host, storage=registry_storage(registry)) as p:
        yield p


@pytest.fixture
def pushed(registry: ocitest.Registry, proxy: FaultProxy, unique_repo: str) -> Digest:
    """The digest of BLOB, pushed as ``unique_repo:1`` (the artifact's one layer)."""
    _, entry = push_tool(registry, unique_repo, {"big": BLOB}, host=proxy.host)
    return Digest.parse(entry["layers"][0]["digest"])


def test_every_wait_of_a_transport_is_its_policys(proxy: FaultProxy, unique_repo: str,
                                                 pushed: Digest) -> None:
    waits: list[float] = []
    transport = Transport(RetryPolicy(attempts=3, base_delay=0.25, sleep=waits.append))
    client = RegistryClient(transport, proxy.host, unique_repo)
    proxy.add("status", status=503, times=1)  # a request retried
    proxy.add("cut", keep=100_000, times=1)  # then a download resumed
    sink = io.BytesIO()
    client.fetch_blob(pushed, len(BLOB), sink, "blob")
    assert sink.getvalue() == BLOB
    assert len(waits) == 2
    gets = proxy.requests("/blobs/")
    assert [g.status for g in gets] == [503, 200, 206]
    assert [g.headers.get("range") for g in gets] == [None, None, "bytes=100000-"]

    # A release asset through the same transport: its pin starts over after a cut, and
    # waits the same policy's backoff.
    proxy.add("cut", keep=1000, times=1)
    asset = AssetSource(transport, f"http://{proxy.host}/v2/{unique_repo}/blobs/{pushed}",
                        HttpAuth())
    pin = asset.pin(io.BytesIO(), "asset")
    assert (pin.digest, pin.size) == (pushed, len(BLOB))
    assert len(waits) == 3
    assert all(0.125 <= w <= 0.25 for w in waits), waits  # the first backoff, half-jittered


def test_an_interrupted_download_gives_up_after_the_policys_attempts(
        proxy: FaultProxy, unique_repo: str, pushed: Digest) -> None:
    waits: list[float] = []
    transport = Transport(RetryPolicy(attempts=2, sleep=waits.append))
    proxy.add("cut", keep=1000, times=None)
    asset = AssetSource(transport, f"http://{proxy.host}/v2/{unique_repo}/blobs/{pushed}",
                        HttpAuth())
    with pytest.raises(UnreachableError, match=r"asset: connection to .* kept failing "
                       r"\(2 interruptions, last: connection broken"):
        asset.pin(io.BytesIO(), "asset")
    assert len(waits) == 1 and len(proxy.requests("/blobs/")) == 2


def test_giving_up_keeps_the_last_interruptions_network_exception(
        proxy: FaultProxy, unique_repo: str, pushed: Digest) -> None:
    """A body whose connection is reset mid-read, every time: the UnreachableError names the
    interruptions and keeps the read's exception as its ``-v`` detail (``__cause__``); a
    body that only ends early (no exception behind it) gives up without one."""
    transport = Transport(RetryPolicy(attempts=2, sleep=lambda _: None))
    url = f"http://{proxy.host}/v2/{unique_repo}/blobs/{pushed}"
    proxy.add("cut_reset", keep=1000, times=None)
    with pytest.raises(UnreachableError, match="kept failing") as reset:
        AssetSource(transport, url, HttpAuth()).pin(io.BytesIO(), "asset")
    assert isinstance(reset.value.__cause__, OSError) and reset.value.cause_is_detail
    proxy.rules.clear()
    proxy.add("cut", keep=1000, times=None)
    with pytest.raises(UnreachableError, match="kept failing") as cut:
        AssetSource(transport, url, HttpAuth()).pin(io.BytesIO(), "asset")
    assert cut.value.__cause__ is None


def test_the_environment_is_read_once_per_transport(
        proxy: FaultProxy, unique_repo: str, pushed: Digest,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Small bodies (manifests, tag lists) keep the transport's pace: the environment is read
    when the command's transport is made, not again for every body."""
    monkeypatch.setenv("TOOLFETCH_MIN_RATE", "1")
    transport = Transport()
    assert transport.policy.min_rate == 1
    monkeypatch.setenv("TOOLFETCH_MIN_RATE", "not a rate")  # would be exit 2 if read again
    client = RegistryClient(transport, proxy.host, unique_repo)
    assert pushed in [layer.digest for layer in client.get_manifest("1").layers("test")]
    assert client.list_tags() == ["1"]


def test_verbose_shows_the_network_exception_behind_unreachable(tmp_path: Path) -> None:
    dead = f"127.0.0.1:{ocitest.free_port()}"
    quiet = tf_main("tags", f"{dead}/t/say")
    assert quiet.returncode == 6, quiet
    assert f"registry {dead} unreachable after 2 attempts (connection refused)" in quiet.stderr
    assert "caused by" not in quiet.stderr and "ConnectionError" not in quiet.stderr

    verbose = tf_main("-v", "tags", f"{dead}/t/say")
    assert verbose.returncode == 6, verbose
    errors = [line for line in verbose.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [line for line in quiet.stderr.splitlines() if line.startswith("error: ")]
    causes = [line for line in verbose.stderr.splitlines() if "caused by: " in line]
    assert causes and causes[0].startswith("  caused by: ConnectionError: ")
    assert "Connection refused" in verbose.stderr and TRACEBACK not in verbose.stderr
