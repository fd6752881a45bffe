"""Unit tests of toolfetch.cache: root selection, layout (docs/design.md, "The cache") and
atomic placement; and of output.materialize (hardlinked copies of a tree)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import IO, Any

import pytest
from tf import check_cache_layout, recipe_digest, sharded, tf_main, tmp_entries

from toolfetch.cache.records import TreeRecord
from toolfetch.cache.store import CACHEDIR_TAG, SMALL_BLOB, Cache
from toolfetch.cache.trees import tree_digest
from toolfetch.core import tempnames
from toolfetch.core.digest import Digest
from toolfetch.core.errors import IntegrityError, LocalIOError, UsageError
from toolfetch.ops.output import materialize

DATA = b"#!/bin/sh\necho cached\n"
DIGEST = Digest.of_bytes(DATA)
RECIPE = {"rules": 3, "layers": [[str(DIGEST), "tar", None, False]]}
KEY = Digest.parse(recipe_digest(RECIPE))  # trees are keyed by the digest of their recipe


def _root(value: str | None) -> Path:
    """What ``toolfetch cache path [--cache-dir VALUE]`` prints."""
    r = tf_main("cache", "path", *(["--cache-dir", value] if value is not None else []))
    assert r.returncode == 0, r.stderr
    return Path(r.stdout.strip())


def test_default_root_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TOOLFETCH_CACHE_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert _root(str(tmp_path / "cli")) == tmp_path / "cli"
    assert _root(None) == tmp_path / "env"
    monkeypatch.delenv("TOOLFETCH_CACHE_DIR")
    assert _root(None) == tmp_path / "xdg" / "toolfetch"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert _root(None) == tmp_path / "home" / ".cache" / "toolfetch"


def test_relative_roots_are_made_absolute(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    assert _root("rel/cache") == tmp_path / "rel" / "cache"
    monkeypatch.setenv("TOOLFETCH_CACHE_DIR", "envrel")
    assert _root(None) == tmp_path / "envrel"


def test_paths_are_two_level_sharded(cache_dir: Path) -> None:
    c = Cache(cache_dir)
    h = DIGEST.hex
    assert c.blob_path(DIGEST) == cache_dir / "blobs" / "sha256" / h[:2] / h[2:4] / h
    m = KEY.hex
    assert c.tree_path(KEY) == cache_dir / "trees" / "sha256" / m[:2] / m[2:4] / m
    assert c.record_path(KEY) == c.tree_path(KEY).parent / f"{m}.json"
    assert c.blob_path(DIGEST) == sharded(cache_dir, "blobs", str(DIGEST))


def test_ensure_creates_layout(cache_dir: Path) -> None:
    c = Cache(cache_dir)
    c.ensure()
    for d in ("blobs", "trees", "locks", "tmp"):
        assert (cache_dir / d).is_dir()
    assert (cache_dir / "CACHEDIR.TAG").read_text() == CACHEDIR_TAG
    assert json.loads((cache_dir / "layout.json").read_text()) == {"version": 2}
    c.ensure()  # idempotent
    assert tmp_entries(cache_dir) == []


def test_ensure_refuses_another_layout_version(cache_dir: Path) -> None:
    Cache(cache_dir).ensure()
    (cache_dir / "layout.json").write_text('{"version": 99}')
    with pytest.raises(UsageError, match="layout version 99") as exc:
        Cache(cache_dir).ensure()
    assert str(cache_dir) in str(exc.value)


def _writer(data: bytes, seen: list[Path] | None = None) -> Any:
    def write(f: IO[bytes]) -> None:
        if seen is not None:
            seen.append(Path(f.name))
        f.write(data)
    return write


def test_store_blob_writes_in_tmp_then_renames(cache_dir: Path) -> None:
    c = Cache(cache_dir)
    c.ensure()
    seen: list[Path] = []
    dest = c.store_blob(DIGEST, _writer(DATA, seen))
    assert dest == c.blob_path(DIGEST)
    assert dest.read_bytes() == DATA
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == DIGEST.hex
    assert not dest.stat().st_mode & 0o222  # read-only
    # the bytes were written under tmp/ (same filesystem), under the writer's pid
    assert seen[0].parent == cache_dir / "tmp"
    assert tempnames.temp_owner(seen[0].name) == (tempnames.host_tag(), os.getpid())
    assert c.has_blob(DIGEST)
    assert tmp_entries(cache_dir) == []
    check_cache_layout(cache_dir)


def test_existing_blob_counts_as_success(cache_dir: Path) -> None:
    c = Cache(cache_dir)
    c.ensure()
    c.store_blob(DIGEST, _writer(DATA))

    def must_not_write(f: IO[bytes]) -> None:
        raise AssertionError("an existing blob must not be fetched again")

    assert c.store_blob(DIGEST, must_not_write) == c.blob_path(DIGEST)


def test_failed_blob_write_leaves_nothing(cache_dir: Path) -> None:
    c = Cache(cache_dir)
    c.ensure()

    def bad(f: IO[bytes]) -> None:
        f.write(DATA[:5])
        raise IntegrityError("blob: digest mismatch")

    with pytest.raises(IntegrityError):
        c.store_blob(DIGEST, bad)
    assert not c.has_blob(DIGEST)
    assert not c.blob_path(DIGEST).exists()
    assert tmp_entries(cache_dir) == []


def _store_while_another_process_holds_the_lock(cache_dir: Path, size: int | None,
                                                wait: float) -> bool:
    """store_blob(DIGEST, size=size) while another process holds the blob's entry lock;
    True when it finished within ``wait`` seconds, while the lock was still held."""
    import subprocess
    import sys
    import threading

    c = Cache(cache_dir)
    c.ensure()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import filelock, sys; lock = filelock.FileLock(sys.argv[1]); "
         "lock.acquire(); print('held', flush=True); sys.stdin.read()",
         str(c.lock_path("blob", DIGEST))],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        done = threading.Event()
        worker = threading.Thread(target=lambda: (c.store_blob(DIGEST, _writer(DATA), size),
                                                  done.set()), daemon=True)
        worker.start()
        finished = done.wait(wait)
    finally:
        holder.communicate("")  # releases the lock; a waiting store_blob then finishes
    worker.join(10)
    assert c.blob_path(DIGEST).read_bytes() == DATA
    return finished


def test_a_small_blob_is_placed_without_the_entry_lock(cache_dir: Path) -> None:
    assert _store_while_another_process_holds_the_lock(cache_dir / "a", len(DATA), 10)
    # from SMALL_BLOB on, and when the size is not known, it waits for the lock
    assert not _store_while_another_process_holds_the_lock(cache_dir / "b", SMALL_BLOB, 0.5)
    assert not _store_while_another_process_holds_the_lock(cache_dir / "c", None, 0.5)


def test_a_second_writer_keeps_the_placed_blob_and_its_inode(cache_dir: Path) -> None:
    # Two unlocked writers of one small blob: the one that finishes last must not replace
    # the first one's file, which a tree may already hardlink.
    c = Cache(cache_dir)
    c.ensure()
    dest = c.store_blob(DIGEST, _writer(DATA), len(DATA))
    inode = dest.stat().st_ino

    def second_writer(f: IO[bytes]) -> Digest:
        f.write(DATA)
        return DIGEST

    assert c.store_new_blob(second_writer) == DIGEST
    assert dest.stat().st_ino == inode and dest.stat().st_nlink == 1
    assert dest.read_bytes() == DATA
    assert tmp_entries(cache_dir) == []


def _build(files: dict[str, tuple[bytes, int]], seen: list[Path] | None = None) -> Any:
    def build(dest: Path) -> TreeRecord:
        if seen is not None:
            seen.append(dest)
        for name, (data, mode) in files.items():
            p = dest / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
            p.chmod(mode)
        digest, entries = tree_digest(dest)
        return TreeRecord(str(KEY), RECIPE, digest, entries, layers=())
    return build


def test_store_tree_unpacks_in_tmp_and_writes_record_beside(cache_dir: Path) -> None:
    c = Cache(cache_dir)
    c.ensure()
    seen: list[Path] = []
    # modes as the unpacker leaves them (the record is computed before make_read_only)
    files = {"bin/tool": (DATA, 0o555), "share/doc.txt": (b"doc", 0o444)}
    tree = c.store_tree(KEY, _build(files, seen))
    assert tree == c.tree_path(KEY)
    assert seen[0].is_relative_to(cache_dir / "tmp")
    assert c.has_tree(KEY)
    assert (tree / "bin" / "tool").read_bytes() == DATA
    # read-only, executable bit kept
    assert stat.S_IMODE((tree / "bin" / "tool").stat().st_mode) == 0o555
    assert stat.S_IMODE((tree / "share" / "doc.txt").stat().st_mode) == 0o444
    assert stat.S_IMODE(tree.stat().st_mode) == 0o555
    record = c.read_record(KEY)
    assert record.key == str(KEY)
    assert record.tree == tree_digest(tree)[0]
    check_cache_layout(cache_dir)


def test_store_tree_is_a_noop_when_present(cache_dir: Path) -> None:
    c = Cache(cache_dir)
    c.ensure()
    c.store_tree(KEY, _build({"x": (b"1", 0o644)}))

    def must_not_build(dest: Path) -> dict[str, Any]:
        raise AssertionError("tree rebuilt")

    c.store_tree(KEY, must_not_build)


def test_failed_unpack_leaves_no_tree(cache_dir: Path) -> None:
    c = Cache(cache_dir)
    c.ensure()

    def bad(dest: Path) -> dict[str, Any]:
        (dest / "half").write_bytes(b"x")
        raise IntegrityError("unsafe archive")

    with pytest.raises(IntegrityError):
        c.store_tree(KEY, bad)
    assert not c.has_tree(KEY)
    assert not c.tree_path(KEY).exists()
    assert not c.record_path(KEY).exists()
    assert tmp_entries(cache_dir) == []


def test_tree_without_record_is_incomplete_and_redone(cache_dir: Path) -> None:
    """A crash between the rename and the record leaves a tree that does not count."""
    c = Cache(cache_dir)
    c.ensure()
    c.store_tree(KEY, _build({"old": (b"old", 0o644)}))
    c.record_path(KEY).unlink()
    assert not c.has_tree(KEY)
    tree = c.store_tree(KEY, _build({"new": (b"new", 0o644)}))
    assert sorted(p.name for p in tree.iterdir()) == ["new"]
    assert c.has_tree(KEY)
    check_cache_layout(cache_dir)


def test_touch_and_drop_tree(cache_dir: Path) -> None:
    c = Cache(cache_dir)
    c.ensure()
    c.store_tree(KEY, _build({"x": (b"1", 0o644)}))
    os.utime(c.record_path(KEY), (1_000_000, 1_000_000))
    c.touch_tree(KEY)
    assert c.record_path(KEY).stat().st_mtime > 1_000_000
    c.drop_tree(KEY)
    assert not c.has_tree(KEY) and not c.tree_path(KEY).exists()
    c.store_blob(DIGEST, _writer(DATA))
    c.drop_blob(DIGEST)
    assert not c.has_blob(DIGEST)


def test_materialize_hardlinks_a_tree(cache_dir: Path, tmp_path: Path) -> None:
    c = Cache(cache_dir)
    c.ensure()
    tree = c.store_tree(KEY, _build({"bin/tool": (DATA, 0o755), "doc": (b"d", 0o644)}))
    out = tmp_path / "out"
    materialize(tree, out)
    for rel in ("bin/tool", "doc"):
        assert (out / rel).read_bytes() == (tree / rel).read_bytes()
        assert (out / rel).stat().st_ino == (tree / rel).stat().st_ino  # hardlink
    assert os.access(out / "bin" / "tool", os.X_OK)
    # directories are writable so a build system can clean them
    assert (out / "bin").stat().st_mode & 0o200
    with pytest.raises(LocalIOError, match="not an empty directory") as refused:
        materialize(tree, out)
    assert refused.value.exit_code == 8


@pytest.mark.parametrize("how", ["store_blob", "store_new_blob"])
def test_a_blob_another_writer_places_meanwhile_keeps_its_inode(
        cache_dir: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    """The race blob placement guards against: another writer (of a small blob, which takes
    no lock, or `lock` pinning the same asset) places the blob between this writer's check
    and its placement. The first inode stays, as a tree may hardlink it already;
    store_new_blob renamed over it."""
    c = Cache(cache_dir)
    c.ensure()
    dest = c.blob_path(DIGEST)
    first: list[int] = []

    def other_writer_first(dst: object) -> None:
        if not first and Path(str(dst)) == dest:
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(DATA)
            dest.chmod(0o444)
            first.append(dest.stat().st_ino)

    for name in ("link", "rename", "replace"):
        real = getattr(os, name)

        def placing(src: Any, dst: Any, *args: Any, _real: Any = real, **kw: Any) -> Any:
            other_writer_first(dst)
            return _real(src, dst, *args, **kw)

        monkeypatch.setattr(os, name, placing)
    if how == "store_blob":
        c.store_blob(DIGEST, _writer(DATA), len(DATA))
    else:
        assert c.store_new_blob(lambda f: (f.write(DATA), DIGEST)[1]) == DIGEST
    monkeypatch.undo()
    assert first and dest.stat().st_ino == first[0] and dest.stat().st_nlink == 1
    assert dest.read_bytes() == DATA
    assert tmp_entries(cache_dir) == []
