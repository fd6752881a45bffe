"""Faults between a tree's rename and its record, and ``cache gc --dry-run`` agreeing with
the real run when temp files are reclaimed first."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from tf import du_files, gc_report, tmp_entries

from toolfetch.cache import store
from toolfetch.cache.records import TreeRecord
from toolfetch.cache.store import Cache
from toolfetch.cache.trees import tree_digest
from toolfetch.core import tempnames
from toolfetch.core.digest import Digest
from toolfetch.core.errors import LocalIOError
from toolfetch.core.fs import atomic_write

OLD = time.time() - 10 * 86400


def _build(key: Digest, files: dict[str, bytes], links: dict[str, Path] | None = None) -> Any:
    def build(dest: Path) -> TreeRecord:
        for name, data in files.items():
            (dest / name).write_bytes(data)
        for name, target in (links or {}).items():  # as a raw layer links its blob
            os.link(target, dest / name)
        return TreeRecord(str(key), {"layers": [], "rules": 3}, *tree_digest(dest), layers=())
    return build


@pytest.fixture
def cache(cache_dir: Path) -> Cache:
    c = Cache(cache_dir)
    c.ensure()
    return c


@pytest.fixture
def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[Any]:
    """``hold(path)``: another process holds that filelock until the test ends."""
    procs: list[subprocess.Popen[str]] = []

    def hold(path: Path) -> None:
        proc = subprocess.Popen(
            [sys.executable, "-c", "import filelock,sys,time; l=filelock.FileLock(sys.argv[1]); "
             "l.acquire(); print('held', flush=True); time.sleep(60)", str(path)],
            stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"

    yield hold
    for proc in procs:
        proc.kill()
        proc.wait()


def _record_less(c: Cache, name: bytes, when: float | None, **links: Path) -> Path:
    """A tree left without its record (as by a kill between the rename and the record)."""
    key = Digest.of_bytes(name)
    tree = c.store_tree(key, _build(key, {"f": name * 100}, links))
    c.record_path(key).unlink()
    if when is not None:
        os.utime(tree, (when, when))
    return tree


# ---------------------------------------------------------------- 2. record-less trees

@pytest.mark.parametrize("fault", [OSError(errno.ENOSPC, "No space left on device"),
                                   KeyboardInterrupt()], ids=["ENOSPC", "interrupt"])
def test_a_failed_record_write_leaves_no_tree(cache: Cache, monkeypatch: pytest.MonkeyPatch,
                                              fault: BaseException) -> None:
    key = Digest.of_bytes(b"tool")
    def full(path: Path, data: bytes, *args: Any, **kw: Any) -> None:
        if path == cache.record_path(key):
            raise fault
        atomic_write(path, data, *args, **kw)

    monkeypatch.setattr(store, "atomic_write", full)
    expected = LocalIOError if isinstance(fault, OSError) else KeyboardInterrupt
    with pytest.raises(expected) as raised:
        cache.store_tree(key, _build(key, {"bin": b"#!/bin/sh\n", "doc": b"doc"}))
    if isinstance(fault, OSError):
        assert "no space left on device" in str(raised.value)
    assert not cache.tree_path(key).exists()  # the read-only directory went again
    assert not cache.record_path(key).exists() and not cache.has_tree(key)
    assert tmp_entries(cache.root) == []
    monkeypatch.undo()  # the disk has room again: the next fetch places it
    tree = cache.store_tree(key, _build(key, {"bin": b"#!/bin/sh\n"}))
    assert cache.has_tree(key) and (tree / "bin").read_bytes() == b"#!/bin/sh\n"


def test_gc_reclaims_record_less_trees_past_the_grace_period(cache: Cache, holder: Any) -> None:
    old = _record_less(cache, b"old", OLD)
    young = _record_less(cache, b"young", None)  # just placed: its record may be on its way
    held = _record_less(cache, b"held", OLD)
    holder(cache.lock_path("tree", Digest(held.name)))  # a fetch is on it right now
    before = du_files(cache.root)
    dry = gc_report("--dry-run")
    assert old.is_dir() and du_files(cache.root) == before
    report = gc_report()
    assert not old.exists()
    assert young.is_dir() and held.is_dir()
    assert report["temp_reclaimed"] == dry["temp_reclaimed"] == 1
    assert report["removed"] == [] and report["in_use"] == []
    assert report["size_before"] == report["size_after"] == du_files(cache.root)
    assert dry["size_before"] == dry["size_after"] == report["size_after"]
    assert before - report["size_after"] == len(b"old" * 100)
    assert not cache.lock_path("tree", Digest(old.name)).exists()
    assert gc_report()["temp_reclaimed"] == 0  # the young one is still in its grace period


# ---------------------------------------------------------------- 4. dry run = real run

def test_gc_dry_run_reports_what_the_real_run_removes(cache: Cache, dead_pid: int,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLFETCH_GC_GRACE", "0")
    blobs = []
    for i in range(3):  # 1000 bytes each, oldest first
        data = os.urandom(1000)

        def write(f: IO[bytes], data: bytes = data) -> None:
            f.write(data)

        path = cache.store_blob(Digest.of_bytes(data), write, size=len(data))
        os.utime(path, (OLD + i, OLD + i))
        blobs.append(path)
    # Temp space a real run reclaims first: a dead process's part file and half-unpacked tree
    # (linking blob 0, which it does not free), and a record-less tree linking blob 1.
    tag = tempnames.host_tag()
    (cache.tmp / f".entry.{tag}-{dead_pid}-a.part").write_bytes(b"p" * 5000)
    half = cache.tmp / f".entry.{tag}-{dead_pid}-b.tree"
    half.mkdir()
    (half / "x").write_bytes(b"x" * 700)
    os.link(blobs[0], half / "raw")
    half.chmod(0o555)
    _record_less(cache, b"r", OLD, raw=blobs[1])  # its own file: 100 bytes
    temp = 5000 + 700 + 100
    budget = du_files(cache.root) - temp - 1500  # two blobs must go once the temp files are
    listing = sorted(map(str, cache.root.rglob("*")))
    dry = gc_report("--max-size", str(budget), "--dry-run")
    after_dry = sorted(map(str, cache.root.rglob("*")))
    real = gc_report("--max-size", str(budget))
    assert real["removed"] == dry["removed"]
    assert after_dry == listing  # a dry run changes nothing (creates no lock files either)
    assert [e["digest"].split(":")[1] for e in real["removed"]] == [b.name for b in blobs[:2]]
    assert [e["freed"] for e in real["removed"]] == [1000, 1000]
    assert {k: v for k, v in dry.items() if k != "dry_run"} == \
        {k: v for k, v in real.items() if k != "dry_run"}
    assert real["temp_reclaimed"] == 2 + 1
    assert real["size_after"] == du_files(cache.root) <= budget
    assert real["size_before"] - real["size_after"] == real["freed"] == 2000
    assert tmp_entries(cache.root) == [] and blobs[2].exists()
