"""Authentication: credential sources, helpers, the bearer flow, login/logout, no leaked secrets.

Real registries: Distribution with htpasswd (``htpasswd -B``) and Distribution with
``auth: token`` trusting :mod:`tokenserver` (RS256 JWTs, x5c). Token requests are counted
per command.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import stat
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ocitest
import pytest
from faultproxy import FaultProxy, push_tool, write_lockfile
from tf import tf_main
from tokenserver import TokenServer

from toolfetch.core.errors import AuthError
from toolfetch.ops import login
from toolfetch.registry import auth, tokens
from toolfetch.registry.auth import Challenge, Credentials, find_credentials
from toolfetch.registry.transport import Transport

USER, PASSWORD = "alice", "s3cret pass-word"
B64 = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
IDENTITY_TOKEN = "idtok-0123456789-refresh-secret"


# ------------------------------------------------------------------------------------------
# fixtures
# ------------------------------------------------------------------------------------------


def write_config(data: dict[str, Any]) -> Path:
    path = Path(os.environ["DOCKER_CONFIG"]) / "config.json"
    path.write_text(json.dumps(data))
    return path


def auths_entry(user: str = USER, password: str = PASSWORD) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


HELPER = textwrap.dedent("""\
    #!{python}
    import json, os, sys
    name = os.path.basename(sys.argv[0])[len("docker-credential-"):]
    here = os.path.dirname(os.path.abspath(sys.argv[0]))
    store_path = os.path.join(here, name + ".json")
    store = json.load(open(store_path)) if os.path.exists(store_path) else {{}}
    action, data = sys.argv[1], sys.stdin.read()
    with open(os.path.join(here, name + ".log"), "a") as log:
        log.write(action + " " + (data.strip() if action != "store" else "<json>") + "\\n")
    if os.environ.get("FAKE_HELPER_FAIL"):
        sys.stderr.write("helper exploded\\n")
        sys.exit(3)
    if action == "get":
        if data.strip() in store:
            user, secret = store[data.strip()]
            print(json.dumps({{"ServerURL": data.strip(), "Username": user, "Secret": secret}}))
        else:
            print("credentials not found in native keychain")
            sys.exit(1)
    elif action == "store":
        obj = json.loads(data)
        store[obj["ServerURL"]] = [obj["Username"], obj["Secret"]]
        json.dump(store, open(store_path, "w"))
    elif action == "erase":
        if store.pop(data.strip(), None) is None:
            sys.exit(1)
        json.dump(store, open(store_path, "w"))
    """)


@dataclass
class Helpers:
    """Fake ``docker-credential-<name>`` programs on PATH backed by JSON files."""

    bindir: Path

    def make(self, name: str, store: dict[str, tuple[str, str]] | None = None) -> None:
        script = self.bindir / f"docker-credential-{name}"
        script.write_text(HELPER.format(python=sys.executable))
        script.chmod(0o755)
        (self.bindir / f"{name}.json").write_text(json.dumps(store or {}))

    def calls(self, name: str) -> list[str]:
        log = self.bindir / f"{name}.log"
        return log.read_text().splitlines() if log.exists() else []

    def store(self, name: str) -> dict[str, list[str]]:
        data: dict[str, list[str]] = json.loads((self.bindir / f"{name}.json").read_text())
        return data


@pytest.fixture
def helpers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Helpers:
    bindir = tmp_path / "helper-bin"
    bindir.mkdir()
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return Helpers(bindir)


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLFETCH_RETRY_DELAY", "0.01")


@pytest.fixture(scope="module")
def htreg(tmp_path_factory: pytest.TempPathFactory, need_registry: None
          ) -> Iterator[ocitest.Registry]:
    reg = ocitest.Registry(workdir=tmp_path_factory.mktemp("htpasswd-registry"),
                           htpasswd=(USER, PASSWORD))
    try:
        yield reg
    finally:
        reg.close()


@dataclass
class TokenRegistry:
    reg: ocitest.Registry
    ts: TokenServer

    @property
    def host(self) -> str:
        return self.reg.host

    @contextlib.contextmanager
    def pushing(self, repo: str) -> Iterator[None]:
        """ocitest's push helpers, with a bearer token for ``repo``."""
        token = self.ts.mint("pusher", [f"repository:{repo}:pull,push"])
        original = self.reg.request

        def request(method: str, path: str, *, auth: Any = True, **kw: Any) -> Any:
            kw["headers"] = {**(kw.get("headers") or {}), "Authorization": f"Bearer {token}"}
            return original(method, path, auth=None, **kw)

        self.reg.request = request  # type: ignore[method-assign]
        try:
            yield
        finally:
            del self.reg.request

    def push(self, repo: str, files: dict[str, bytes], tag: str = "1") -> dict[str, Any]:
        with self.pushing(repo):
            return push_tool(self.reg, repo, files, tag=tag)[1]


@pytest.fixture(scope="module")
def tokreg(tmp_path_factory: pytest.TempPathFactory, need_registry: None
           ) -> Iterator[TokenRegistry]:
    pytest.importorskip("jwt")
    pytest.importorskip("cryptography")
    work = tmp_path_factory.mktemp("token-registry")
    ts = TokenServer(users={USER: PASSWORD}, identity_tokens={IDENTITY_TOKEN: USER})
    reg = ocitest.Registry(workdir=work, token_auth=ts.registry_auth(work))
    try:
        yield TokenRegistry(reg, ts)
    finally:
        reg.close()
        ts.close()


@pytest.fixture
def tr(tokreg: TokenRegistry) -> TokenRegistry:
    """The shared token registry with its server's knobs and counters reset."""
    ts = tokreg.ts
    ts.requests.clear()
    ts.refuse_post = ts.oversize = False
    ts.fail_next.clear()
    ts.expires_in = 300
    return tokreg


def fetch(lockfile: Path, *tools: str, verbose: bool = False) -> Any:
    return tf_main("fetch", "--lockfile", str(lockfile), *tools, *(["-v"] if verbose else []))


def assert_no_secret(text: str, *secrets: str) -> None:
    for s in (PASSWORD, B64, IDENTITY_TOKEN, *secrets):
        assert s not in text, f"secret {s[:6]}… leaked:\n{text}"


# ------------------------------------------------------------------------------------------
# WWW-Authenticate parsing
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("header", "expected"), [
    ('Bearer realm="https://a/token",service="reg",scope="repository:a/b:pull,push"',
     [("bearer", {"realm": "https://a/token", "service": "reg",
                  "scope": "repository:a/b:pull,push"})]),
    ('Basic realm="x, y", Bearer realm="https://t/" , service=s',
     [("basic", {"realm": "x, y"}), ("bearer", {"realm": "https://t/", "service": "s"})]),
    ('Bearer realm="https://x",error="insufficient_scope",scope="repository:a:pull '
     'repository:b:pull"',
     [("bearer", {"realm": "https://x", "error": "insufficient_scope",
                  "scope": "repository:a:pull repository:b:pull"})]),
    ('Negotiate, BASIC realm="q\\"uoted\\""',
     [("negotiate", {}), ("basic", {"realm": 'q"uoted"'})]),
    ("Basic", [("basic", {})]),
    ("", []),
])
def test_challenge_parsing(header: str, expected: list[tuple[str, dict[str, str]]]) -> None:
    assert [(c.scheme, c.params) for c in Challenge.parse_all(header)] == expected


# ------------------------------------------------------------------------------------------
# where credentials come from
# ------------------------------------------------------------------------------------------


def test_credential_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 helpers: Helpers) -> None:
    host = "reg.example:5000"
    helpers.make("per-host", {host: ("from-credhelpers", "p1")})
    helpers.make("store", {host: ("from-credsstore", "p2")})
    config = {"credHelpers": {host: "per-host"}, "credsStore": "store",
              "auths": {host: auths_entry("from-auths", "p3")}}
    write_config(config)
    regauth = tmp_path / "regauth.json"
    regauth.write_text(json.dumps({"auths": {host: auths_entry("from-registry-auth-file")}}))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(regauth))
    runtime = Path(os.environ["XDG_RUNTIME_DIR"]) / "containers" / "auth.json"
    runtime.parent.mkdir()
    runtime.write_text(json.dumps({"auths": {host: auths_entry("from-xdg-runtime")}}))
    user_conf = Path.home() / ".config" / "containers" / "auth.json"
    user_conf.parent.mkdir(parents=True)
    user_conf.write_text(json.dumps({"auths": {host: auths_entry("from-config-home")}}))
    monkeypatch.setenv("TOOLFETCH_REGISTRY_HOST", f"other.example,{host}")
    monkeypatch.setenv("TOOLFETCH_REGISTRY_USERNAME", "from-env")
    monkeypatch.setenv("TOOLFETCH_REGISTRY_PASSWORD", "p0")

    def who() -> str | None:
        creds = find_credentials(host)
        return creds.username if creds else None

    assert who() == "from-env"
    monkeypatch.delenv("TOOLFETCH_REGISTRY_PASSWORD")
    assert who() == "from-credhelpers"  # env without a secret does not count
    del config["credHelpers"]
    write_config(config)
    assert who() == "from-credsstore"
    helpers.make("store", {})  # the store does not know the host: auths next
    assert who() == "from-auths"
    del config["auths"]
    write_config(config)
    assert who() == "from-registry-auth-file"
    monkeypatch.delenv("REGISTRY_AUTH_FILE")
    assert who() == "from-xdg-runtime"
    runtime.unlink()
    assert who() == "from-config-home"
    user_conf.unlink()
    assert who() is None
    # $DOCKER_CONFIG unset: ~/.docker/config.json
    monkeypatch.delenv("DOCKER_CONFIG")
    (Path.home() / ".docker").mkdir()
    (Path.home() / ".docker" / "config.json").write_text(
        json.dumps({"auths": {host: auths_entry("from-home-docker")}}))
    assert who() == "from-home-docker"


@pytest.mark.parametrize("key", ["reg.example:5000", "https://reg.example:5000",
                                 "http://reg.example:5000/v2/", "https://REG.example:5000/v1/"])
def test_auths_key_spellings(key: str) -> None:
    write_config({"auths": {"other.example": auths_entry("other"), key: auths_entry()}})
    creds = find_credentials("reg.example:5000")
    assert creds is not None and creds.username == USER and creds.password == PASSWORD
    assert find_credentials("reg.example:5001") is None


@pytest.mark.parametrize("key", ["https://index.docker.io/v1/", "docker.io", "index.docker.io"])
def test_docker_hub_key(key: str, helpers: Helpers) -> None:
    write_config({"auths": {key: auths_entry()}})
    for host in ("registry-1.docker.io", "docker.io"):
        creds = find_credentials(host)
        assert creds is not None and creds.username == USER
    # helpers are asked with docker's key for Docker Hub
    helpers.make("hub", {"https://index.docker.io/v1/": ("hubuser", "hubpass")})
    write_config({"credsStore": "hub"})
    creds = find_credentials("registry-1.docker.io")
    assert creds is not None and creds.username == "hubuser"


def test_identity_and_registry_tokens_from_auths() -> None:
    write_config({"auths": {"a.example": {"identitytoken": IDENTITY_TOKEN},
                            "b.example": {"registrytoken": "rt-secret"}}})
    a, b = find_credentials("a.example"), find_credentials("b.example")
    assert a is not None and a.identity_token == IDENTITY_TOKEN and not a.has_basic
    assert b is not None and b.registry_token == "rt-secret"


def test_credential_helper_token_username(helpers: Helpers) -> None:
    helpers.make("test", {"a.example": ("<token>", IDENTITY_TOKEN)})
    write_config({"credHelpers": {"a.example": "test"}})
    creds = find_credentials("a.example")
    assert creds is not None and creds.identity_token == IDENTITY_TOKEN and not creds.username
    assert helpers.calls("test") == ["get a.example"]


def test_failing_credential_helper_warns_and_goes_anonymous(
        helpers: Helpers, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    helpers.make("test", {"a.example": (USER, PASSWORD)})
    write_config({"credHelpers": {"a.example": "test", "b.example": "missing"},
                  "auths": {"b.example": auths_entry()}})
    monkeypatch.setenv("FAKE_HELPER_FAIL", "1")
    with caplog.at_level(logging.WARNING, logger="toolfetch"):
        assert find_credentials("a.example") is None
        assert find_credentials("b.example") is None  # the helper named for it wins over auths
    text = caplog.text
    assert "docker-credential-test" in text and "exit 3" in text
    assert "docker-credential-missing" in text and "not found on PATH" in text
    assert_no_secret(text)
    caplog.clear()
    monkeypatch.delenv("FAKE_HELPER_FAIL")
    with caplog.at_level(logging.WARNING, logger="toolfetch"):
        assert find_credentials("c.example") is None  # "not found" is quiet
    assert caplog.text == ""


def test_environment_credentials_are_scoped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLFETCH_REGISTRY_USERNAME", "ci")
    monkeypatch.setenv("TOOLFETCH_REGISTRY_PASSWORD", "ci-secret")
    assert find_credentials("ghcr.io") is None  # no TOOLFETCH_REGISTRY_HOST: never sent
    monkeypatch.setenv("TOOLFETCH_REGISTRY_HOST", "ghcr.io, docker.io")
    ghcr, hub = find_credentials("ghcr.io"), find_credentials("registry-1.docker.io")
    assert ghcr is not None and ghcr.username == "ci" and "TOOLFETCH_REGISTRY_HOST" in ghcr.source
    assert hub is not None
    assert find_credentials("evil.example") is None
    monkeypatch.setenv("TOOLFETCH_REGISTRY_TOKEN", "ci-token")
    monkeypatch.delenv("TOOLFETCH_REGISTRY_PASSWORD")
    token = find_credentials("ghcr.io")
    assert token is not None and token.identity_token == "ci-token"


def test_secrets_redacted_in_reprs() -> None:
    creds = Credentials(username=USER, password=PASSWORD, identity_token=IDENTITY_TOKEN,
                        registry_token="rt-secret", source="here")
    err = auth.auth_failure("h.example", creds, "denied")
    for text in (repr(creds), str(creds), repr([creds]), f"{creds!r}"):
        assert_no_secret(text, "rt-secret")
        assert f"username='{USER}', source='here'" in text  # who, and from where
    for text in (repr(err), str(err)):
        assert_no_secret(text, "rt-secret")
        assert "tried credentials from here" in text


# ------------------------------------------------------------------------------------------
# htpasswd (Basic) registry
# ------------------------------------------------------------------------------------------


@pytest.fixture
def ht_lock(htreg: ocitest.Registry, tmp_path: Path, unique_repo: str) -> Path:
    entries = {f"tool{i}": push_tool(htreg, f"{unique_repo}/t{i}",
                                     {f"tool{i}": f"#{i}".encode()})[1] for i in range(3)}
    return write_lockfile(tmp_path / "tools.lock.json", entries)


def test_basic_auth_private_pull(htreg: ocitest.Registry, ht_lock: Path) -> None:
    r = fetch(ht_lock, "tool0")
    assert r.returncode == 5, r
    assert htreg.host in r.stderr and "anonymous access" in r.stderr
    write_config({"auths": {f"http://{htreg.host}": auths_entry()}})
    r = fetch(ht_lock)
    assert r.returncode == 0, r


def test_basic_auth_wrong_credentials(htreg: ocitest.Registry, ht_lock: Path) -> None:
    path = write_config({"auths": {htreg.host: auths_entry(USER, "wrong-" + PASSWORD)}})
    r = fetch(ht_lock, "tool0", verbose=True)
    assert r.returncode == 5, r
    assert htreg.host in r.stderr and str(path) in r.stderr  # names the registry and the source
    assert_no_secret(r.text, "wrong-" + PASSWORD,
                     base64.b64encode(f"{USER}:wrong-{PASSWORD}".encode()).decode())


def test_credential_helper_runs_once_per_command(htreg: ocitest.Registry, ht_lock: Path,
                                                 helpers: Helpers) -> None:
    helpers.make("test", {htreg.host: (USER, PASSWORD)})
    write_config({"credHelpers": {htreg.host: "test"}})
    r = tf_main("fetch", "--lockfile", str(ht_lock), "--jobs", "3")
    assert r.returncode == 0, r
    assert helpers.calls("test") == [f"get {htreg.host}"]


def test_failing_helper_on_a_private_registry(htreg: ocitest.Registry, ht_lock: Path,
                                              helpers: Helpers,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    helpers.make("test", {htreg.host: (USER, PASSWORD)})
    write_config({"credsStore": "test"})
    monkeypatch.setenv("FAKE_HELPER_FAIL", "1")
    r = fetch(ht_lock, "tool0")
    assert r.returncode == 5, r
    assert "warning: credential helper docker-credential-test" in r.stderr
    assert htreg.host in r.stderr and "anonymous access" in r.stderr


# ------------------------------------------------------------------------------------------
# token registry
# ------------------------------------------------------------------------------------------


@pytest.fixture
def tok_lock(tr: TokenRegistry, tmp_path: Path, unique_repo: str) -> Path:
    entries = {f"pub{i}": tr.push(f"public/{unique_repo}", {f"pub{i}": f"pub {i}".encode()},
                                  tag=str(i)) for i in range(3)}
    entries["priv"] = tr.push(f"private/{unique_repo}", {"priv": b"private bytes"})
    tr.ts.requests.clear()
    return write_lockfile(tmp_path / "tools.lock.json", entries)


def test_anonymous_public_pull_one_token_per_command(tr: TokenRegistry, tok_lock: Path) -> None:
    r = tf_main("fetch", "--lockfile", str(tok_lock), "pub0", "pub1", "pub2", "--jobs", "4")
    assert r.returncode == 0, r
    # three blobs fetched concurrently from one repository: a single token request
    assert [(q.method, q.user) for q in tr.ts.requests] == [("GET", None)]
    assert len(tr.ts.requests[0].scopes) == 1 and tr.ts.requests[0].scopes[0].endswith(":pull")


def test_private_repository_needs_credentials(tr: TokenRegistry, tok_lock: Path) -> None:
    r = fetch(tok_lock, "priv")
    assert r.returncode == 5, r
    assert tr.host in r.stderr and "anonymous access" in r.stderr and "HTTP 401" in r.stderr
    assert tr.ts.count() == 1  # one anonymous token, one re-authentication, no loop
    tr.ts.requests.clear()
    write_config({"auths": {tr.host: auths_entry()}})
    r = fetch(tok_lock)
    assert r.returncode == 0, r
    # two repositories (public and private): one token each, all as alice
    assert sorted((q.user, len(q.scopes)) for q in tr.ts.requests) == [(USER, 1), (USER, 1)]


def test_stale_credentials_on_public_pull(tr: TokenRegistry, tok_lock: Path) -> None:
    write_config({"auths": {tr.host: auths_entry(USER, "stale-" + PASSWORD)}})
    r = fetch(tok_lock, "pub0", "pub1", verbose=True)
    assert r.returncode == 0, r
    assert "rejected the credentials" in r.stderr and "retrying anonymously" in r.stderr
    assert [q.status for q in tr.ts.requests] == [401, 200]  # one refusal, then anonymous
    assert_no_secret(r.text, "stale-" + PASSWORD)
    tr.ts.requests.clear()
    r = fetch(tok_lock, "priv", verbose=True)
    assert r.returncode == 5, r
    assert "(rejected), then anonymous access" in r.stderr and tr.host in r.stderr
    assert_no_secret(r.text, "stale-" + PASSWORD)


def test_identity_token_refresh_flow(tr: TokenRegistry, tok_lock: Path) -> None:
    write_config({"auths": {tr.host: {"identitytoken": IDENTITY_TOKEN}}})
    r = fetch(tok_lock, "priv")
    assert r.returncode == 0, r
    assert [(q.method, q.grant_type, q.user) for q in tr.ts.requests] == [
        ("POST", "refresh_token", USER)]


def test_identity_token_falls_back_to_get(tr: TokenRegistry, tok_lock: Path,
                                          helpers: Helpers) -> None:
    tr.ts.refuse_post = True
    helpers.make("test", {tr.host: ("<token>", IDENTITY_TOKEN)})
    write_config({"credHelpers": {tr.host: "test"}})
    r = fetch(tok_lock, "priv", verbose=True)
    assert r.returncode == 0, r
    assert [(q.method, q.status) for q in tr.ts.requests] == [("POST", 405), ("GET", 200)]
    assert tr.ts.requests[1].user == USER
    assert_no_secret(r.text)


def test_registry_token_is_used_as_is(tr: TokenRegistry, tok_lock: Path,
                                      unique_repo: str) -> None:
    minted = tr.ts.mint(USER, [f"repository:private/{unique_repo}:pull"])
    write_config({"auths": {tr.host: {"registrytoken": minted}}})
    tr.ts.requests.clear()
    r = fetch(tok_lock, "priv", verbose=True)
    assert r.returncode == 0, r
    assert tr.ts.requests == []
    assert_no_secret(r.text, minted)


def test_token_expiry_is_honoured(tr: TokenRegistry, tok_lock: Path, unique_repo: str) -> None:
    tr.ts.expires_in = 100
    t = Transport()
    now = [1000.0]
    t.clock = lambda: now[0]
    path = f"/v2/public/{unique_repo}/tags/list"
    scope = f"repository:public/{unique_repo}:pull"

    def get() -> int:
        with t.request("GET", tr.host, path, scope=scope) as resp:
            return resp.status_code

    assert [get(), get()] == [200, 200]
    assert tr.ts.count() == 1  # reused
    now[0] += 80
    assert get() == 200 and tr.ts.count() == 1  # still valid
    now[0] += 15  # past expires_in minus the safety margin
    assert get() == 200 and tr.ts.count() == 2
    tr.ts.expires_in = None  # no expires_in: 60 s as the spec says
    now[0] += 1000
    assert get() == 200 and tr.ts.count() == 3
    now[0] += 50
    assert get() == 200 and tr.ts.count() == 3
    now[0] += 10
    assert get() == 200 and tr.ts.count() == 4


def test_reauthenticates_once_on_401(tr: TokenRegistry, tok_lock: Path, unique_repo: str) -> None:
    t = Transport()
    scope = f"repository:public/{unique_repo}:pull"
    t.remember_token(tr.host, frozenset({scope}), "revoked-token", 300)
    with t.request("GET", tr.host, f"/v2/public/{unique_repo}/tags/list", scope=scope) as resp:
        assert resp.status_code == 200
    assert tr.ts.count() == 1
    # a token that never grants access: exactly one new token, then the 401 is the answer
    with t.request("GET", tr.host, f"/v2/private/{unique_repo}/tags/list",
                   scope=f"repository:private/{unique_repo}:pull") as resp:
        assert resp.status_code == 401
    assert tr.ts.count() == 2


def test_insufficient_scope_adds_the_scope(tr: TokenRegistry, tok_lock: Path,
                                           unique_repo: str) -> None:
    write_config({"auths": {tr.host: auths_entry()}})
    t = Transport()
    a, b = f"public/{unique_repo}", f"private/{unique_repo}"
    scope_a = f"repository:{a}:pull"
    with t.request("GET", tr.host, f"/v2/{a}/tags/list", scope=scope_a) as resp:
        assert resp.status_code == 200
    # the caller names too small a scope: the registry says insufficient_scope
    for _ in range(2):
        with t.request("GET", tr.host, f"/v2/{b}/tags/list", scope=scope_a) as resp:
            assert resp.status_code == 200
    assert [sorted(q.scopes) for q in tr.ts.requests] == [
        [scope_a], sorted([scope_a, f"repository:{b}:pull"])]
    # the narrow token being the newest must not matter: the wider one is remembered
    t.remember_token(tr.host, frozenset({scope_a}), "narrow-token", 300)
    with t.request("GET", tr.host, f"/v2/{b}/tags/list", scope=scope_a) as resp:
        assert resp.status_code == 200
    assert tr.ts.count() == 2


def test_insufficient_scope_on_403(tr: TokenRegistry, tok_lock: Path, unique_repo: str) -> None:
    a, b = f"public/{unique_repo}", f"private/{unique_repo}"
    with FaultProxy(tr.host) as proxy:
        write_config({"auths": {proxy.host: auths_entry()}})
        challenge = (f'Bearer realm="{tr.ts.realm}",service="toolfetch-tests",'
                     f'scope="repository:{b}:pull",error="insufficient_scope"')
        proxy.add("status", path="/tags/list", status=403,
                  headers={"WWW-Authenticate": challenge})
        t = Transport()
        with t.request("GET", proxy.host, f"/v2/{b}/tags/list",
                       scope=f"repository:{a}:pull") as resp:
            assert resp.status_code == 200
    assert [sorted(q.scopes) for q in tr.ts.requests] == [
        sorted([f"repository:{a}:pull", f"repository:{b}:pull"])]


def test_lock_uses_one_token(tr: TokenRegistry, tmp_path: Path, unique_repo: str) -> None:
    repo = f"public/{unique_repo}/idx"
    with tr.pushing(repo):
        idx = ocitest.push_tool_index(tr.reg, repo, "1", {
            p: {"tool": p.encode()} for p in ("linux/amd64", "linux/arm64", "darwin/arm64")})
    tr.ts.requests.clear()
    (tmp_path / "tools.yaml").write_text(f"tools:\n  t:\n    ref: {idx.ref}\n    path: tool\n")
    r = tf_main("lock", "--lockfile", str(tmp_path / "tools.lock.json"))
    assert r.returncode == 0, r
    assert tr.ts.count() == 1  # index, 3 manifests, 3 blob heads: one token
    tr.ts.requests.clear()
    r = tf_main("fetch", "--lockfile", str(tmp_path / "tools.lock.json"), "--all-platforms")
    assert r.returncode == 0, r
    assert tr.ts.count() == 1  # 3 blobs


def test_realm_must_not_downgrade_https(tr: TokenRegistry) -> None:
    t = Transport()
    assert t.base_url("registry.example") == "https://registry.example"
    challenge = Challenge("bearer", {"realm": tr.ts.realm, "service": "x"})
    with pytest.raises(AuthError, match="plain HTTP"):
        t.fetch_token("registry.example", challenge, frozenset({"repository:a:pull"}), "test")
    assert tr.ts.count() == 0


def test_token_response_size_is_capped(tr: TokenRegistry, tok_lock: Path) -> None:
    tr.ts.oversize = True
    r = fetch(tok_lock, "pub0")
    assert r.returncode == 5, r
    assert "oversized" in r.stderr


def test_token_endpoint_errors_are_retried(tr: TokenRegistry, tok_lock: Path) -> None:
    tr.ts.fail_next.extend([503, 502])
    r = fetch(tok_lock, "pub0")
    assert r.returncode == 0, r
    assert [q.status for q in tr.ts.requests] == [503, 502, 200]


# ------------------------------------------------------------------------------------------
# login / logout
# ------------------------------------------------------------------------------------------


def test_login_logout_config_json(htreg: ocitest.Registry, ht_lock: Path) -> None:
    path = write_config({"auths": {"other.example": {"auth": "b3RoZXI6eA=="}},
                         "proxies": {"default": {"noProxy": "x"}}})
    r = tf_main("login", htreg.host, "-u", USER, "--password-stdin", "-v",
                stdin=PASSWORD + "\n")
    assert r.returncode == 0, r
    assert "Login Succeeded" in r.stdout
    assert_no_secret(r.text)
    data = json.loads(path.read_text())
    assert data["auths"][htreg.host] == {"auth": B64}
    assert data["auths"]["other.example"] == {"auth": "b3RoZXI6eA=="}
    assert data["proxies"] == {"default": {"noProxy": "x"}}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert fetch(ht_lock, "tool0").returncode == 0
    before = path.read_bytes()
    r = tf_main("login", htreg.host, "-u", USER, "--password-stdin", "-v",
                stdin="not-" + PASSWORD)
    assert r.returncode == 5, r
    assert htreg.host in r.stderr and "rejected" in r.stderr
    assert_no_secret(r.text, "not-" + PASSWORD)
    assert path.read_bytes() == before
    r = tf_main("logout", f"https://{htreg.host}/")
    assert r.returncode == 0 and f"Removing login credentials for {htreg.host}" in r.stdout, r
    assert json.loads(path.read_text())["auths"] == {"other.example": {"auth": "b3RoZXI6eA=="}}
    assert tf_main("logout", htreg.host).stdout.startswith("Not logged in")
    assert fetch(ht_lock, "tool1").returncode == 5


def test_login_with_credential_store(htreg: ocitest.Registry, ht_lock: Path,
                                     helpers: Helpers) -> None:
    helpers.make("test", {})
    path = write_config({"credsStore": "test"})
    r = tf_main("login", htreg.host, "-u", USER, "--password-stdin", stdin=PASSWORD)
    assert r.returncode == 0, r
    assert helpers.store("test") == {htreg.host: [USER, PASSWORD]}
    assert json.loads(path.read_text()) == {"credsStore": "test", "auths": {htreg.host: {}}}
    assert PASSWORD not in path.read_text()
    assert fetch(ht_lock, "tool0").returncode == 0
    r = tf_main("logout", htreg.host)
    assert r.returncode == 0, r
    assert helpers.store("test") == {}
    assert "erase " + htreg.host in helpers.calls("test")


def test_login_stores_with_the_helper_reads_use(htreg: ocitest.Registry, ht_lock: Path,
                                                helpers: Helpers) -> None:
    """One precedence for reads and login: a credHelpers entry spelled ``https://host``
    names the helper for ``host`` both ways (login once wrote such credentials, in base64,
    to auths while reads asked the helper)."""
    helpers.make("per-host", {})
    path = write_config({"credHelpers": {f"https://{htreg.host}": "per-host"}})
    r = tf_main("login", htreg.host, "-u", USER, "--password-stdin", stdin=PASSWORD)
    assert r.returncode == 0, r
    assert helpers.store("per-host") == {htreg.host: [USER, PASSWORD]}
    assert PASSWORD not in path.read_text() and B64 not in path.read_text()
    assert fetch(ht_lock, "tool0").returncode == 0
    r = tf_main("logout", htreg.host)
    assert r.returncode == 0 and helpers.store("per-host") == {}, r


def test_login_never_falls_back_to_anonymous(tr: TokenRegistry) -> None:
    path = Path(os.environ["DOCKER_CONFIG"]) / "config.json"
    r = tf_main("login", tr.host, "-u", USER, "--password-stdin", stdin="bad-" + PASSWORD)
    assert r.returncode == 5, r
    assert tr.host in r.stderr and not path.exists()
    r = tf_main("login", tr.host, "-u", USER, "--password-stdin", stdin=PASSWORD)
    assert r.returncode == 0, r
    assert json.loads(path.read_text())["auths"][tr.host] == {"auth": B64}


@pytest.mark.parametrize(("typed", "host", "key"), [
    ("docker.io", "registry-1.docker.io", "https://index.docker.io/v1/"),
    ("https://index.docker.io/v1/", "registry-1.docker.io", "https://index.docker.io/v1/"),
    ("https://ghcr.io/", "ghcr.io", "ghcr.io"),
    ("127.0.0.1:5000", "127.0.0.1:5000", "127.0.0.1:5000"),
])
def test_login_registry_names(typed: str, host: str, key: str) -> None:
    assert login.login_hosts(typed) == (host, key)


def test_login_usage_errors() -> None:
    assert tf_main("login", "127.0.0.1:1", "-u", USER, "--password-stdin", stdin="").returncode == 2
    assert tf_main("login", "bad host", "-u", USER, "--password-stdin", stdin="x").returncode == 2


# ------------------------------------------------------------------------------------------
# no secret in any output
# ------------------------------------------------------------------------------------------


def test_no_secret_in_tracebacks(tr: TokenRegistry, tok_lock: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """With -v an unexpected error prints a traceback: it must not carry secrets either."""
    write_config({"auths": {tr.host: {"identitytoken": IDENTITY_TOKEN}}})
    tr.ts.identity_tokens = {}  # the identity token is now refused: 400 invalid_grant
    try:
        r = fetch(tok_lock, "priv", verbose=True)
    finally:
        tr.ts.identity_tokens = {IDENTITY_TOKEN: USER}
    assert r.returncode == 5, r
    assert_no_secret(r.text)

    def boom(*a: Any, **kw: Any) -> Any:
        raise RuntimeError("unexpected")

    write_config({"auths": {tr.host: auths_entry()}})
    monkeypatch.setattr(tokens, "parse_token_answer", boom)
    r = fetch(tok_lock, "priv", verbose=True)
    assert r.returncode == 1 and "Traceback" in r.stderr, r
    assert_no_secret(r.text)


def test_scopes_are_normalised_and_coverage_is_by_action() -> None:
    """Registries reorder actions (``push,pull``); one token must still serve both spellings."""
    from toolfetch.registry.transport import normalize_scopes, scopes_cover

    assert normalize_scopes(["repository:a/b:push,pull", "repository:a/b:pull",
                             "repository:c:pull"]) == frozenset(
        {"repository:a/b:pull,push", "repository:c:pull"})
    granted = normalize_scopes(["repository:a/b:pull,push"])
    assert scopes_cover(granted, ["repository:a/b:pull"])
    assert scopes_cover(granted, ["repository:a/b:push,pull"])
    assert not scopes_cover(["repository:a/b:pull"], ["repository:a/b:push"])
    assert not scopes_cover(granted, ["repository:other:pull"])
    # A registry name with a port keeps its colon.
    assert normalize_scopes(["repository:host:5000/x:pull"]) == {"repository:host:5000/x:pull"}
