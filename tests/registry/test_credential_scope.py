"""Issue 24.1: registry credentials go to the origin they were configured for, and to the
token realm that origin itself named: never to a realm a redirect target names.

A canned registry R (credentials configured for it, as CI does) redirects a blob GET to
another origin S (object storage); S answers 401 with a Bearer challenge whose realm is a
third server T. That 401 is S's answer (exit 5 naming S): T must never be asked.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from canned import Canned, Hit, Reply
from faultproxy import write_lockfile
from tf import tf_main

CANARY = "CANARY-registry-password-3f9c"
USER = "ci"
BASIC = "Basic " + base64.b64encode(f"{USER}:{CANARY}".encode()).decode()
PAYLOAD = b"#!/bin/sh\necho tool\n"
DIGEST = "sha256:" + hashlib.sha256(PAYLOAD).hexdigest()
OTHER = b"#!/bin/sh\necho other\n"
OTHER_DIGEST = "sha256:" + hashlib.sha256(OTHER).hexdigest()


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLFETCH_RETRY_DELAY", "0.01")


@pytest.fixture
def servers() -> Iterator[tuple[Canned, Canned, Canned]]:
    with Canned() as registry, Canned() as storage, Canned() as tokens:
        yield registry, storage, tokens


def _layer(data: bytes, digest: str, title: str) -> dict[str, object]:
    return {"digest": digest, "mediaType": "application/octet-stream", "size": len(data),
            "title": title, "unpack": "raw"}


def _lockfile(tmp_path: Path, host: str, layers: list[dict[str, object]]) -> Path:
    entry = {"layers": layers, "manifest": "sha256:" + "0" * 64, "path": "tool",
             "ref": f"{host}/acme/tool:1"}
    return write_lockfile(tmp_path / "tools.lock.json", {"tool": entry})


@pytest.mark.parametrize("registry_asks_basic", [False, True], ids=["anonymous", "basic-first"])
def test_a_challenge_from_a_redirect_target_never_gets_the_registry_credentials(
        servers: tuple[Canned, Canned, Canned], tmp_path: Path, registry_asks_basic: bool,
        monkeypatch: pytest.MonkeyPatch) -> None:
    registry, storage, tokens = servers
    monkeypatch.setenv("TOOLFETCH_REGISTRY_HOST", registry.host)
    monkeypatch.setenv("TOOLFETCH_REGISTRY_USERNAME", USER)
    monkeypatch.setenv("TOOLFETCH_REGISTRY_PASSWORD", CANARY)

    def blob(data: bytes, redirect: bool) -> object:
        def answer(hit: Hit) -> Reply:
            if registry_asks_basic and hit.headers.get("Authorization") != BASIC:
                return Reply(401, b"{}", {"WWW-Authenticate": 'Basic realm="registry"'})
            if redirect:
                return Reply(307, headers={"Location": storage.url("/bucket/blob?sig=x")})
            return Reply(200, data)
        return answer

    # With Basic first, the first blob authenticates against R before the second one is
    # redirected: the Basic credentials of R must not flow to S's realm either.
    registry.routes[f"/v2/acme/tool/blobs/{OTHER_DIGEST}"] = blob(OTHER, False)  # type: ignore[assignment]
    registry.routes[f"/v2/acme/tool/blobs/{DIGEST}"] = blob(PAYLOAD, True)  # type: ignore[assignment]
    storage.routes["/bucket/blob"] = Reply(401, b"denied", {
        "WWW-Authenticate": f'Bearer realm="{tokens.url("/token")}",service="storage"'})
    tokens.routes["/token"] = Reply(200, b'{"token": "stolen"}')
    layers = [_layer(OTHER, OTHER_DIGEST, "other"), _layer(PAYLOAD, DIGEST, "tool")]
    lockfile = _lockfile(tmp_path, registry.host, layers)

    r = tf_main("fetch", "--lockfile", str(lockfile), "--jobs", "1", "-v")

    assert tokens.seen() == [], "the registry's credentials went to a realm S named"
    assert r.returncode == 5, r.text
    assert f"http://{storage.host}" in r.stderr and "redirect" in r.stderr, r.stderr
    assert CANARY not in r.text and BASIC not in r.text
    assert all("Authorization" not in h.headers for h in storage.seen())


def test_the_registry_own_bearer_challenge_still_gets_a_token(
        servers: tuple[Canned, Canned, Canned], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The rule's other half: a realm on another host is trusted when the registry itself
    names it (as Docker Hub names auth.docker.io)."""
    registry, _, tokens = servers
    monkeypatch.setenv("TOOLFETCH_REGISTRY_HOST", registry.host)
    monkeypatch.setenv("TOOLFETCH_REGISTRY_USERNAME", USER)
    monkeypatch.setenv("TOOLFETCH_REGISTRY_PASSWORD", CANARY)

    def answer(hit: Hit) -> Reply:
        if hit.headers.get("Authorization") != "Bearer good":
            return Reply(401, b"{}", {"WWW-Authenticate":
                                      f'Bearer realm="{tokens.url("/token")}",service="r"'})
        return Reply(200, PAYLOAD)

    registry.routes[f"/v2/acme/tool/blobs/{DIGEST}"] = answer  # type: ignore[assignment]
    tokens.routes["/token"] = Reply(200, b'{"token": "good"}')
    lockfile = _lockfile(tmp_path, registry.host, [_layer(PAYLOAD, DIGEST, "tool")])

    r = tf_main("fetch", "--lockfile", str(lockfile))

    assert r.returncode == 0, r.text
    assert [h.headers.get("Authorization") for h in tokens.seen()] == [BASIC]
