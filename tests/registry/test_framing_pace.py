"""Issue 24.14: a download's body must match its framing and keep a pace.

A server that sends more bytes than its ``Content-Length`` (``lock`` pinned the declared
prefix, exit 0), or one that trickles a byte every half second (no read timeout ever fires:
``fetch`` and ``lock`` ran forever), for HTTP assets and registry blobs alike. One line per
case: the command, what the server does, the environment, the exit code and what the error
names.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from canned import Canned, Reply
from faultproxy import write_lockfile
from tf import host, tf_main, write_config

BODY = bytes(range(256)) * 4  # 1 KiB
PREFIX = BODY[:600]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Case:
    name: str
    command: str  # "lock" (pins an asset), "fetch-asset", "fetch-registry", "inspect"
    reply: Reply
    pinned: bytes = BODY  # what the lockfile pins (fetch)
    env: dict[str, str] = field(default_factory=dict)
    exit_code: int = 0
    says: str = ""


OVERLONG = Reply(200, BODY, length=len(PREFIX))  # declares 600 bytes, sends 1024
DRIP = Reply(200, BODY, drip=0.5)  # a byte every half second: 8.5 minutes
SLOW = {"TOOLFETCH_TIMEOUT": "1"}
CASES = [
    Case("lock-overlong", "lock", OVERLONG, exit_code=3, says="more bytes than its "
         "Content-Length (600)"),
    Case("fetch-asset-overlong", "fetch-asset", OVERLONG, pinned=PREFIX, exit_code=3,
         says="Content-Length"),
    Case("fetch-registry-overlong", "fetch-registry", OVERLONG, pinned=PREFIX, exit_code=3,
         says="Content-Length"),
    Case("lock-drip", "lock", DRIP, env=SLOW, exit_code=6, says="TOOLFETCH_MIN_RATE"),
    Case("fetch-asset-drip", "fetch-asset", DRIP, env=SLOW, exit_code=6,
         says="TOOLFETCH_MIN_RATE"),
    Case("fetch-registry-drip", "fetch-registry", DRIP, env=SLOW, exit_code=6,
         says="TOOLFETCH_MIN_RATE"),
    Case("inspect-manifest-drip", "inspect", DRIP, env=SLOW, exit_code=6,
         says="TOOLFETCH_MIN_RATE"),
    Case("lock-honest", "lock", Reply(200, BODY)),
    Case("fetch-asset-short-drip-keeps-pace", "fetch-asset",
         Reply(200, BODY[:8], drip=0.05), pinned=BODY[:8], env=SLOW),
    Case("fetch-asset-pace-off", "fetch-asset", Reply(200, BODY[:4], drip=0.4),
         pinned=BODY[:4], env={"TOOLFETCH_TIMEOUT": "1", "TOOLFETCH_MIN_RATE": "0"}),
]


@pytest.fixture
def server() -> Iterator[Canned]:
    with Canned() as canned:
        yield canned


def _layer(data: bytes) -> dict[str, object]:
    return {"digest": f"sha256:{sha(data)}", "mediaType": "application/octet-stream",
            "size": len(data), "title": "t", "unpack": "raw"}


def _command(case: Case, server: Canned, tmp_path: Path) -> list[str]:
    lockfile = tmp_path / "ws" / "tools.lock.json"
    if case.command == "lock":
        server.routes["/t"] = case.reply
        write_config(tmp_path / "ws" / "tools.yaml", {"tools": {"t": {"platforms": {
            host(): {"url": server.url("/t"), "path": "t"}}}}})
        return ["lock", "--lockfile", str(lockfile)]
    if case.command == "fetch-asset":
        server.routes["/t"] = case.reply
        entry = {"layers": [_layer(case.pinned)], "path": "t", "urls": [server.url("/t")]}
        lockfile.parent.mkdir(parents=True)
        lockfile.write_text(json.dumps({"tools": {"t": {"platforms": {host(): entry}}},
                                        "version": 1}))
        return ["fetch", "--lockfile", str(lockfile)]
    if case.command == "inspect":  # a manifest, trickled (the body never gets parsed)
        server.routes["/v2/acme/t/manifests/1"] = case.reply
        return ["inspect", f"{server.host}/acme/t:1"]
    server.routes[f"/v2/acme/t/blobs/sha256:{sha(case.pinned)}"] = case.reply
    write_lockfile(lockfile, {"t": {"layers": [_layer(case.pinned)], "path": "t",
                                    "manifest": "sha256:" + "0" * 64,
                                    "ref": f"{server.host}/acme/t:1"}})
    return ["fetch", "--lockfile", str(lockfile)]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_framing_and_pace(case: Case, server: Canned, tmp_path: Path,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLFETCH_RETRY_DELAY", "0.01")
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    argv = _command(case, server, tmp_path)
    started = time.monotonic()
    r = tf_main(*argv)
    took = time.monotonic() - started
    assert r.returncode == case.exit_code, r.text
    assert case.says in r.stderr, r.stderr
    assert took < 20, f"{case.name} took {took:.1f} s"
    if case.command == "lock" and case.exit_code:
        assert not (tmp_path / "ws" / "tools.lock.json").exists()


def test_a_malformed_min_rate_is_exit_2(server: Canned, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLFETCH_MIN_RATE", "fast")
    argv = _command(Case("x", "fetch-asset", Reply(200, BODY)), server, tmp_path)
    r = tf_main(*argv)
    assert r.returncode == 2 and "TOOLFETCH_MIN_RATE" in r.stderr, r.text
