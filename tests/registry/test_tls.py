"""HTTPS registries: a self-signed loopback registry is used unverified (as docker treats its
insecure registries) through one TLS context that loads no CA store, and a registry that is
not insecure is verified, so a self-signed certificate is refused."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import ocitest
import pytest
from tf import assert_error, assert_ok, script, tf_main, write_config

from toolfetch.registry import session as session_module
from toolfetch.registry import transport as transport_module
from toolfetch.registry.client import RegistryClient
from toolfetch.registry.session import unverified_context
from toolfetch.registry.transport import Transport


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory: pytest.TempPathFactory, need_registry: None
                 ) -> Iterator[ocitest.Registry]:
    reg = ocitest.Registry(workdir=tmp_path_factory.mktemp("tls"), tls=True)
    try:
        yield reg
    finally:
        reg.close()


@pytest.fixture
def ca_loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every CA store load any TLS context of this process makes."""
    calls: list[str] = []
    for name in ("load_default_certs", "load_verify_locations", "set_default_verify_paths"):
        original = getattr(ssl.SSLContext, name)

        def spy(self: ssl.SSLContext, *args: object, _name: str = name,
                _original: object = original, **kw: object) -> object:
            calls.append(_name)
            return _original(self, *args, **kw)  # type: ignore[operator]

        monkeypatch.setattr(ssl.SSLContext, name, spy)
    return calls


def test_lock_fetch_run_against_a_self_signed_loopback_registry(
    tls_registry: ocitest.Registry, unique_repo: str, tmp_path: Path, cache_dir: Path
) -> None:
    art = ocitest.oras_artifact({"hello": script("hello")})
    ocitest.push_artifact(tls_registry, unique_repo, "1", art)
    lockfile = tmp_path / "tools.lock.json"
    write_config(tmp_path / "tools.yaml",
                 {"tools": {"hello": {"ref": tls_registry.ref(unique_repo, "1")}}})
    assert_ok(tf_main("lock", "--lockfile", lockfile))
    assert_ok(tf_main("fetch", "--lockfile", lockfile))
    r = tf_main("which", "--lockfile", lockfile, "hello")
    assert_ok(r)
    assert Path(r.stdout.strip()).read_bytes() == script("hello")


def test_unverified_connections_share_one_context_without_a_ca_store(
    tls_registry: ocitest.Registry, unique_repo: str, ca_loads: list[str]
) -> None:
    art = ocitest.oras_artifact({"x": b"x"})
    ocitest.push_artifact(tls_registry, unique_repo, "1", art)
    ca_loads.clear()
    t = Transport()
    assert t.base_url(tls_registry.host) == f"https://{tls_registry.host}"  # the probe: TLS
    client = RegistryClient(t, tls_registry.host, unique_repo)
    for _ in range(3):
        assert client.get_manifest("1").digest.hex == art.digest.split(":")[1]
        t.session.close()  # every round on new connections
    assert ca_loads == []
    assert unverified_context().cert_store_stats()["x509_ca"] == 0
    assert unverified_context().verify_mode == ssl.CERT_NONE


def test_plain_http_loopback_falls_back_to_http(registry: ocitest.Registry) -> None:
    assert Transport().base_url(registry.host) == f"http://{registry.host}"


def test_a_registry_that_is_not_insecure_is_verified(
    tls_registry: ocitest.Registry, unique_repo: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """The adapter only relaxes unverified pools: treated as a remote registry, the same
    self-signed server is refused, with a message that says TLS."""
    lockfile = tmp_path / "tools.lock.json"
    write_config(tmp_path / "tools.yaml",
                 {"tools": {"x": {"ref": tls_registry.ref(unique_repo, "1")}}})
    for module in (transport_module, session_module):  # the scheme, and the verification
        monkeypatch.setattr(module, "is_insecure_host", lambda host: False)
    r = tf_main("lock", "--lockfile", lockfile)
    assert_error(r, 6, tls_registry.host, "TLS certificate not trusted",
                 "TOOLFETCH_INSECURE_REGISTRIES", "after 1 attempt ")  # not retried
    assert not lockfile.exists()
