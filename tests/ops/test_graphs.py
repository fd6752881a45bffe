"""Issue 24.13: manifest graphs are walked once per digest, to a bounded depth.

A DAG whose indexes list one child many times unfolds into an exponential tree; ``copy``,
``inspect`` and ``lock`` must read each digest once. A chain of indexes nested 1100 deep is
a hostile source: exit 3, not a ``RecursionError``. Sources are a canned loopback registry
(counting its GETs) and an OCI layout on disk.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from canned import Canned, Reply
from tf import assert_ok, tf_main, write_config

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
PAYLOAD = b"#!/bin/sh\necho dag\n"
CONFIG = b"{}"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _desc(raw: bytes, media_type: str, **extra: object) -> dict[str, object]:
    return {"mediaType": media_type, "digest": _digest(raw), "size": len(raw), **extra}


def _leaf() -> bytes:
    return json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": _desc(CONFIG, "application/vnd.oci.empty.v1+json"),
        "layers": [_desc(PAYLOAD, "application/octet-stream",
                         annotations={"org.opencontainers.image.title": "tool"})],
    }).encode()


def _index(children: list[dict[str, object]]) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                       "manifests": children}).encode()


def dag(levels: int, fanout: int) -> list[bytes]:
    """[leaf, index listing the leaf ``fanout`` times, index listing that one …]."""
    out = [_leaf()]
    for _ in range(levels):
        media = OCI_MANIFEST if len(out) == 1 else OCI_INDEX
        out.append(_index([_desc(out[-1], media)] * fanout))
    return out


@pytest.fixture
def registry() -> Iterator[Canned]:
    with Canned() as canned:
        yield canned


def serve(canned: Canned, repo: str, manifests: list[bytes], tag: str = "1") -> None:
    for raw in manifests:
        media = json.loads(raw)["mediaType"]
        reply = Reply(200, raw, {"Content-Type": media})
        canned.routes[f"/v2/{repo}/manifests/{_digest(raw)}"] = reply
    canned.routes[f"/v2/{repo}/manifests/{tag}"] = canned.routes[
        f"/v2/{repo}/manifests/{_digest(manifests[-1])}"]
    for blob in (PAYLOAD, CONFIG):
        canned.routes[f"/v2/{repo}/blobs/{_digest(blob)}"] = Reply(200, blob)


def manifest_gets(canned: Canned, repo: str) -> int:
    return sum(1 for h in canned.seen() if h.path.startswith(f"/v2/{repo}/manifests/"))


def test_copy_reads_and_writes_each_digest_of_a_dag_once(registry: Canned,
                                                        tmp_path: Path) -> None:
    graph = dag(levels=4, fanout=6)  # unfolded: 6**4 = 1296 leaves
    serve(registry, "acme/dag", graph)
    r = tf_main("copy", f"{registry.host}/acme/dag:1", f"oci-layout:{tmp_path / 'out'}:1")
    assert_ok(r)
    assert manifest_gets(registry, "acme/dag") == len(graph)
    assert sum(1 for h in registry.seen() if "/blobs/" in h.path) == 2
    blobs = {p.name for p in (tmp_path / "out" / "blobs" / "sha256").iterdir()}
    assert blobs == {_digest(b)[7:] for b in [*graph, PAYLOAD, CONFIG]}


def _chain_layout(root: Path, depth: int) -> None:
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    raw, media = _leaf(), OCI_MANIFEST
    for data in (PAYLOAD, CONFIG, raw):
        (blobs / _digest(data)[7:]).write_bytes(data)
    for _ in range(depth):
        raw, media = _index([_desc(raw, media)]), OCI_INDEX
        (blobs / _digest(raw)[7:]).write_bytes(raw)
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        _desc(raw, media, annotations={"org.opencontainers.image.ref.name": "1"})]}))


def test_copy_refuses_indexes_nested_1100_deep_with_exit_3(tmp_path: Path) -> None:
    _chain_layout(tmp_path / "src", 1100)
    r = tf_main("copy", f"oci-layout:{tmp_path / 'src'}:1", f"oci-layout:{tmp_path / 'out'}:1")
    assert r.returncode == 3, r.text
    assert "nested more than 16 indexes deep" in r.stderr


def test_copy_of_a_moderately_nested_chain_still_works(tmp_path: Path) -> None:
    _chain_layout(tmp_path / "src", 3)
    assert_ok(tf_main("copy", f"oci-layout:{tmp_path / 'src'}:1",
                      f"oci-layout:{tmp_path / 'out'}:1"))


def test_inspect_gets_a_child_listed_many_times_once(registry: Canned) -> None:
    leaf = _leaf()
    platforms = [{"os": "linux", "architecture": a} for a in ("amd64", "arm64", "riscv64")]
    top = _index([_desc(leaf, OCI_MANIFEST, platform=platforms[i % 3]) for i in range(300)])
    serve(registry, "acme/wide", [leaf, top])
    r = tf_main("inspect", "--json", f"{registry.host}/acme/wide:1")
    assert_ok(r)
    assert len(json.loads(r.stdout)["manifests"]) == 300
    assert manifest_gets(registry, "acme/wide") == 2


def test_lock_gets_a_child_several_platforms_share_once(registry: Canned,
                                                        tmp_path: Path) -> None:
    leaf = _leaf()
    platforms = [{"os": "linux", "architecture": a} for a in ("amd64", "arm64", "riscv64")]
    serve(registry, "acme/shared", [leaf, _index([_desc(leaf, OCI_MANIFEST, platform=p)
                                                  for p in platforms])])
    config = write_config(tmp_path / "tools.yaml", {"tools": {
        "shared": {"ref": f"{registry.host}/acme/shared:1", "path": "tool"}}})
    assert_ok(tf_main("lock", "--config", config, "--lockfile", tmp_path / "tools.lock.json"))
    locked = json.loads((tmp_path / "tools.lock.json").read_text())["tools"]["shared"]
    assert sorted(locked["platforms"]) == ["linux/amd64", "linux/arm64", "linux/riscv64"]
    assert manifest_gets(registry, "acme/shared") == 2
