"""Issue 24.2: no secret is ever printed, and input a request cannot be made of is exit 2.

One canary secret, planted in every place a command takes a URL or a credential (an asset
URL's ``user:password@``, ``TOOLFETCH_HTTP_AUTH_<HOST>``, a credential helper's output,
``TOOLFETCH_REGISTRY_PASSWORD``, docker's ``registrytoken``, ``login``), must not appear in
anything the command prints (with ``-v``), and each case ends in the exit code it names. A
new case is one line of ``CASES``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from canned import Canned, Reply
from faultproxy import write_lockfile
from tf import host, tf_main, write_config

CANARY = "CANARY-5e3b1d"
PAYLOAD = b"#!/bin/sh\necho tool\n"
SHA = hashlib.sha256(PAYLOAD).hexdigest()
LONG_LABEL = "a" * 64


@dataclass(frozen=True)
class Case:
    name: str
    command: str  # "lock", "fetch-asset", "fetch-registry" or "login"
    url: str = ""  # an asset URL; {h} is the canned server's host:port
    env: tuple[tuple[str, str], ...] = ()
    helper: str = ""  # a credential helper's stdout
    registry: str = ""  # a registry host:port ({h} as above)
    docker_config: str = ""  # config.json text ({h} as above)
    exit_code: int = 2
    says: str = ""


CASES = [
    Case("lock-bad-port", "lock", f"http://u:{CANARY}@127.0.0.1:99999/t", says=".url: "),
    Case("lock-open-ipv6", "lock", f"http://u:{CANARY}@[::1/t", says=".url: "),
    Case("lock-long-label", "lock", f"http://u:{CANARY}@{LONG_LABEL}.example/t",
         says=".url: "),
    Case("lock-userinfo-refused", "lock", f"http://u:{CANARY}@{{h}}/t", exit_code=5,
         says="HTTP 401"),
    Case("fetch-bad-port", "fetch-asset", f"http://u:{CANARY}@127.0.0.1:99999/t",
         says="99999"),
    Case("fetch-long-label", "fetch-asset", f"https://u:{CANARY}@{LONG_LABEL}.example/t",
         says="63"),
    Case("fetch-userinfo-refused", "fetch-asset", f"http://u:{CANARY}@{{h}}/t", exit_code=5,
         says="HTTP 401"),
    Case("env-header-line-break", "fetch-asset", "http://{h}/t",
         env=(("TOOLFETCH_HTTP_AUTH_127_0_0_1", f"Bearer {CANARY}\nX-Evil: 1"),),
         says="TOOLFETCH_HTTP_AUTH_127_0_0_1"),
    Case("env-header-refused", "fetch-asset", "http://{h}/t",
         env=(("TOOLFETCH_HTTP_AUTH_127_0_0_1", f"Bearer {CANARY}"),), exit_code=5,
         says="TOOLFETCH_HTTP_AUTH_127_0_0_1"),
    Case("helper-header-line-break", "fetch-asset", "http://{h}/t",
         helper=json.dumps({"headers": {"Authorization": [f"Bearer {CANARY}\r\n"]}}),
         says="credential helper"),
    Case("registry-password-refused", "fetch-registry", registry="{h}",
         env=(("TOOLFETCH_REGISTRY_HOST", "{h}"), ("TOOLFETCH_REGISTRY_USERNAME", "ci"),
              ("TOOLFETCH_REGISTRY_PASSWORD", CANARY)), exit_code=5, says="environment"),
    Case("registry-bad-port", "fetch-registry", registry="127.0.0.1:99999",
         env=(("TOOLFETCH_REGISTRY_HOST", "127.0.0.1:99999"),
              ("TOOLFETCH_REGISTRY_USERNAME", "ci"), ("TOOLFETCH_REGISTRY_PASSWORD", CANARY)),
         says="99999"),
    Case("registrytoken-line-break", "fetch-registry", registry="{h}",
         docker_config=json.dumps({"auths": {"{h}": {"registrytoken": f"{CANARY}\n"}}}),
         says="header"),
    Case("login-refused", "login", registry="{h}", exit_code=5, says="{h}"),
    Case("login-bad-port", "login", registry="127.0.0.1:99999", says="99999"),
]


@pytest.fixture
def server() -> Iterator[Canned]:
    with Canned() as canned:
        # Every credential is wrong: asset and registry alike answer 401.
        canned.routes["/t"] = Reply(401, b"no", {"WWW-Authenticate": 'Basic realm="assets"'})
        refuse = Reply(401, b"{}", {"WWW-Authenticate": 'Bearer realm="http://'
                                    f'{canned.host}/token",service="r"'})
        canned.routes["/v2/"] = refuse
        canned.routes[f"/v2/acme/tool/blobs/sha256:{SHA}"] = refuse
        canned.routes["/token"] = Reply(401, b"{}")
        yield canned


def _asset_lockfile(tmp_path: Path, url: str) -> Path:
    entry = {"layers": [{"digest": f"sha256:{SHA}", "mediaType": "application/octet-stream",
                         "size": len(PAYLOAD), "title": "t", "unpack": "raw"}],
             "path": "t", "urls": [url]}
    data = {"tools": {"t": {"platforms": {host(): entry}}}, "version": 1}
    path = tmp_path / "ws" / "tools.lock.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


def _registry_lockfile(tmp_path: Path, registry: str) -> Path:
    entry = {"layers": [{"digest": f"sha256:{SHA}", "mediaType": "application/octet-stream",
                         "size": len(PAYLOAD), "title": "t", "unpack": "raw"}],
             "manifest": "sha256:" + "0" * 64, "path": "t", "ref": f"{registry}/acme/tool:1"}
    return write_lockfile(tmp_path / "ws" / "tools.lock.json", {"t": entry})


COMMANDS: dict[str, Callable[[Case, Path, Callable[[str], str]], tuple[list[str], str | None]]] = {
    "lock": lambda c, tmp, h: (["lock", "--lockfile", str(_lock_workspace(tmp, h(c.url)))],
                               None),
    "fetch-asset": lambda c, tmp, h: (["fetch", "--lockfile",
                                       str(_asset_lockfile(tmp, h(c.url)))], None),
    "fetch-registry": lambda c, tmp, h: (["fetch", "--lockfile",
                                          str(_registry_lockfile(tmp, h(c.registry)))], None),
    "login": lambda c, tmp, h: (["login", h(c.registry), "-u", "ci", "--password-stdin"],
                                CANARY + "\n"),
}


def _lock_workspace(tmp_path: Path, url: str) -> Path:
    write_config(tmp_path / "ws" / "tools.yaml",
                 {"tools": {"t": {"platforms": {host(): {"url": url, "path": "t"}}}}})
    return tmp_path / "ws" / "tools.lock.json"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_no_secret_is_printed_and_bad_input_is_exit_2(
        case: Case, server: Canned, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLFETCH_RETRY_DELAY", "0.01")

    def h(text: str) -> str:
        return text.replace("{h}", server.host)

    for name, value in case.env:
        monkeypatch.setenv(name, h(value))
    if case.helper:
        helper = tmp_path / "helper"
        helper.write_text(f"#!/bin/sh\ncat >/dev/null\ncat <<'EOF'\n{case.helper}\nEOF\n")
        helper.chmod(0o755)
        monkeypatch.setenv("TOOLFETCH_CREDENTIAL_HELPER", str(helper))
    if case.docker_config:
        (Path(os.environ["DOCKER_CONFIG"]) / "config.json").write_text(h(case.docker_config))
    argv, stdin = COMMANDS[case.command](case, tmp_path, h)

    r = tf_main(*argv, "-v", stdin=stdin)

    assert CANARY not in r.text, r.text
    assert r.returncode == case.exit_code, r.text
    assert h(case.says) in r.stderr, r.stderr
    assert "internal error" not in r.text
