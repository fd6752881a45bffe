"""Tests of the test infrastructure itself (tests/ocitest.py, tests/conftest.py).

If these fail, every integration test built on them is suspect; if they pass, the helpers
are a trustworthy, independent cross-check of toolfetch.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import gzip
import io
import json
import os
import socket
import tarfile
import threading
import zipfile
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import ocitest
import pytest
import requests
from loopback import LoopbackHTTPServer
from ocitest import (
    ACCEPT_ALL,
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    EMPTY_JSON,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    TITLE,
    Registry,
)

MakeRegistry = Callable[..., Registry]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still "exists": check its state
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


# --------------------------------------------------------------------------------------
# pure builders
# --------------------------------------------------------------------------------------


def test_targz_is_deterministic_and_keeps_modes() -> None:
    files: dict[str, ocitest.TarValue] = {
        "bin/": (b"", 0o755),
        "bin/tool": (b"#!/bin/sh\necho hi\n", 0o755),
        "share/readme": b"text",
        "bin/alias": ocitest.Symlink("tool"),
        "bin/hard": ocitest.Hardlink("bin/tool"),
    }
    a, b = ocitest.targz(files), ocitest.targz(files)
    assert a == b
    assert a[:2] == b"\x1f\x8b"
    assert gzip.decompress(a) == ocitest.tarbytes(files)
    with tarfile.open(fileobj=io.BytesIO(a)) as tf:
        members = {m.name: m for m in tf.getmembers()}
        assert list(members) == ["bin", "bin/tool", "share/readme", "bin/alias", "bin/hard"]
        assert members["bin"].isdir()
        assert members["bin/tool"].mode == 0o755 and members["bin/tool"].mtime == 0
        assert members["share/readme"].mode == 0o644
        assert members["bin/alias"].issym() and members["bin/alias"].linkname == "tool"
        assert members["bin/hard"].islnk()
        tool = tf.extractfile("bin/tool")
        assert tool is not None and tool.read() == b"#!/bin/sh\necho hi\n"
    # unsafe names are kept verbatim (for unpack-safety tests)
    with tarfile.open(fileobj=io.BytesIO(ocitest.targz({"../evil": b"x", "/abs": b"y"}))) as tf:
        assert tf.getnames() == ["../evil", "/abs"]


def test_zipbytes_is_deterministic_and_keeps_modes() -> None:
    files: dict[str, ocitest.FileValue] = {"bin/tool": (b"\x7fELF...", 0o755), "README": b"r"}
    a = ocitest.zipbytes(files)
    assert a == ocitest.zipbytes(files)
    with zipfile.ZipFile(io.BytesIO(a)) as zf:
        assert zf.namelist() == ["bin/tool", "README"]
        assert zf.read("bin/tool") == b"\x7fELF..."
        assert (zf.getinfo("bin/tool").external_attr >> 16) & 0o777 == 0o755
        assert (zf.getinfo("README").external_attr >> 16) & 0o777 == 0o644


def test_oras_artifact_shape() -> None:
    art = ocitest.oras_artifact({"protoc": b"bin", "protoc.tar.gz": b"tgz"})
    m = art.manifest
    assert m["mediaType"] == OCI_MANIFEST and m["schemaVersion"] == 2
    assert m["artifactType"] == ocitest.TOOL_ARTIFACT_TYPE
    assert m["config"] == {
        "mediaType": OCI_EMPTY,
        "digest": ocitest.sha256_digest(b"{}"),
        "size": 2,
    }
    assert art.blobs[m["config"]["digest"]] == EMPTY_JSON
    assert [layer["annotations"][TITLE] for layer in m["layers"]] == ["protoc", "protoc.tar.gz"]
    assert [layer["mediaType"] for layer in m["layers"]] == [
        ocitest.OCTET_STREAM,
        ocitest.OCI_LAYER_TAR_GZIP,
    ]
    assert art.digest == ocitest.sha256_digest(art.manifest_bytes)
    oras_like = ocitest.oras_artifact(
        {"x": b"1"}, layer_media_type=ocitest.ORAS_DEFAULT_LAYER_MEDIA_TYPE, artifact_type=None
    )
    assert "artifactType" not in oras_like.manifest
    assert oras_like.layers[0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar"


def test_parse_platform() -> None:
    assert ocitest.parse_platform("linux/amd64") == {"architecture": "amd64", "os": "linux"}
    assert ocitest.parse_platform("linux/arm/v7") == {
        "architecture": "arm",
        "os": "linux",
        "variant": "v7",
    }
    with pytest.raises(ValueError):
        ocitest.parse_platform("linux")


def test_free_port_is_bindable() -> None:
    port = ocitest.free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


# --------------------------------------------------------------------------------------
# conftest fixtures
# --------------------------------------------------------------------------------------


def test_hermetic_environment(cache_dir: Path, tmp_path: Path) -> None:
    assert os.environ["TOOLFETCH_CACHE_DIR"] == str(cache_dir)
    assert Path(os.environ["HOME"]).is_relative_to(tmp_path)
    assert Path(os.environ["DOCKER_CONFIG"]).is_relative_to(tmp_path)
    assert Path(os.path.expanduser("~")).is_relative_to(tmp_path)
    assert "TOOLFETCH_MIRRORS" not in os.environ
    assert "TOOLFETCH_OFFLINE" not in os.environ
    assert "REGISTRY_AUTH_FILE" not in os.environ
    assert not cache_dir.exists() and cache_dir.parent.is_dir()


@pytest.mark.parametrize("suffix", ["A b", "x/y"])
def test_unique_repo_names(unique_repo: str, make_repo: Callable[..., str], suffix: str) -> None:
    other = make_repo()
    sub = make_repo("Up Stream")
    assert len({unique_repo, other, sub}) == 3
    for repo in (unique_repo, other, sub):
        # the Distribution repository-name grammar
        import re

        assert re.fullmatch(r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*", repo)
    assert unique_repo.startswith("t/test-unique-repo-names-")
    assert sub.endswith("/up-stream")


# --------------------------------------------------------------------------------------
# against the real registry
# --------------------------------------------------------------------------------------


def test_oci_index_roundtrip_byte_exact(registry: Registry, unique_repo: str) -> None:
    per_platform: dict[str, ocitest.PlatformContent] = {
        "linux/amd64": {"tool": b"amd64 binary"},
        "linux/arm64": {"tool.tar.gz": ocitest.targz({"bin/tool": (b"arm64", 0o755)})},
        "linux/arm/v7": {"tool.zip": ocitest.zipbytes({"tool": (b"armv7", 0o755)})},
        "windows/amd64": b"\x1f\x8b-not-really-gzip",
    }
    ti = ocitest.push_tool_index(registry, unique_repo, "1.0", per_platform)
    assert ti.media_type == OCI_INDEX
    assert ti.ref == f"{registry.host}/{unique_repo}:1.0"
    idx = json.loads(ti.index_bytes)
    assert [m["platform"] for m in idx["manifests"]] == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux"},
        {"architecture": "arm", "os": "linux", "variant": "v7"},
        {"architecture": "amd64", "os": "windows"},
    ]
    assert [m["digest"] for m in idx["manifests"]] == list(ti.manifests.values())

    for ref in ("1.0", ti.index_digest):
        r = ocitest.get_manifest(registry, unique_repo, ref)
        assert r.status_code == 200
        assert r.content == ti.index_bytes
        assert r.headers["Content-Type"] == OCI_INDEX
        assert r.headers["Docker-Content-Digest"] == ti.index_digest
        assert ocitest.skopeo_inspect_raw(registry, unique_repo, ref) == ti.index_bytes
    for plat, digest in ti.manifests.items():
        r = ocitest.get_manifest(registry, unique_repo, digest)
        assert r.content == ti.manifest_bytes[plat]
        assert r.headers["Content-Type"] == OCI_MANIFEST
        assert ocitest.skopeo_inspect_raw(registry, unique_repo, digest) == ti.manifest_bytes[plat]
        for layer in ti.layers[plat]:
            assert (
                ocitest.get_blob(registry, unique_repo, layer["digest"])
                == (ti.artifacts[plat].blobs[layer["digest"]])
            )
    win = json.loads(ti.manifest_bytes["windows/amd64"])
    cfg = json.loads(ti.artifacts["windows/amd64"].blobs[win["config"]["digest"]])
    assert (cfg["os"], cfg["architecture"]) == ("windows", "amd64")
    assert ocitest.list_tags(registry, unique_repo) == ["1.0"]


def test_docker_manifest_list_roundtrip_byte_exact(registry: Registry, unique_repo: str) -> None:
    layer = ocitest.targz({"tool": (b"amd64", 0o755)})
    ti = ocitest.push_tool_index(
        registry,
        unique_repo,
        "v2",
        {"linux/amd64": layer, "linux/arm/v7": {"tool": b"armv7"}},
        docker=True,
    )
    assert ti.media_type == DOCKER_MANIFEST_LIST
    r = ocitest.get_manifest(registry, unique_repo, "v2")
    assert r.content == ti.index_bytes
    assert r.headers["Content-Type"] == DOCKER_MANIFEST_LIST
    assert ocitest.skopeo_inspect_raw(registry, unique_repo, "v2") == ti.index_bytes
    lst = json.loads(ti.index_bytes)
    assert lst["manifests"][1]["platform"] == {
        "architecture": "arm",
        "os": "linux",
        "variant": "v7",
    }
    for plat, digest in ti.manifests.items():
        m = json.loads(ti.manifest_bytes[plat])
        assert m["mediaType"] == DOCKER_MANIFEST
        assert m["config"]["mediaType"] == DOCKER_CONFIG
        assert [x["mediaType"] for x in m["layers"]] == [DOCKER_LAYER_GZIP]
        assert ocitest.skopeo_inspect_raw(registry, unique_repo, digest) == ti.manifest_bytes[plat]
    amd64_layer = ti.layers["linux/amd64"][0]
    assert ocitest.get_blob(registry, unique_repo, amd64_layer["digest"]) == layer
    # the dict form becomes one tar.gz layer holding the files, executable
    arm = ti.layers["linux/arm/v7"][0]
    arm_bytes = ocitest.get_blob(registry, unique_repo, arm["digest"])
    with tarfile.open(fileobj=io.BytesIO(arm_bytes)) as tf:
        assert tf.getmember("tool").mode == 0o755


def test_raw_and_zip_artifact_byte_exact(
    registry: Registry, unique_repo: str, tmp_path: Path
) -> None:
    raw = bytes(range(256)) * 64
    zipped = ocitest.zipbytes({"bin/tool": (b"zip tool", 0o755)})
    art = ocitest.oras_artifact({"tool": raw, "tool.zip": zipped})
    digest = ocitest.push_artifact(registry, unique_repo, "raw", art)
    assert digest == art.digest
    assert ocitest.skopeo_inspect_raw(registry, unique_repo, "raw") == art.manifest_bytes
    r = ocitest.get_manifest(registry, unique_repo, "raw")
    assert r.content == art.manifest_bytes
    raw_layer, zip_layer = art.layers
    assert ocitest.get_blob(registry, unique_repo, raw_layer["digest"]) == raw
    assert ocitest.get_blob(registry, unique_repo, zip_layer["digest"]) == zipped
    assert ocitest.get_blob(registry, unique_repo, art.config["digest"]) == b"{}"

    dest = ocitest.skopeo_copy_to_dir(registry, unique_repo, "raw", tmp_path / "dir")
    assert (dest / "manifest.json").read_bytes() == art.manifest_bytes
    assert (dest / raw_layer["digest"].split(":")[1]).read_bytes() == raw
    assert (dest / zip_layer["digest"].split(":")[1]).read_bytes() == zipped


def test_push_manifest_bytes_and_tag_by_digest(registry: Registry, unique_repo: str) -> None:
    art = ocitest.oras_artifact({"a": b"a"})
    for data in art.blobs.values():
        ocitest.push_blob(registry, unique_repo, data)
    # compact bytes, not encode_json's layout: stored and served verbatim
    body = json.dumps(art.manifest, separators=(",", ":")).encode()
    digest = ocitest.push_manifest(registry, unique_repo, ocitest.sha256_digest(body), body)
    assert digest == ocitest.sha256_digest(body)
    assert ocitest.get_manifest(registry, unique_repo, digest).content == body
    assert ocitest.list_tags(registry, unique_repo) == []
    # Distribution 2.8: a repository without tags is "unknown" to the tags endpoint
    r = registry.request("GET", f"/v2/{unique_repo}/tags/list")
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "NAME_UNKNOWN"
    assert ocitest.push_manifest(registry, unique_repo, "t", body, OCI_MANIFEST) == digest
    assert ocitest.tag_exists(registry, unique_repo, "t")


def test_manifest_put_validation(registry: Registry, unique_repo: str) -> None:
    """Distribution 2.8 checks references on PUT; it has no referrers API."""
    art = ocitest.oras_artifact({"x": b"validation"})

    def put(ref: str, body: bytes, media_type: str) -> requests.Response:
        return registry.request(
            "PUT",
            f"/v2/{unique_repo}/manifests/{ref}",
            data=body,
            headers={"Content-Type": media_type},
        )

    r = put("a", art.manifest_bytes, OCI_MANIFEST)  # blobs not pushed yet
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"
    index = ocitest.encode_json(ocitest.index_manifest([art.descriptor("linux/amd64")]))
    r = put("i", index, OCI_INDEX)  # child manifest not pushed yet
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"
    ocitest.push_artifact(registry, unique_repo, "a", art)
    assert put("i", index, OCI_INDEX).status_code == 201
    # Content-Type must agree with the mediaType field
    r = put("b", art.manifest_bytes, DOCKER_MANIFEST)
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "MANIFEST_INVALID"
    # no OCI 1.1 referrers endpoint: clients need the sha256-<hex> tag fallback
    assert registry.request("GET", f"/v2/{unique_repo}/referrers/{art.digest}").status_code == 404


def test_accept_header_behaviour(registry: Registry, unique_repo: str) -> None:
    """Documents Distribution 2.8's content negotiation (see ocitest's docstring)."""
    oci = ocitest.push_tool_index(registry, unique_repo, "oci", {"linux/amd64": {"x": b"1"}})
    dock = ocitest.push_tool_index(
        registry, unique_repo, "docker", {"linux/amd64": {"x": b"1"}}, docker=True
    )

    def get(ref: str, accept: str | None) -> requests.Response:
        headers: dict[str, str | None] = {"Accept": accept}  # None: no Accept header at all
        return registry.request("GET", f"/v2/{unique_repo}/manifests/{ref}", headers=headers)

    # OCI types must be accepted explicitly — even when asking by digest.
    for ref in ("oci", oci.index_digest):
        for accept in (None, "*/*", OCI_MANIFEST, DOCKER_MANIFEST_LIST):
            r = get(ref, accept)
            assert r.status_code == 404, (ref, accept)
            assert r.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
            assert "accept header does not support OCI indexes" in r.text
        assert get(ref, OCI_INDEX).content == oci.index_bytes
    r = get(oci.manifests["linux/amd64"], None)
    assert r.status_code == 404 and "does not support OCI manifests" in r.text
    assert (
        registry.request(
            "HEAD", f"/v2/{unique_repo}/manifests/oci", headers={"Accept": None}
        ).status_code
        == 404
    )
    # Docker types by digest: served whatever the Accept header says.
    assert get(dock.index_digest, None).content == dock.index_bytes
    assert get(dock.manifests["linux/amd64"], OCI_MANIFEST).status_code == 200
    # A Docker list by tag without list support: replaced by its linux/amd64 manifest…
    r = get("docker", DOCKER_MANIFEST)
    assert r.status_code == 200
    assert r.content == dock.manifest_bytes["linux/amd64"]
    assert r.headers["Docker-Content-Digest"] == dock.manifests["linux/amd64"]
    # …and without schema-2 support, down-converted to schema 1 (which fails for configs
    # without history: 400 MANIFEST_INVALID).
    assert get("docker", None).status_code == 400
    assert get("docker", ACCEPT_ALL).content == dock.index_bytes


def test_corrupt_blob_keeps_size_changes_digest(fresh_registry: Registry) -> None:
    reg, repo = fresh_registry, "t/corrupt"
    data = os.urandom(4096)
    desc = ocitest.push_blob(reg, repo, data)
    path = ocitest.corrupt_blob(reg, desc["digest"])
    assert path == ocitest.blob_path(reg, desc["digest"])
    assert path.stat().st_size == len(data)
    r = reg.request("GET", f"/v2/{repo}/blobs/{desc['digest']}")
    assert r.status_code == 200
    assert int(r.headers["Content-Length"]) == len(data) == len(r.content)
    assert r.content != data
    assert ocitest.sha256_digest(r.content) != desc["digest"]
    # the registry does not notice: it still vouches for the old digest
    assert r.headers["Docker-Content-Digest"] == desc["digest"]
    head = reg.request("HEAD", f"/v2/{repo}/blobs/{desc['digest']}")
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == len(data)
    # Range requests work on blobs (206) — for resume tests
    r = reg.request("GET", f"/v2/{repo}/blobs/{desc['digest']}", headers={"Range": "bytes=10-"})
    assert r.status_code == 206 and r.content == path.read_bytes()[10:]

    other = ocitest.push_blob(reg, repo, b"to be deleted")
    ocitest.delete_blob_file(reg, other["digest"])
    assert reg.request("HEAD", f"/v2/{repo}/blobs/{other['digest']}").status_code == 404
    r = reg.request("GET", f"/v2/{repo}/blobs/{other['digest']}")
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "BLOB_UNKNOWN"


def test_htpasswd_registry(make_registry: MakeRegistry) -> None:
    creds = ("alice", "s3cret pass")
    reg = make_registry(htpasswd=creds)
    assert reg.auth == creds
    r = reg.request("GET", "/v2/", auth=None)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert reg.request("GET", "/v2/", auth=("alice", "wrong")).status_code == 401
    assert reg.request("GET", "/v2/").status_code == 200

    art = ocitest.oras_artifact({"tool": b"private"})
    ocitest.push_artifact(reg, "t/private", "1", art)  # pushes with reg.auth
    r = ocitest.get_manifest(reg, "t/private", "1", auth=None)
    assert r.status_code == 401
    assert ocitest.get_manifest(reg, "t/private", "1").content == art.manifest_bytes
    blob = art.layers[0]["digest"]
    assert reg.request("GET", f"/v2/t/private/blobs/{blob}", auth=None).status_code == 401
    assert ocitest.skopeo_inspect_raw(reg, "t/private", "1") == art.manifest_bytes
    with pytest.raises(ocitest.RegistryError):
        ocitest.skopeo_inspect_raw(reg, "t/private", "1", creds=None)


def test_stop_start_keeps_content_and_port(fresh_registry: Registry) -> None:
    reg = fresh_registry
    art = ocitest.oras_artifact({"tool": b"persist"})
    ocitest.push_artifact(reg, "t/persist", "1", art)
    host, pid = reg.host, reg.pid
    assert pid is not None
    reg.stop()
    assert not reg.running and not pid_alive(pid)
    with pytest.raises(requests.ConnectionError):
        reg.request("GET", "/v2/", timeout=2)
    reg.start()
    assert reg.running and reg.host == host and reg.pid != pid
    assert ocitest.get_manifest(reg, "t/persist", "1").content == art.manifest_bytes
    assert ocitest.get_blob(reg, "t/persist", art.layers[0]["digest"]) == b"persist"


@pytest.mark.usefixtures("need_registry")
def test_close_kills_process_and_removes_owned_dir() -> None:
    with Registry() as reg:
        pid, d = reg.pid, reg.dir
        assert pid is not None and pid_alive(pid) and d.is_dir()
    assert not pid_alive(pid) and not d.exists()


def test_startup_failure_reports_log(tmp_path: Path, make_registry: MakeRegistry) -> None:
    with pytest.raises(ocitest.RegistryError, match="docker-registry exited"):
        make_registry(extra_config={"storage": {"nosuchdriver": {}}})


def test_registry_env_vars_do_not_leak_into_config(
    make_registry: MakeRegistry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Distribution would read this as `auth: {file: …}` and refuse to start.
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "auth.json"))
    reg = make_registry()
    assert reg.request("GET", "/v2/").status_code == 200


def test_pull_through_proxy(make_registry: MakeRegistry) -> None:
    upstream = make_registry()
    ti = ocitest.push_tool_index(upstream, "t/proxied", "1", {"linux/amd64": {"tool": b"up"}})
    proxy = make_registry(proxy_remote=upstream.url)
    r = ocitest.get_manifest(proxy, "t/proxied", "1")
    assert r.status_code == 200 and r.content == ti.index_bytes
    layer = ti.layers["linux/amd64"][0]
    assert ocitest.get_blob(proxy, "t/proxied", layer["digest"]) == b"up"
    assert ocitest.skopeo_inspect_raw(proxy, "t/proxied", "1") == ti.index_bytes
    # a pull-through cache is read-only
    with pytest.raises(ocitest.RegistryError, match="405"):
        ocitest.push_blob(proxy, "t/proxied", b"nope")
    # once fetched, content survives the upstream going away; unfetched content is a 500
    upstream.stop()
    assert ocitest.get_manifest(proxy, "t/proxied", "1").content == ti.index_bytes
    assert ocitest.get_blob(proxy, "t/proxied", layer["digest"]) == b"up"
    missing = ocitest.get_manifest(proxy, "t/proxied", ti.manifests["linux/amd64"])
    assert missing.status_code == 500


def test_token_auth_registry(make_registry: MakeRegistry, tmp_path: Path) -> None:
    jwt = pytest.importorskip("jwt")
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ocitest token issuer")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    bundle = tmp_path / "token-ca.pem"
    bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    realm = "http://127.0.0.1:1/token"
    reg = make_registry(
        token_auth={
            "realm": realm,
            "service": "ocitest-registry",
            "issuer": "ocitest-issuer",
            "rootcertbundle": str(bundle),
        }
    )
    r = reg.request("GET", "/v2/t/tok/manifests/1", headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 401
    challenge = r.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'realm="{realm}"' in challenge and 'service="ocitest-registry"' in challenge
    assert 'scope="repository:t/tok:pull"' in challenge

    def token(actions: list[str]) -> str:
        t = int(now.timestamp())
        claims = {
            "iss": "ocitest-issuer",
            "sub": "alice",
            "aud": "ocitest-registry",
            "iat": t,
            "nbf": t - 60,
            "exp": t + 600,
            "jti": base64.urlsafe_b64encode(os.urandom(9)).decode(),
            "access": [{"type": "repository", "name": "t/tok", "actions": actions}],
        }
        der = cert.public_bytes(serialization.Encoding.DER)
        x5c = [base64.b64encode(der).decode()]
        return str(jwt.encode(claims, key, algorithm="ES256", headers={"x5c": x5c}))

    push_token, pull_token = token(["pull", "push"]), token(["pull"])
    data = b"token-protected"
    s = ocitest.session()
    s.headers["Authorization"] = f"Bearer {push_token}"
    r = s.post(reg.url + "/v2/t/tok/blobs/uploads/", timeout=10)
    assert r.status_code == 202, r.text
    loc = requests.compat.urljoin(reg.url + "/", r.headers["Location"])
    digest = ocitest.sha256_digest(data)
    r = s.put(f"{loc}&digest={digest}", data=data, timeout=10)
    assert r.status_code == 201, r.text
    s.headers["Authorization"] = f"Bearer {pull_token}"
    assert s.get(f"{reg.url}/v2/t/tok/blobs/{digest}", timeout=10).content == data
    assert s.post(reg.url + "/v2/t/tok/blobs/uploads/", timeout=10).status_code == 401
    s.close()


class _Faulty(BaseHTTPRequestHandler):
    """``/hangup`` fails as a client that went away; anything else fails as a server bug."""

    def do_GET(self) -> None:
        if self.path == "/hangup":
            raise ConnectionResetError(104, "Connection reset by peer")
        raise ValueError("a bug in the fake server")

    def log_message(self, *args: object) -> None:
        pass


def test_a_fake_servers_faults_never_land_in_the_cli_stderr_a_test_asserts_on(
        capfd: pytest.CaptureFixture[str]) -> None:
    # tf_main redirects sys.stderr while the CLI runs; a server thread's traceback printed
    # there looked like toolfetch's own (CI failure, test_a_404_at_fetch_names_…).
    server = LoopbackHTTPServer(_Faulty)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            for path in ("/hangup", "/bug"):
                with pytest.raises(requests.ConnectionError):
                    requests.get(f"http://127.0.0.1:{server.server_port}{path}", timeout=10)
    finally:
        server.shutdown()
        server.server_close()
    assert captured.getvalue() == ""
    real = capfd.readouterr().err
    assert "ValueError: a bug in the fake server" in real  # a real fault stays visible
    assert "ConnectionResetError" not in real  # a peer hanging up is not a fault
