"""``lock`` of an HTTP asset whose sha256 tools.yaml gives reuses the cache's blob of it only
after hashing it: a damaged blob is dropped and the asset downloaded again, so the size
pinned is the asset's own."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from assetserver import AssetServer
from tf import assert_ok, check_cache_layout, host, script, sharded, tf_main, write_config

from toolfetch.cache.store import Cache
from toolfetch.core.digest import Digest
from toolfetch.core.errors import IntegrityError
from toolfetch.lock.assets import lock_asset
from toolfetch.lock.config import PlatformSpec
from toolfetch.registry.sources import SourceFactory

ASSET = script("released") * 40
SHA = hashlib.sha256(ASSET).hexdigest()
PATH = "/releases/tool"


@pytest.fixture
def server() -> Iterator[AssetServer]:
    s = AssetServer()
    s.files[PATH] = ASSET
    yield s
    s.close()


def _lockfile(tmp_path: Path, server: AssetServer) -> Path:
    write_config(tmp_path / "ws" / "tools.yaml", {"tools": {"t": {"platforms": {host(): {
        "url": server.url(PATH), "sha256": SHA}}}}})
    return tmp_path / "ws" / "tools.lock.json"


def _pinned_size(lockfile: Path) -> int:
    layer = json.loads(lockfile.read_text())["tools"]["t"]["platforms"][host()]["layers"][0]
    assert layer["digest"] == f"sha256:{SHA}"
    return int(layer["size"])


def _damage(blob: Path, how: str) -> None:
    blob.chmod(0o644)
    if how == "truncated":
        with blob.open("r+b") as f:
            f.truncate(100)
    else:
        blob.write_bytes(b"X" * len(ASSET))
    blob.chmod(0o444)


def test_an_intact_cached_blob_needs_no_download(server: AssetServer, tmp_path: Path) -> None:
    lockfile = _lockfile(tmp_path, server)
    assert_ok(tf_main("lock", "--lockfile", lockfile))
    lockfile.unlink()  # a fresh `lock` of the same tools.yaml: the cache has the blob
    before = len(server.requests())
    assert_ok(tf_main("lock", "--lockfile", lockfile))
    assert len(server.requests()) == before
    assert _pinned_size(lockfile) == len(ASSET)


@pytest.mark.parametrize("how", ["truncated", "same-size"])
def test_a_damaged_cached_blob_is_downloaded_again(server: AssetServer, tmp_path: Path,
                                                   cache_dir: Path, how: str) -> None:
    lockfile = _lockfile(tmp_path, server)
    assert_ok(tf_main("lock", "--lockfile", lockfile))
    blob = sharded(cache_dir, "blobs", f"sha256:{SHA}")
    _damage(blob, how)
    lockfile.unlink()
    before = len(server.requests(PATH))
    r = tf_main("lock", "--lockfile", lockfile)
    assert_ok(r)
    assert f"sha256:{SHA}" in r.stderr and "damaged" in r.stderr  # says why it downloads
    assert len(server.requests(PATH)) == before + 1
    assert _pinned_size(lockfile) == len(ASSET)
    assert blob.read_bytes() == ASSET  # the cache holds the real blob again
    check_cache_layout(cache_dir)
    # and a clean machine fetches what was pinned
    assert_ok(tf_main("--cache-dir", tmp_path / "other", "fetch", "--lockfile", lockfile))


def test_offline_a_damaged_cached_blob_is_exit_3_naming_it(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    cache.ensure()
    blob = cache.blob_path(Digest(SHA))
    blob.parent.mkdir(parents=True)
    blob.write_bytes(ASSET[:100])
    spec = PlatformSpec(None, "tool", ("http://127.0.0.1:9/tool",), SHA)
    with pytest.raises(IntegrityError, match=f"sha256:{SHA}") as e:
        lock_asset("t", host(), spec, None, SourceFactory(offline=True), cache, False,
                   tmp_path / "tools.yaml")
    assert e.value.exit_code == 3
    assert blob.is_file()  # offline: nothing dropped that cannot be replaced


def test_a_damaged_blob_that_cannot_be_dropped_still_pins_the_real_size(
        server: AssetServer, tmp_path: Path, cache_dir: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    lockfile = _lockfile(tmp_path, server)
    assert_ok(tf_main("lock", "--lockfile", lockfile))
    blob = sharded(cache_dir, "blobs", f"sha256:{SHA}")
    _damage(blob, "truncated")
    lockfile.unlink()

    def refuse(self: Cache, digest: Digest) -> None:
        raise PermissionError(13, "Permission denied", str(self.blob_path(digest)))

    monkeypatch.setattr(Cache, "drop_blob", refuse)  # a read-only cache, say
    r = tf_main("lock", "--lockfile", lockfile)
    assert_ok(r)
    assert "cannot drop" in r.stderr
    assert _pinned_size(lockfile) == len(ASSET)


@pytest.mark.parametrize("upgrade", [[], ["--upgrade"]])
def test_refresh_assets_re_pins_changed_bytes_with_or_without_upgrade(
        server: AssetServer, tmp_path: Path, upgrade: list[str]) -> None:
    server.files["/t"] = script("old")
    ws = tmp_path / "ws"
    lockfile = ws / "tools.lock.json"
    write_config(ws / "tools.yaml",
                 {"tools": {"t": {"platforms": {"linux/amd64": {"url": server.url("/t")}}}}})

    def pinned() -> str:
        entry = json.loads(lockfile.read_text())["tools"]["t"]["platforms"]["linux/amd64"]
        return str(entry["layers"][0]["digest"])

    assert_ok(tf_main("lock", "--lockfile", lockfile))
    assert pinned() == str(Digest.of_bytes(script("old")))
    server.files["/t"] = script("new")
    assert_ok(tf_main("lock", *upgrade, "--refresh-assets", "--lockfile", lockfile))
    assert pinned() == str(Digest.of_bytes(script("new")))
