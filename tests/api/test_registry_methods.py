"""The registry methods of ``toolfetch.Client`` as a release or CI script uses them, against a
real Distribution: push, publish (per platform, and a lockfile's HTTP assets), tag, copy,
exists, attach and referrers, pull (twice into the same directory), inspect's JSON with the
WASM kind, login and logout. Each failure raises the class whose exit code the CLI exits
with."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import ocitest
import pytest
from assetserver import AssetServer
from ocitest import Registry
from tf import host, other_platform, script, write_config

import toolfetch


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def files(root: Path, **contents: bytes) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for name, data in contents.items():
        (root / name).write_bytes(data)
        out.append(root / name)
    return out


def test_a_release_script_pushes_tags_copies_and_checks(registry: Registry, unique_repo: str,
                                                        tmp_path: Path) -> None:
    client = toolfetch.Client()
    notes, tool = files(tmp_path / "in", **{"notes.txt": b"notes", "tool": b"#!/bin/sh\n"})
    ref = registry.ref(unique_repo, "1.0")
    pushed = client.push(ref, [notes, str(tool)], annotations={"org.example.k": "v"})
    raw = ocitest.get_manifest(registry, unique_repo, "1.0").content
    assert pushed.digest == sha(raw) and pushed.reference == ref
    assert str(pushed) == f"{ref}@{pushed.digest}"
    manifest = json.loads(raw)
    assert manifest["artifactType"] == "application/vnd.toolfetch.tool.v1"
    assert manifest["annotations"] == {"org.example.k": "v"}
    assert [layer["annotations"][ocitest.TITLE] for layer in manifest["layers"]] == [
        "notes.txt", "tool"]

    tagged = client.tag(ref, ["stable", "latest"])
    assert tagged.digest == pushed.digest
    assert sorted(client.list_tags(f"{registry.host}/{unique_repo}")) == [
        "1.0", "latest", "stable"]
    assert client.exists(registry.ref(unique_repo, "stable"))
    assert client.manifest_digest(registry.ref(unique_repo, pushed.digest)) == pushed.digest
    assert not client.exists(registry.ref(unique_repo, "2.0"))
    with pytest.raises(toolfetch.NotFoundError) as missing:
        client.manifest_digest(registry.ref(unique_repo, "2.0"))
    assert missing.value.exit_code == 4 and "2.0" in str(missing.value)

    layout = tmp_path / "layout"
    copied = client.copy(ref, f"oci-layout:{layout}:mirrored")
    assert copied.digest == pushed.digest
    assert client.list_tags(f"oci-layout:{layout}") == ["mirrored"]
    assert ocitest.skopeo("inspect", "--raw", f"oci:{layout}:mirrored").stdout == raw

    with pytest.raises(toolfetch.UsageError) as bad:
        client.tag(ref, ["bad tag"])
    assert bad.value.exit_code == 2 and "bad tag" in str(bad.value)
    with pytest.raises(toolfetch.UsageError, match="digest"):
        client.push(registry.ref(unique_repo, pushed.digest), [notes])
    with pytest.raises(toolfetch.UsageError, match="at least one"):
        client.push(ref, [])


def test_publish_an_index_then_pull_each_platform(registry: Registry, unique_repo: str,
                                                 tmp_path: Path) -> None:
    client = toolfetch.Client()
    [mine] = files(tmp_path / "host", tool=b"host build")
    [theirs] = files(tmp_path / "other", tool=b"other build")
    ref = registry.ref(unique_repo, "2.0")
    published = client.publish(ref, {host(): [mine], other_platform(): [theirs]},
                               annotations={"org.opencontainers.image.version": "2.0"})
    info = client.get_artifact_info(ref)
    assert info.digest == published.digest and info.is_index
    assert info.platforms == (host(), other_platform()) and info.kind == "tool"
    assert info.annotations == {"org.opencontainers.image.version": "2.0"}

    out = tmp_path / "out"
    assert client.pull(ref, out) == [out / "tool"]
    assert (out / "tool").read_bytes() == b"host build"
    assert client.pull(ref, tmp_path / "o2", platform=other_platform()) == [tmp_path / "o2/tool"]
    assert (tmp_path / "o2" / "tool").read_bytes() == b"other build"
    with pytest.raises(toolfetch.UsageError, match="twice"):
        client.publish(ref, [(host(), [mine]), (host(), [theirs])])


def test_pulling_again_into_the_same_directory_succeeds_and_says_nothing_was_written(
        registry: Registry, unique_repo: str, tmp_path: Path) -> None:
    """The bug: a second pull found every file already there, identical, wrote nothing, and
    failed with 'no layer has a title' (exit 4)."""
    ocitest.push_artifact(registry, unique_repo, "1", ocitest.oras_artifact(
        {"README.md": b"# docs\n", "schema.json": b"{}"}))
    ref = registry.ref(unique_repo, "1")
    out = tmp_path / "out"
    client = toolfetch.Client()
    first = client.pull_artifact(ref, out)
    assert first.written == first.files == (out / "README.md", out / "schema.json")
    assert first.present == ()
    second = client.pull_artifact(ref, out)
    assert second.files == first.files and second.present == first.files
    assert second.written == ()
    assert client.pull(ref, out) == [out / "README.md", out / "schema.json"]
    (out / "schema.json").write_bytes(b"{ }")  # other bytes: still never replaced
    with pytest.raises(toolfetch.UsageError) as refused:
        client.pull(ref, out)
    assert refused.value.exit_code == 2 and str(out / "schema.json") in str(refused.value)
    assert (out / "schema.json").read_bytes() == b"{ }"
    (out / "schema.json").unlink()
    mixed = client.pull_artifact(ref, out)
    assert mixed.written == (out / "schema.json",) and mixed.present == (out / "README.md",)


def test_pull_of_an_artifact_without_titles_is_not_found(registry: Registry, unique_repo: str,
                                                         tmp_path: Path) -> None:
    blob = b"untitled"
    ocitest.push_blob(registry, unique_repo, blob)
    ocitest.push_blob(registry, unique_repo, b"{}")
    ocitest.push_manifest(registry, unique_repo, "1", {
        "schemaVersion": 2, "mediaType": ocitest.OCI_MANIFEST,
        "artifactType": "application/x.thing",
        "config": ocitest.descriptor(b"{}", ocitest.OCI_EMPTY),
        "layers": [ocitest.descriptor(blob, ocitest.OCTET_STREAM)]})
    with pytest.raises(toolfetch.NotFoundError, match="no layer has a title"):
        toolfetch.Client().pull(registry.ref(unique_repo, "1"), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def push_wasm(reg: Registry, repo: str, tag: str, layer_type: str) -> None:
    config = b'{"architecture": "wasm", "os": "wasip1"}'
    module = b"\0asm\x01\0\0\0" + tag.encode()
    ocitest.push_blob(reg, repo, config)
    ocitest.push_blob(reg, repo, module)
    ocitest.push_manifest(reg, repo, tag, {
        "schemaVersion": 2, "mediaType": ocitest.OCI_MANIFEST,
        "config": ocitest.descriptor(config, "application/vnd.wasm.config.v0+json"),
        "layers": [ocitest.descriptor(module, layer_type, {ocitest.TITLE: f"{tag}.wasm"})]})


def test_artifact_info_to_json_is_inspects_json_with_the_wasm_kind(registry: Registry,
                                                                   unique_repo: str) -> None:
    push_wasm(registry, unique_repo, "module", "application/vnd.wasm.content.layer.v1+wasm")
    push_wasm(registry, unique_repo, "component", "application/vnd.wasm.component.v1+wasm")
    client = toolfetch.Client()
    module = client.get_artifact_info(registry.ref(unique_repo, "module")).to_json()
    assert module["wasm"] == {"kind": "module", "wasi": "preview1"}
    assert module["kind"] == "wasm" and module["layers"][0]["title"] == "module.wasm"
    component = client.get_artifact_info(registry.ref(unique_repo, "component")).to_json()
    assert component["wasm"] == {"kind": "component", "wasi": "preview2"}
    ocitest.push_artifact(registry, unique_repo, "plain", ocitest.oras_artifact({"x": b"x"}))
    assert "wasm" not in client.get_artifact_info(registry.ref(unique_repo, "plain")).to_json()


def test_artifact_info_to_json_is_built_from_its_fields(registry: Registry, unique_repo: str,
                                                        tmp_path: Path) -> None:
    """to_json() printed a hidden copy of what was read, so a changed or hand-built
    ArtifactInfo printed something else than it holds; built from the fields, it still
    prints exactly what inspect read (the ops layer's JSON, plus ``wasm``) for every kind."""
    from toolfetch.core.reference import parse_any
    from toolfetch.ops.inspect_tags import inspect
    from toolfetch.registry.targets import open_source

    push_wasm(registry, unique_repo, "module", "application/vnd.wasm.content.layer.v1+wasm")
    client = toolfetch.Client()
    [tool] = files(tmp_path / "in", tool=b"tool")
    pushed = client.push(registry.ref(unique_repo, "tool"), [tool], annotations={"k": "v"})
    sbom = client.attach(pushed.reference, [tool], artifact_type="application/spdx+json")
    ocitest.push_artifact(registry, unique_repo, "image", ocitest.image_artifact(
        host(), [ocitest.targz({"bin/x": (b"x", 0o755)})], docker=True))
    inner = ocitest.push_tool_index(registry, unique_repo, "index", {
        host(): {"tool": b"a"}, other_platform(): {"tool": b"bb"}})
    raw = ocitest.get_manifest(registry, unique_repo, "index").content
    ocitest.push_manifest(registry, unique_repo, "nested", {
        "schemaVersion": 2, "mediaType": ocitest.OCI_INDEX, "manifests": [
            {**ocitest.descriptor(raw, ocitest.OCI_INDEX), "annotations": {"a": "b"}}]})
    for tag in ("module", "tool", sbom.digest, "image", "index", "nested"):
        ref = registry.ref(unique_repo, tag)
        read = inspect(parse_any(ref), open_source(parse_any(ref)))
        if tag == "module":
            read["wasm"] = {"kind": "module", "wasi": "preview1"}
        assert client.get_artifact_info(ref).to_json() == read, tag
    info = client.get_artifact_info(registry.ref(unique_repo, sbom.digest))
    assert info.to_json()["subject"]["digest"] == pushed.digest == info.subject
    assert info.to_json()["subject"]["size"] > 0  # the subject's descriptor, as read
    index = client.get_artifact_info(inner.ref)
    assert hash(index) == hash(dataclasses.replace(index))
    changed = dataclasses.replace(index, kind="mixed", platforms=(host(),))
    assert (changed.to_json()["kind"], changed.to_json()["platforms"]) == ("mixed", [host()])
    layer = toolfetch.LayerInfo("sha256:" + "1" * 64, "application/octet-stream", 3, "t")
    made = toolfetch.ArtifactInfo("r/x:1", "sha256:" + "2" * 64, ocitest.OCI_MANIFEST, 9,
                                  "tool", annotations={"k": "v"}, layers=(layer,))
    assert made.to_json() == {
        "reference": "r/x:1", "digest": "sha256:" + "2" * 64, "mediaType": ocitest.OCI_MANIFEST,
        "size": 9, "kind": "tool", "annotations": {"k": "v"}, "totalSize": 3,
        "layers": [{"digest": "sha256:" + "1" * 64, "mediaType": "application/octet-stream",
                    "size": 3, "title": "t"}]}
    with pytest.raises(TypeError):
        made.annotations["k"] = "w"  # type: ignore[index]


def test_attach_then_list_referrers(registry: Registry, unique_repo: str,
                                    tmp_path: Path) -> None:
    client = toolfetch.Client()
    [tool] = files(tmp_path / "in", tool=b"tool")
    subject = client.push(registry.ref(unique_repo, "1"), [tool])
    [sbom] = files(tmp_path / "sbom", **{"sbom.spdx.json": b'{"spdxVersion": "SPDX-2.3"}'})
    attached = client.attach(subject.reference, [sbom], artifact_type="application/spdx+json",
                             annotations={"org.example.kind": "sbom"})
    signature = client.attach(subject.reference, artifact_type="application/x.sig")
    assert attached.reference == subject.reference
    found = client.referrers(subject.reference)
    assert {r.digest: r.artifact_type for r in found} == {
        attached.digest: "application/spdx+json", signature.digest: "application/x.sig"}
    sbom_entry = next(r for r in found if r.digest == attached.digest)
    assert sbom_entry.annotations == {"org.example.kind": "sbom"}
    assert sbom_entry.descriptor["digest"] == attached.digest
    with pytest.raises(TypeError):  # frozen values: read-only mappings, hashable
        sbom_entry.annotations["org.example.kind"] = "other"  # type: ignore[index]
    with pytest.raises(TypeError):
        sbom_entry.descriptor["annotations"]["org.example.kind"] = "other"
    assert hash(sbom_entry) == hash(dataclasses.replace(sbom_entry))
    assert sbom_entry.to_json()["annotations"] == {"org.example.kind": "sbom"}
    raw = ocitest.get_manifest(registry, unique_repo, attached.digest).content
    assert sbom_entry.size == len(raw) and sbom_entry.media_type == ocitest.OCI_MANIFEST
    only = client.referrers(f"{registry.host}/{unique_repo}@{subject.digest}",
                            artifact_type="application/x.sig")
    assert [r.digest for r in only] == [signature.digest]
    assert client.referrers(registry.ref(unique_repo, attached.digest)) == []


def test_publish_the_lockfiles_http_assets(registry: Registry, unique_repo: str,
                                           tmp_path: Path) -> None:
    server = AssetServer()
    try:
        server.files["/releases/1.0/buf"] = script("buf")
        write_config(tmp_path / "tools.yaml", {"tools": {"buf": {
            "version": "1.0", "platforms": {host(): {"url": server.url("/releases/1.0/buf")}}}}})
        client = toolfetch.Client(tmp_path / "tools.lock.json")
        client.lock()
        published = client.publish_from_lockfile(f"{registry.host}/{unique_repo}")
    finally:
        server.close()
    assert list(published) == ["buf"]
    ref = published["buf"]
    assert ref.reference == f"{registry.host}/{unique_repo}/buf:1.0"
    index = ocitest.get_manifest(registry, f"{unique_repo}/buf", "1.0").content
    assert ref.digest == sha(index)
    info = client.get_artifact_info(str(ref))
    assert info.platforms == (host(),)
    [child] = info.manifests
    assert [layer.digest for layer in child.layers] == [sha(script("buf"))]
    with pytest.raises(toolfetch.NotFoundError):
        client.publish_from_lockfile(f"{registry.host}/{unique_repo}", ["nope"])


def test_login_stores_checked_credentials_and_logout_removes_them(
        tmp_path_factory: pytest.TempPathFactory, need_registry: None) -> None:
    with ocitest.Registry(workdir=tmp_path_factory.mktemp("login-registry"),
                          htpasswd=("alice", "s3cret pw")) as reg:
        client = toolfetch.Client()
        config = Path(os.environ["DOCKER_CONFIG"]) / "config.json"
        with pytest.raises(toolfetch.AuthError) as refused:
            client.login(reg.host, "alice", "wrong")
        assert refused.value.exit_code == 5 and not config.exists()
        assert client.login(reg.host, "alice", "s3cret pw") == reg.host
        assert reg.host in json.loads(config.read_text())["auths"]
        out = client.logout(reg.host)
        assert (out.key, out.removed) == (reg.host, True)
        assert json.loads(config.read_text())["auths"] == {}
        assert client.logout(reg.host).removed is False
        with pytest.raises(toolfetch.UsageError):
            client.login("bad host", "alice", "x")
