"""``push``, ``publish`` and ``tag`` against a real Distribution, cross-checked with skopeo,
the registry's access log and the OCI JSON Schemas. The behaviour is driven through
``toolfetch.Client`` (``push``, ``publish``, ``tag``); a few tests run the command line for
its output and exit codes."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import ocitest
import pytest
from accesslog import LogMark
from ocischema import validate_layout, validate_manifest
from ocitest import Registry
from tf import assert_error, assert_ok, host, other_platform, tf_main, write_config

import toolfetch

TOOL_TYPE = "application/vnd.toolfetch.tool.v1"
EMPTY = {"mediaType": "application/vnd.oci.empty.v1+json", "size": 2,
         "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest()}
MakeRegistry = Callable[..., Registry]


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_inputs(root: Path, salt: str = "") -> tuple[Path, Path]:
    """A plain file and a directory (nested, an executable, a relative symlink)."""
    root.mkdir(parents=True, exist_ok=True)
    f = root / "notes.txt"
    f.write_bytes(f"plain file {salt}\n".encode())
    d = root / "tool"
    (d / "bin").mkdir(parents=True)
    (d / "share" / "doc").mkdir(parents=True)
    exe = d / "bin" / "tool"
    exe.write_bytes(f"#!/bin/sh\necho tool {salt}\n".encode())
    exe.chmod(0o775)
    (d / "share" / "doc" / "README").write_bytes(b"readme\n")
    (d / "bin" / "alias").symlink_to("tool")
    return f, d


def test_push_file_and_directory(registry: Registry, unique_repo: str, tmp_path: Path) -> None:
    f, d = make_inputs(tmp_path / "in")
    client = toolfetch.Client()
    digest = client.push(registry.ref(unique_repo, "1"), [f, d],
                         annotations={"org.example.k": "v"}).digest
    raw = ocitest.skopeo_inspect_raw(registry, unique_repo, "1")
    assert sha(raw) == digest
    m = validate_manifest(raw)
    assert m["mediaType"] == ocitest.OCI_MANIFEST and m["artifactType"] == TOOL_TYPE
    assert m["config"] == EMPTY and m["annotations"] == {"org.example.k": "v"}
    assert ocitest.get_blob(registry, unique_repo, EMPTY["digest"]) == b"{}"
    file_layer, dir_layer = m["layers"]
    assert file_layer == {"mediaType": "application/octet-stream", "digest": sha(f.read_bytes()),
                          "size": f.stat().st_size,
                          "annotations": {ocitest.TITLE: "notes.txt"}}
    assert ocitest.get_blob(registry, unique_repo, file_layer["digest"]) == f.read_bytes()
    blob = ocitest.get_blob(registry, unique_repo, dir_layer["digest"])
    assert dir_layer["mediaType"] == ocitest.OCI_LAYER_TAR_GZIP
    assert dir_layer["digest"] == sha(blob) and dir_layer["size"] == len(blob)
    tar = gzip.decompress(blob)
    assert dir_layer["annotations"] == {ocitest.TITLE: "tool", "io.deis.oras.content.unpack":
                                        "true", "io.deis.oras.content.digest": sha(tar)}
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        members = {m.name: m for m in tf.getmembers()}
        assert list(members) == ["tool", "tool/bin", "tool/bin/alias", "tool/bin/tool",
                                 "tool/share", "tool/share/doc", "tool/share/doc/README"]
        assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 for m in members.values())
        assert members["tool/bin/tool"].mode == 0o755
        assert members["tool/share/doc/README"].mode == 0o644
        assert members["tool/bin/alias"].issym() and members["tool/bin/alias"].linkname == "tool"
        extracted = tf.extractfile("tool/bin/tool")
        assert extracted is not None and extracted.read() == (d / "bin" / "tool").read_bytes()
    # deterministic: the same inputs (touched again) give the same digest
    (d / "bin" / "tool").touch()
    again = tf_main("push", registry.ref(unique_repo, "2"), f, d, "-a", "org.example.k=v")
    assert_ok(again)
    assert again.stdout == f"{digest}\n"  # the command line prints the digest alone
    # skopeo reads and copies what was pushed
    out = ocitest.skopeo_copy_to_dir(registry, unique_repo, "1", tmp_path / "skopeo")
    assert (out / "manifest.json").read_bytes() == raw
    assert (out / file_layer["digest"].partition(":")[2]).read_bytes() == f.read_bytes()


def test_push_options_and_skip_existing(registry: Registry, unique_repo: str,
                                        tmp_path: Path) -> None:
    f = tmp_path / "sbom.json"
    f.write_text('{"k": 1}')
    client = toolfetch.Client()

    def push(tag: str) -> None:
        client.push(registry.ref(unique_repo, tag), [f"{f}:application/json"],
                    artifact_type="application/vnd.example.thing")

    push("a")
    m = json.loads(ocitest.get_manifest(registry, unique_repo, "a").content)
    assert m["artifactType"] == "application/vnd.example.thing"
    assert m["layers"][0]["mediaType"] == "application/json"
    mark = LogMark(registry)
    push("b")
    assert mark.count("POST", "/blobs/uploads/") == 0, mark.requests()
    assert mark.count("HEAD", f"/v2/{unique_repo}/blobs/", 200) == 2


def test_chunked_upload_of_a_large_blob(registry: Registry, unique_repo: str, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLFETCH_UPLOAD_CHUNK_SIZE", "4M")
    data = random.Random(7).randbytes(12 * 1024 * 1024 + 123)
    big = tmp_path / "big.bin"
    big.write_bytes(data)
    mark = LogMark(registry)
    toolfetch.Client().push(registry.ref(unique_repo, "big"), [big])
    assert mark.count("PATCH", f"/v2/{unique_repo}/blobs/uploads/", 202) == 4
    assert mark.count("PUT", "digest=" + sha(data), 201) == 1
    layer = json.loads(ocitest.get_manifest(registry, unique_repo, "big").content)["layers"][0]
    assert layer["digest"] == sha(data) and layer["size"] == len(data)
    out = ocitest.skopeo_copy_to_dir(registry, unique_repo, "big", tmp_path / "skopeo")
    assert (out / sha(data).partition(":")[2]).read_bytes() == data


def test_mount_between_repositories(registry: Registry, make_repo: Callable[..., str],
                                    tmp_path: Path) -> None:
    src, dst, other = make_repo("src"), make_repo("dst"), make_repo("other")
    f, _ = make_inputs(tmp_path)
    client = toolfetch.Client()
    client.push(registry.ref(src, "1"), [f])
    mark = LogMark(registry)
    client.push(registry.ref(dst, "1"), [f], mount_from=[src])
    assert mark.count("POST", f"/v2/{dst}/blobs/uploads/?mount=", 201) == 2
    assert mark.count("PATCH") == 0 and mark.count("PUT", "/blobs/uploads/") == 0
    assert ocitest.get_blob(registry, dst, sha(f.read_bytes())) == f.read_bytes()
    # a refused mount (the blob is not in `other`) continues as a plain upload
    g = tmp_path / "fresh.txt"
    g.write_text("fresh")
    mark = LogMark(registry)
    client.push(registry.ref(dst, "2"), [g], mount_from=[other])
    assert mark.count("POST", "?mount=" + sha(b"fresh"), 202) == 1
    assert mark.count("PUT", "digest=" + sha(b"fresh"), 201) == 1
    assert ocitest.get_blob(registry, dst, sha(b"fresh")) == b"fresh"


def test_publish_index_then_lock_fetch_run(registry: Registry, unique_repo: str,
                                           tmp_path: Path) -> None:
    plats = [host(), other_platform()]
    dirs = {}
    for p in plats:
        _, dirs[p] = make_inputs(tmp_path / p.replace("/", "-"), salt=p)
    ref = registry.ref(unique_repo, "1.0")
    client = toolfetch.Client(tmp_path / "ws" / "tools.lock.json")
    published = client.publish(ref, {p: [dirs[p]] for p in plats},
                               annotations={"org.opencontainers.image.version": "1.0"})
    raw = ocitest.skopeo_inspect_raw(registry, unique_repo, "1.0")
    assert sha(raw) == published.digest
    index = validate_manifest(raw)
    assert index["mediaType"] == ocitest.OCI_INDEX and index["artifactType"] == TOOL_TYPE
    assert index["annotations"] == {"org.opencontainers.image.version": "1.0"}
    assert [ocitest.parse_platform(p) for p in plats] == [m["platform"]
                                                           for m in index["manifests"]]
    for m in index["manifests"]:
        child = ocitest.skopeo_inspect_raw(registry, unique_repo, m["digest"])
        assert sha(child) == m["digest"] and len(child) == m["size"]
        assert validate_manifest(child)["artifactType"] == TOOL_TYPE
    # skopeo copies the whole index with digests preserved
    ocitest.skopeo_copy(f"docker://{ref}", f"oci:{tmp_path / 'sk'}:x")
    sk_index = json.loads((tmp_path / "sk" / "index.json").read_text())
    assert sk_index["manifests"][0]["digest"] == sha(raw)
    # and toolfetch locks, fetches and runs it
    ws = tmp_path / "ws"
    write_config(ws / "tools.yaml", {"tools": {"tool": {"ref": ref, "path": "tool/bin/tool"}}})
    with client:
        client.lock()
        lock = json.loads((ws / "tools.lock.json").read_text())
        assert sorted(lock["tools"]["tool"]["platforms"]) == sorted(plats)
        which = client.which("tool")
        out = subprocess.run([which], capture_output=True, text=True, check=True)
    assert out.stdout == f"tool {host()}\n"


def test_push_and_publish_into_oci_layout(tmp_path: Path) -> None:
    f, d = make_inputs(tmp_path / "in")
    layout = tmp_path / "layout"
    client = toolfetch.Client()
    r = client.push(f"oci-layout:{layout}:v1", [f, d])
    p = client.publish(f"oci-layout:{layout}:multi", {"linux/amd64": [f],
                                                       "linux/arm64": [f, d]})
    index = validate_layout(layout)
    names = {m["annotations"][ocitest.REF_NAME]: m["digest"] for m in index["manifests"]}
    assert names == {"v1": r.digest, "multi": p.digest}
    raw = ocitest.skopeo("inspect", "--raw", f"oci:{layout}:v1").stdout
    assert sha(raw) == r.digest


def test_tag(registry: Registry, unique_repo: str, tmp_path: Path) -> None:
    f, _ = make_inputs(tmp_path)
    client = toolfetch.Client()
    digest = client.push(registry.ref(unique_repo, "1"), [f]).digest
    assert client.tag(registry.ref(unique_repo, "1"), ["stable"]).digest == digest
    r = tf_main("tag", registry.ref(unique_repo, "1"), "v1.0")
    assert_ok(r)
    assert r.stdout == f"{digest}\n"
    assert sorted(ocitest.list_tags(registry, unique_repo)) == ["1", "stable", "v1.0"]
    for tag in ("stable", "v1.0"):
        assert sha(ocitest.get_manifest(registry, unique_repo, tag).content) == digest
    assert_error(tf_main("tag", registry.ref(unique_repo, "1"), "bad tag"), 2, "bad tag")
    with pytest.raises(toolfetch.NotFoundError, match="nope"):
        client.tag(registry.ref(unique_repo, "nope"), ["x"])


def test_push_errors(registry: Registry, unique_repo: str, tmp_path: Path,
                     make_registry: MakeRegistry) -> None:
    f, _ = make_inputs(tmp_path)
    assert_error(tf_main("push", registry.ref(unique_repo, "1"), tmp_path / "missing"), 2,
                 "missing", "no such file")
    assert_error(tf_main("push", registry.ref(unique_repo, sha(b"x")), f), 2, "digest")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("other")
    assert_error(tf_main("push", registry.ref(unique_repo, "1"), f, tmp_path / "b/notes.txt"),
                 2, "notes.txt", "unique")
    assert_error(tf_main("publish", registry.ref(unique_repo, "1"), "--platform", "linux"), 2,
                 "OS/ARCH=PATH")
    assert_error(tf_main("push", registry.ref(unique_repo, "1"), f, "-a", "novalue"), 2,
                 "KEY=VALUE")
    proxy = make_registry(proxy_remote=registry.url)
    assert_error(tf_main("push", proxy.ref(unique_repo, "1"), f), 2, proxy.host,
                 "does not accept pushes")
    assert ocitest.list_tags(registry, unique_repo) == []


def test_push_and_mount_with_bearer_tokens(make_registry: MakeRegistry, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Token auth: push asks for pull,push; a mount asks for one token covering both
    repositories, reused for every blob."""
    pytest.importorskip("jwt")
    pytest.importorskip("cryptography")
    import base64
    import os

    from tokenserver import TokenServer

    with TokenServer(users={"alice": "secret pw"}) as ts:
        reg = make_registry(token_auth=ts.registry_auth(tmp_path / "ts"))
        f, d = make_inputs(tmp_path / "in")
        ref = reg.ref("team/src", "1")
        assert_error(tf_main("push", ref, f), 5, reg.host)  # anonymous: no push
        auth = base64.b64encode(b"alice:secret pw").decode()
        config = Path(os.environ["DOCKER_CONFIG"]) / "config.json"
        config.write_text(json.dumps({"auths": {reg.host: {"auth": auth}}}))
        assert_ok(tf_main("push", ref, f, d))
        assert any("repository:team/src:pull,push" in r.scopes for r in ts.requests)
        before = len(ts.requests)
        mark = LogMark(reg)
        assert_ok(tf_main("copy", ref, reg.ref("team/dst", "1")))
        assert mark.count("POST", "/v2/team/dst/blobs/uploads/?mount=", 201) == 3
        mount_tokens = [r for r in ts.requests[before:]
                        if {"repository:team/dst:pull,push", "repository:team/src:pull"}
                        <= set(r.scopes)]
        assert len(mount_tokens) == 1, ts.requests[before:]
