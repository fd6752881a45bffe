"""``export`` / ``import``: a lockfile's closure as an OCI image layout, serving air-gapped
machines by ``import`` + ``fetch --offline`` or as an ``oci-layout:`` mirror. Export and
import are driven through ``toolfetch.Client`` (``export``, ``import_layout``); a few tests
run the command line for its exit codes."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import ocitest
import pytest
from accesslog import LogMark
from ocischema import validate_layout
from ocitest import Registry
from tf import (
    assert_error,
    assert_ok,
    cache_blobs,
    check_cache_layout,
    host,
    other_platform,
    script,
    tf_main,
    write_config,
)

import toolfetch

MakeRegistry = Callable[..., Registry]


@dataclass
class World:
    upstream: Registry
    ti: ocitest.ToolIndex
    raw_ref: str
    raw_digest: str
    raw_layer: str
    lockfile: Path

    def blobs(self, platform: str) -> set[str]:
        art = self.ti.artifacts[platform]
        return set(art.blobs) | {self.ti.manifests[platform]}


@pytest.fixture
def world(make_registry: MakeRegistry, tmp_path: Path) -> World:
    up = make_registry()
    ti = ocitest.push_tool_index(up, "acme/idx", "2.0", {
        p: ocitest.targz({"bin/idx": (script(f"idx-{p}"), 0o755)})
        for p in (host(), other_platform())})
    exe = tmp_path / "raw"
    exe.write_bytes(script("raw"))
    raw_ref = up.ref("acme/raw", "1")
    raw_digest = tf_main("push", raw_ref, exe).stdout.strip()
    ws = tmp_path / "ws"
    write_config(ws / "tools.yaml", {"tools": {"idx": {"ref": ti.ref, "path": "bin/idx"},
                                               "raw": {"ref": raw_ref, "path": "raw"}}})
    assert_ok(tf_main("lock", "--lockfile", ws / "tools.lock.json"))
    layer = "sha256:" + hashlib.sha256(script("raw")).hexdigest()
    return World(up, ti, raw_ref, raw_digest, layer, ws / "tools.lock.json")


def roots(layout: Path) -> dict[str, str]:
    index = json.loads((layout / "index.json").read_text())
    return {m["annotations"][ocitest.REF_NAME]: m["digest"] for m in index["manifests"]}


def layout_blobs(layout: Path) -> set[str]:
    return {f"sha256:{p.name}" for p in (layout / "blobs" / "sha256").iterdir()}


def test_export_host_and_all_platforms(world: World, tmp_path: Path) -> None:
    host_only, everything = tmp_path / "host", tmp_path / "all"
    client = toolfetch.Client(world.lockfile)
    stats = client.export(host_only)
    validate_layout(host_only, complete=False)
    expected_roots = {world.ti.ref: world.ti.index_digest, world.raw_ref: world.raw_digest}
    assert roots(host_only) == expected_roots
    assert sorted(stats.roots) == sorted(expected_roots) and stats.from_cache == 0
    # blobs counts configs and layers: every blob but the index and the two manifests
    assert stats.blobs == len(layout_blobs(host_only)) - 3
    blobs = layout_blobs(host_only)
    assert world.blobs(host()) <= blobs and world.raw_layer in blobs
    assert not world.blobs(other_platform()) - world.blobs(host()) & blobs
    client.export(everything, all_platforms=True)
    validate_layout(everything, complete=True)
    assert roots(everything) == expected_roots
    # skopeo reads the bundle, by the reference as written
    raw = ocitest.skopeo("inspect", "--raw", f"oci:{everything}:{world.ti.ref}").stdout
    assert raw == world.ti.index_bytes
    # exporting again into the same directory changes nothing
    before = (everything / "index.json").read_bytes()
    assert client.export(everything, all_platforms=True).blobs == 0  # every blob reused
    assert (everything / "index.json").read_bytes() == before


def test_air_gapped_import_then_offline_fetch(world: World, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    toolfetch.Client(world.lockfile).export(bundle, all_platforms=True)
    world.upstream.stop()
    cache = tmp_path / "airgapped-cache"
    offline = ("--cache-dir", cache, "--lockfile", world.lockfile)
    assert_error(tf_main("fetch", "--offline", *offline), 6)
    imported = toolfetch.Client(world.lockfile, cache_dir=cache).import_layout(bundle)
    assert imported.skipped == 0 and imported.blobs == len(layout_blobs(bundle))
    assert layout_blobs(bundle) <= set(cache_blobs(cache))
    assert_ok(tf_main("fetch", "--offline", "--all-platforms", *offline))
    check_cache_layout(cache)
    which = tf_main("which", "--offline", *offline, "idx")
    assert_ok(which)
    out = subprocess.run([which.stdout.strip()], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[0] == f"idx-{host()}"


def test_bundle_as_oci_layout_mirror(world: World, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = tmp_path / "bundle"
    toolfetch.Client(world.lockfile).export(bundle, all_platforms=True)
    world.upstream.stop()
    monkeypatch.setenv("TOOLFETCH_MIRRORS", f"{world.upstream.host}=oci-layout:{bundle}")
    cache = tmp_path / "c"
    r = tf_main("fetch", "--cache-dir", cache, "--lockfile", world.lockfile)
    assert_ok(r)
    assert_ok(tf_main("which", "--offline", "--cache-dir", cache, "--lockfile",
                      world.lockfile, "raw"))
    # tags resolve in the bundle too (full-reference ref.name), so `lock --check` passes
    # with upstream down; with --offline only the oci-layout mirror is consulted
    assert_ok(tf_main("lock", "--check", "--lockfile", world.lockfile))
    assert_ok(tf_main("fetch", "--offline", "--cache-dir", tmp_path / "c2", "--lockfile",
                      world.lockfile))


def test_export_takes_layers_from_the_cache(world: World, tmp_path: Path) -> None:
    assert_ok(tf_main("fetch", "--lockfile", world.lockfile))
    mark = LogMark(world.upstream)
    stats = toolfetch.Client(world.lockfile).export(tmp_path / "b")
    assert stats.from_cache >= 1
    layer_gets = [h for h in mark.requests() if h.method == "GET" and "/blobs/" in h.uri
                  and "acme/raw" in h.uri and world.raw_layer in h.uri]
    assert layer_gets == []
    validate_layout(tmp_path / "b", complete=False)


def test_import_refuses_corrupt_bundles(world: World, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    toolfetch.Client(world.lockfile).export(bundle)
    blob = bundle / "blobs" / "sha256" / world.raw_layer.partition(":")[2]
    blob.chmod(0o644)
    blob.write_bytes(script("evil"))
    cache = tmp_path / "cache"
    with pytest.raises(toolfetch.IntegrityError, match=world.raw_layer):
        toolfetch.Client(world.lockfile, cache_dir=cache).import_layout(bundle)
    assert world.raw_layer not in cache_blobs(cache)
    assert_error(tf_main("import", "--cache-dir", cache, bundle), 3, world.raw_layer)
    assert_error(tf_main("import", "--cache-dir", cache, tmp_path / "nothing"), 4,
                 "not an OCI image layout")
