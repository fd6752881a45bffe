"""Issue 23 #6: `lock` looks the tool's `path` up inside the archives it has the bytes of —
every HTTP asset it downloads, and registry layers already in the cache — so a wrong `path`
fails `lock` (exit 4 naming the closest files, no lockfile written) instead of passing
`lock --check` in CI and failing every developer's fetch."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import ocitest
import pytest
from assetserver import AssetServer
from ocitest import Registry
from tf import assert_error, assert_ok, host, tf_main, write_config

ARCHIVE = ocitest.targz({"node-v1/": (b"", 0o755), "node-v1/bin/node": (b"#!/bin/sh\n", 0o755)})


@pytest.fixture
def server() -> Iterator[AssetServer]:
    s = AssetServer()
    s.files["/node.tar.gz"] = ARCHIVE
    yield s
    s.close()


@pytest.mark.parametrize("with_sha", [True, False])
def test_a_path_missing_from_a_downloaded_asset_fails_lock(
        server: AssetServer, tmp_path: Path, with_sha: bool) -> None:
    entry = {"url": server.url("/node.tar.gz"), "path": "node-v1/node"}
    if with_sha:
        entry["sha256"] = hashlib.sha256(ARCHIVE).hexdigest()
    write_config(tmp_path / "tools.yaml", {"tools": {"node": {"platforms": {host(): entry}}}})
    lockfile = tmp_path / "tools.lock.json"
    r = tf_main("lock", "--lockfile", lockfile)
    assert_error(r, 4, "tool node", host(), "'node-v1/node'", "node-v1/bin/node")
    assert not lockfile.exists()
    entry["path"] = "node-v1/bin/node"
    write_config(tmp_path / "tools.yaml", {"tools": {"node": {"platforms": {host(): entry}}}})
    assert_ok(tf_main("lock", "--lockfile", lockfile))


def test_a_path_missing_from_cached_registry_layers_fails_lock(
        registry: Registry, unique_repo: str, tmp_path: Path) -> None:
    idx = ocitest.push_tool_index(registry, unique_repo, "1", {
        host(): ocitest.targz({"bin/": (b"", 0o755), "bin/idx": (b"#!/bin/sh\n", 0o755)})})
    lockfile = tmp_path / "tools.lock.json"
    config = tmp_path / "tools.yaml"
    write_config(config, {"tools": {"idx": {"ref": idx.ref, "path": "bin/idx",
                                            "platforms": [host()]}}})
    assert_ok(tf_main("lock", "--lockfile", lockfile))
    assert_ok(tf_main("fetch", "--lockfile", lockfile))  # the layer is in the cache now
    before = lockfile.read_bytes()
    write_config(config, {"tools": {"idx": {"ref": idx.ref, "path": "bin/ixd",
                                            "platforms": [host()]}}})
    assert_error(tf_main("lock", "--lockfile", lockfile), 4, "'bin/ixd'", "closest: bin/idx")
    assert lockfile.read_bytes() == before
