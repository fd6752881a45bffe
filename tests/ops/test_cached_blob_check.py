"""A tree is never built from a cached blob that no longer has its digest's bytes: an earlier
run's blob is re-hashed first, a damaged one fetched again (offline: exit 3 naming it)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from tf import assert_error, assert_ok, file_hex, run_toolfetch, sharded, tree_of


@pytest.fixture
def cache() -> Path:
    return Path(os.environ["TOOLFETCH_CACHE_DIR"])


def _entry(example: Path, tool: str) -> dict[str, Any]:
    lock = json.loads(example.read_text())
    platforms: dict[str, Any] = lock["tools"][tool]["platforms"]
    entry: dict[str, Any] = platforms.get("*") or platforms["linux/amd64"]
    return entry


def _tree_gone_blob_damaged(example: Path, cache: Path, tool: str, same_size: bool
                            ) -> tuple[dict[str, Any], Path]:
    """``tool`` fetched, its tree removed, its (only) blob then damaged in place."""
    args = ["fetch", tool, "--lockfile", example, "--platform", "linux/amd64"]
    assert_ok(run_toolfetch(*args))
    entry = _entry(example, tool)
    tree = tree_of(cache, entry)
    tree.with_name(tree.name + ".json").unlink()
    for d in [tree, *(p for p in tree.rglob("*") if p.is_dir() and not p.is_symlink())]:
        d.chmod(0o755)
    shutil.rmtree(tree)
    blob = sharded(cache, "blobs", entry["layers"][0]["digest"])
    good = blob.read_bytes()
    blob.chmod(0o644)
    bad = bytes([good[0] ^ 0xFF]) + good[1:] if same_size else good[:-5]
    blob.write_bytes(bad)
    return entry, blob


@pytest.mark.parametrize("tool", ["say", "hello"])  # a raw layer (hardlinked), a tar.gz
@pytest.mark.parametrize("same_size", [True, False])
def test_a_damaged_cached_blob_is_fetched_again_before_its_tree_is_built(
        example: Path, cache: Path, tool: str, same_size: bool) -> None:
    entry, blob = _tree_gone_blob_damaged(example, cache, tool, same_size)
    r = run_toolfetch("fetch", tool, "--lockfile", example, "--platform", "linux/amd64")
    assert_ok(r)
    digest = entry["layers"][0]["digest"]
    assert f"cached blob {digest} is damaged" in r.stderr
    assert "sha256:" + file_hex(blob) == digest  # fetched again
    assert_ok(run_toolfetch("cache", "verify"))  # the new tree matches its record
    exe = tree_of(cache, entry) / entry["path"]
    assert exe.is_file()


def test_offline_a_damaged_cached_blob_is_exit_3_and_no_tree(example: Path, cache: Path) -> None:
    entry, _blob = _tree_gone_blob_damaged(example, cache, "say", True)
    r = run_toolfetch("fetch", "say", "--offline", "--lockfile", example)
    digest = entry["layers"][0]["digest"]
    assert_error(r, 3, f"cached blob {digest} was damaged", "--offline")
    tree = tree_of(cache, entry)
    assert not tree.exists() and not tree.with_name(tree.name + ".json").exists()
    assert not sharded(cache, "blobs", digest).exists()  # dropped: the next online run fetches


def test_a_sound_cached_blob_is_used_as_it_is(example: Path, cache: Path) -> None:
    args = ["fetch", "say", "--lockfile", example]
    assert_ok(run_toolfetch(*args))
    entry = _entry(example, "say")
    tree = tree_of(cache, entry)
    blob = sharded(cache, "blobs", entry["layers"][0]["digest"])
    inode = blob.stat().st_ino
    tree.with_name(tree.name + ".json").unlink()
    tree.chmod(0o755)
    shutil.rmtree(tree)
    r = run_toolfetch(*args, "--offline")
    assert_ok(r)
    assert "damaged" not in r.stderr
    assert blob.stat().st_ino == inode == (tree / entry["path"]).stat().st_ino


def test_a_blob_another_run_placed_meanwhile_is_not_dropped(
        example: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Between hashing a damaged blob and dropping it, another process may have put a sound
    one in its place (a new inode): that one stays."""
    from tf import tf_main

    from toolfetch.core.digest import Digest

    entry, blob = _tree_gone_blob_damaged(example, cache, "hello", True)
    digest = entry["layers"][0]["digest"]
    real = Digest.of_open_file
    placed: list[float] = []  # the mtime the other run's blob was given (inodes get reused)

    def of_open_file(f: BinaryIO) -> Digest:
        got = real(f)
        if Path(f.name) == blob and not placed:  # the other run finishes now
            assert_ok(run_toolfetch("--cache-dir", cache / "other", "fetch", "hello",
                                    "--lockfile", example, "--platform", "linux/amd64"))
            sound = blob.with_name("sound")
            shutil.copyfile(sharded(cache / "other", "blobs", digest), sound)
            os.utime(sound, (1e9, 1e9))
            os.replace(sound, blob)
            placed.append(blob.stat().st_mtime)
        return got

    monkeypatch.setattr(Digest, "of_open_file", staticmethod(of_open_file))
    r = tf_main("fetch", "hello", "--lockfile", example, "--platform", "linux/amd64")
    assert_ok(r)
    assert f"cached blob {digest} is damaged" in r.stderr
    assert placed == [blob.stat().st_mtime] == [1e9]  # kept, not dropped and fetched again
    assert "sha256:" + file_hex(blob) == digest
