"""``inspect``, ``exists``, ``tags``, ``attach`` and ``referrers``, through ``toolfetch.Client``
(``get_artifact_info``, ``manifest_digest``, ``list_tags``, ``attach``, ``referrers``); a few
tests run the command line for its output and exit codes.

Distribution 2.8 has no referrers API, so ``attach``/``referrers`` there exercise the
``sha256-<hex>`` tag fallback; a small fake registry serves the referrers API and hostile
tag pagination.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ocitest
import pytest
from loopback import QuietHandler
from ocischema import validate_manifest
from ocitest import Registry
from tf import assert_error, assert_ok, host, other_platform, tf_main

import toolfetch

WASM_CONFIG = "application/vnd.wasm.config.v0+json"
WASM_LAYER = "application/vnd.wasm.content.layer.v1+wasm"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def inspect_json(ref: str) -> dict[str, Any]:
    return toolfetch.Client().get_artifact_info(ref).to_json()


def push_wasm(reg: Registry, repo: str) -> str:
    config = json.dumps({"architecture": "wasm", "os": "wasip1"}).encode()
    module = b"\0asm\x01\0\0\0"
    ocitest.push_blob(reg, repo, config)
    ocitest.push_blob(reg, repo, module)
    manifest = {"schemaVersion": 2, "mediaType": ocitest.OCI_MANIFEST,
                "config": ocitest.descriptor(config, WASM_CONFIG),
                "layers": [ocitest.descriptor(module, WASM_LAYER,
                                              {ocitest.TITLE: "module.wasm"})]}
    return ocitest.push_manifest(reg, repo, "wasm", manifest)


def test_inspect_tells_kinds_apart(registry: Registry, unique_repo: str, tmp_path: Path) -> None:
    layer = ocitest.targz({"bin/app": (b"app", 0o755)})
    ocitest.push_artifact(registry, unique_repo, "oci-image",
                          ocitest.image_artifact("linux/amd64", [layer]))
    ocitest.push_artifact(registry, unique_repo, "docker-image",
                          ocitest.image_artifact("linux/amd64", [layer], docker=True))
    push_wasm(registry, unique_repo)
    sbom = ocitest.oras_artifact({"sbom.json": b"{}"}, artifact_type="application/spdx+json")
    ocitest.push_artifact(registry, unique_repo, "sbom", sbom)
    tool = tmp_path / "tool"
    tool.write_bytes(b"#!/bin/sh\n")
    toolfetch.Client().push(registry.ref(unique_repo, "tool"), [tool], annotations={"k": "v"})
    kinds = {tag: inspect_json(registry.ref(unique_repo, tag))["kind"]
             for tag in ("oci-image", "docker-image", "wasm", "sbom", "tool")}
    assert kinds == {"oci-image": "image", "docker-image": "image", "wasm": "wasm",
                     "sbom": "artifact", "tool": "tool"}
    wasm = inspect_json(registry.ref(unique_repo, "wasm"))
    assert wasm["artifactType"] == WASM_CONFIG
    assert wasm["layers"][0]["mediaType"] == WASM_LAYER
    assert wasm["layers"][0]["title"] == "module.wasm"
    assert wasm["wasm"] == {"kind": "module", "wasi": "preview1"}
    assert all("wasm" not in inspect_json(registry.ref(unique_repo, tag))
               for tag in ("oci-image", "sbom", "tool"))
    t = inspect_json(registry.ref(unique_repo, "tool"))
    assert t["annotations"] == {"k": "v"}
    assert t["artifactType"] == "application/vnd.toolfetch.tool.v1"
    raw = ocitest.get_manifest(registry, unique_repo, "tool").content
    assert t["digest"] == sha(raw) and t["size"] == len(raw)
    assert t["layers"][0]["size"] == 10 and t["totalSize"] == 12
    human = tf_main("inspect", registry.ref(unique_repo, "wasm"))
    assert_ok(human)
    assert "WASM artifact" in human.stdout and "module.wasm" in human.stdout
    assert "WASM:          module (WASI preview1)" in human.stdout.splitlines()
    # --json prints the description with the WASM kind and WASI version
    r = tf_main("inspect", "--json", registry.ref(unique_repo, "wasm"))
    assert_ok(r)
    assert json.loads(r.stdout) == wasm
    assert "container image" in tf_main("inspect", registry.ref(unique_repo, "oci-image")).stdout


def test_inspect_index(registry: Registry, unique_repo: str) -> None:
    ti = ocitest.push_tool_index(registry, unique_repo, "1", {
        host(): {"tool": b"a"}, other_platform(): {"tool": b"bb"}})
    typed = toolfetch.Client().get_artifact_info(ti.ref)
    assert typed.is_index and typed.platforms == (host(), other_platform())
    assert [m.platform for m in typed.manifests] == [host(), other_platform()]
    info = typed.to_json()
    assert info["digest"] == ti.index_digest and info["mediaType"] == ocitest.OCI_INDEX
    assert info["kind"] == "tool" and info["platforms"] == [host(), other_platform()]
    assert [m["digest"] for m in info["manifests"]] == [ti.manifests[host()],
                                                       ti.manifests[other_platform()]]
    assert [m["layers"][0]["size"] for m in info["manifests"]] == [1, 2]
    human = tf_main("inspect", ti.ref).stdout
    assert host() in human and other_platform() in human and "(index)" in human


def test_exists(registry: Registry, unique_repo: str, tmp_path: Path) -> None:
    art = ocitest.oras_artifact({"x": b"x"})
    digest = ocitest.push_artifact(registry, unique_repo, "1", art)
    r = tf_main("exists", registry.ref(unique_repo, "1"))
    assert_ok(r)
    assert r.stdout.strip() == digest
    assert_ok(tf_main("exists", registry.ref(unique_repo, digest)))
    assert_error(tf_main("exists", registry.ref(unique_repo, "2")), 4, "not found")
    assert_error(tf_main("exists", registry.ref(unique_repo + "-none", "1")), 4)
    assert_error(tf_main("exists", f"oci-layout:{tmp_path}:1"), 4)


def test_tags(registry: Registry, unique_repo: str, tmp_path: Path) -> None:
    art = ocitest.oras_artifact({"x": b"x"})
    for tag in ("1.0", "1.1", "latest"):
        ocitest.push_artifact(registry, unique_repo, tag, art)
    client = toolfetch.Client()
    assert sorted(client.list_tags(f"{registry.host}/{unique_repo}")) == ["1.0", "1.1", "latest"]
    r = tf_main("tags", f"{registry.host}/{unique_repo}")
    assert_ok(r)
    assert sorted(r.stdout.split()) == ["1.0", "1.1", "latest"]
    r = tf_main("tags", f"{registry.host}/{unique_repo}", "--json")
    assert sorted(json.loads(r.stdout)) == ["1.0", "1.1", "latest"]
    assert_error(tf_main("tags", registry.ref(unique_repo, "1.0")), 2, "without tag")
    layout = tmp_path / "layout"
    client.copy(registry.ref(unique_repo, "1.0"), f"oci-layout:{layout}:a")
    client.tag(f"oci-layout:{layout}:a", ["b"])
    assert client.list_tags(f"oci-layout:{layout}") == ["a", "b"]


def test_attach_and_referrers_fallback(registry: Registry, unique_repo: str,
                                       tmp_path: Path) -> None:
    ti = ocitest.push_tool_index(registry, unique_repo, "1", {host(): {"tool": b"t"}})
    sbom = tmp_path / "sbom.spdx.json"
    sbom.write_text('{"spdxVersion": "SPDX-2.3"}')
    client = toolfetch.Client()
    sbom_digest = client.attach(ti.ref, [sbom], artifact_type="application/spdx+json",
                                annotations={"org.example.kind": "sbom"}).digest
    r2 = tf_main("attach", ti.ref, "--artifact-type", "application/vnd.example.signature")
    assert_ok(r2)
    sig_digest = r2.stdout.strip()
    subject = {"mediaType": ocitest.OCI_INDEX, "digest": ti.index_digest,
               "size": len(ti.index_bytes)}
    for digest in (sbom_digest, sig_digest):
        raw = ocitest.skopeo_inspect_raw(registry, unique_repo, digest)
        assert sha(raw) == digest
        m = validate_manifest(raw)
        assert m["subject"] == subject
    sig = json.loads(ocitest.get_manifest(registry, unique_repo, sig_digest).content)
    assert sig["layers"] == [sig["config"]]  # no files: the empty descriptor
    # Distribution 2.8 has no referrers API: the fallback tag holds an index of both
    fallback = ocitest.get_manifest(registry, unique_repo, "sha256-" + ti.index_digest[7:])
    index = validate_manifest(fallback.content)
    assert {m["digest"]: m["artifactType"] for m in index["manifests"]} == {
        sbom_digest: "application/spdx+json", sig_digest: "application/vnd.example.signature"}
    found = {d.digest: d for d in client.referrers(ti.ref)}
    assert set(found) == {sbom_digest, sig_digest}
    assert found[sbom_digest].annotations == {"org.example.kind": "sbom"}
    r = tf_main("referrers", ti.ref, "--json")
    assert_ok(r)
    assert json.loads(r.stdout) == [d.descriptor for d in client.referrers(ti.ref)]
    r = tf_main("referrers", f"{registry.host}/{unique_repo}@{ti.index_digest}",
                "--artifact-type", "application/spdx+json")
    assert r.stdout.split()[0:2] == [sbom_digest, "application/spdx+json"]
    assert len(r.stdout.splitlines()) == 1
    # attaching the same thing again does not duplicate the entry
    client.attach(ti.ref, artifact_type="application/vnd.example.signature")
    assert len(client.referrers(ti.ref)) == 2
    # a manifest nobody refers to has no referrers
    assert client.referrers(registry.ref(unique_repo, ti.manifests[host()])) == []
    assert tf_main("referrers", registry.ref(unique_repo, ti.manifests[host()])).stdout == ""


def test_attach_in_a_layout(tmp_path: Path) -> None:
    f = tmp_path / "tool"
    f.write_text("tool")
    layout = tmp_path / "layout"
    client = toolfetch.Client()
    client.push(f"oci-layout:{layout}:1", [f])
    attached = client.attach(f"oci-layout:{layout}:1", [f], artifact_type="application/x.sig")
    [listed] = client.referrers(f"oci-layout:{layout}:1")
    assert (listed.digest, listed.artifact_type) == (attached.digest, "application/x.sig")


# -- a fake registry: the referrers API, and tag pagination (good and hostile) ------------
class _Fake(QuietHandler):
    referrers: dict[str, Any] = {}

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        port = self.server.server_address[1]
        if path == "/v2/":
            self.send(200, b"{}")
        elif path == "/v2/paged/tags/list":
            last = dict(p.split("=") for p in query.split("&") if "=" in p).get("last")
            pages = {None: (["a", "b"], "b"), "b": (["c", "d"], "d"), "d": (["e"], None)}
            tags, nxt = pages[last]
            link = {"Link": f'</v2/paged/tags/list?last={nxt}&n=2>; rel="next"'} if nxt else {}
            self.send(200, json.dumps({"name": "paged", "tags": tags}).encode(), link)
        elif path == "/v2/evil/tags/list":
            link = {"Link": f'<http://localhost:{port}/v2/evil/tags/list?x=1>; rel="next"'}
            self.send(200, b'{"tags": ["a"]}', link)
        elif path == "/v2/endless/tags/list":
            link = {"Link": '</v2/endless/tags/list?more=1>; rel="next"'}
            self.send(200, b'{"tags": ["a"]}', link)
        elif path.startswith("/v2/api/referrers/"):
            body = json.dumps({"schemaVersion": 2, "mediaType": ocitest.OCI_INDEX,
                               "manifests": self.referrers.get(path.rsplit("/", 1)[1], [])})
            self.send(200, body.encode(), content_type=ocitest.OCI_INDEX)
        else:
            self.send(404, b'{"errors": [{"code": "NOT_FOUND"}]}')


@pytest.fixture
def fake_registry() -> Iterator[str]:
    with ocitest.loopback_server(_Fake) as host:
        yield host


def test_tags_pagination(fake_registry: str) -> None:
    client = toolfetch.Client()
    assert client.list_tags(f"{fake_registry}/paged") == ["a", "b", "c", "d", "e"]
    with pytest.raises(toolfetch.IntegrityError, match="leaves"):
        client.list_tags(f"{fake_registry}/evil")
    assert_error(tf_main("tags", f"{fake_registry}/evil"), 3, "leaves")
    assert_error(tf_main("tags", f"{fake_registry}/endless"), 3, "pages")


def test_referrers_api(fake_registry: str) -> None:
    subject = sha(b"subject")
    entries = [{"mediaType": ocitest.OCI_MANIFEST, "digest": sha(b"a"), "size": 10,
                "artifactType": "application/spdx+json"},
               {"mediaType": ocitest.OCI_MANIFEST, "digest": sha(b"b"), "size": 11,
                "artifactType": "application/x.sig"}]
    _Fake.referrers = {subject: entries}
    found = toolfetch.Client().referrers(f"{fake_registry}/api@{subject}")
    assert [(d.digest, d.artifact_type, d.size) for d in found] == [
        (e["digest"], e["artifactType"], e["size"]) for e in entries]
    r = tf_main("referrers", f"{fake_registry}/api@{subject}", "--json")
    assert_ok(r)
    assert json.loads(r.stdout) == entries
    r = tf_main("referrers", f"{fake_registry}/api@{subject}", "--artifact-type",
                "application/x.sig")
    assert r.stdout.split()[:2] == [sha(b"b"), "application/x.sig"]
