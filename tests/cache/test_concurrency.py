"""The cache under pressure: concurrent fetches, SIGKILL, full and read-only disks, hostile
layers pushed to a real registry.

Invariant checked after every crash: whatever sits under a final name is complete (blobs
hash to their name, every tree record matches its tree); the next run succeeds.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, cast

import ocitest
import pytest
from faultproxy import (
    FaultProxy,
    lock_entry,
    push_tool,
    registry_storage,
    toolfetch_proc,
    write_lockfile,
)
from tf import sharded, tf_main, tmpfs, tree_of

from toolfetch.cache.store import SMALL_BLOB, Cache
from toolfetch.cache.trees import tree_digest
from toolfetch.lock.lockfile import Lockfile
from toolfetch.ops.fetch import Fetcher
from toolfetch.ops.plan import plan

N = 8


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLFETCH_RETRY_DELAY", "0.01")


@pytest.fixture
def proxy(registry: ocitest.Registry) -> Iterator[FaultProxy]:
    with FaultProxy(registry.host, storage=registry_storage(registry)) as p:
        yield p


def many_files_tar(count: int, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    files: dict[str, ocitest.TarValue] = {"bin/": (b"", 0o755), "bin/tool": (b"#!/bin/sh\n", 0o755)}
    for i in range(count):
        files[f"share/d{i % 20}/f{i}"] = rng.randbytes(rng.randint(10, 2000))
    return ocitest.targz(files)


def check_cache(root: Path) -> dict[str, int]:
    """Every complete-looking entry is complete; returns counts of what is there."""
    counts = {"blobs": 0, "trees": 0, "partial_trees": 0, "tmp": 0}
    for blob in (root / "blobs").rglob("*") if (root / "blobs").exists() else []:
        if blob.is_file():
            assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name, blob
            counts["blobs"] += 1
    trees = root / "trees"
    for record in trees.rglob("*.json") if trees.exists() else []:
        data = json.loads(record.read_text())  # written atomically: always whole JSON
        tree = record.with_suffix("")
        assert tree.is_dir(), record
        assert tree_digest(tree)[0] == data["tree"], f"{tree} does not match its record"
        counts["trees"] += 1
    if trees.exists():
        counts["partial_trees"] = sum(
            1 for d in trees.glob("sha256/*/*/*") if d.is_dir()
            and not d.with_name(d.name + ".json").exists())
    if (root / "tmp").exists():
        counts["tmp"] = len(list((root / "tmp").iterdir()))
    return counts


# ------------------------------------------------------------------------------------------
# concurrency
# ------------------------------------------------------------------------------------------


@pytest.fixture
def shared_tool(registry: ocitest.Registry, proxy: FaultProxy, unique_repo: str,
                tmp_path: Path) -> tuple[Path, bytes]:
    # Both layers are at least SMALL_BLOB, the size from which blobs are locked (and shared)
    data = random.Random(3).randbytes(SMALL_BLOB)
    layer = many_files_tar(1000)
    assert len(layer) >= SMALL_BLOB
    art = ocitest.oras_artifact({"tool": data, "extra.tar.gz": layer})
    ocitest.push_artifact(registry, unique_repo, "1", art)
    entry = lock_entry(f"{proxy.host}/{unique_repo}:1", art, "tool")
    return write_lockfile(tmp_path / "tools.lock.json", {"tool": entry}), data


def test_processes_share_one_download(proxy: FaultProxy, shared_tool: tuple[Path, bytes],
                                      cache_dir: Path) -> None:
    lock, data = shared_tool
    proxy.add("slow", rate=4 << 20, times=None)  # ~0.25 s per MiB: the fetches overlap
    procs = [toolfetch_proc("fetch", "--lockfile", str(lock), "--json") for _ in range(N)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * N, [e.decode() for _, e in outs]
    paths = {json.loads(o)[0]["path"] for o, _ in outs}
    assert len(paths) == 1 and Path(paths.pop()).read_bytes() == data
    gets = proxy.requests("/blobs/")
    assert len(gets) == 2, [g.path for g in gets]  # each layer downloaded once
    counts = check_cache(cache_dir)
    assert counts == {"blobs": 2, "trees": 1, "partial_trees": 0, "tmp": 0}


def test_processes_racing_on_a_small_blob_keep_one_file(
        registry: ocitest.Registry, proxy: FaultProxy, unique_repo: str, tmp_path: Path,
        cache_dir: Path) -> None:
    # Small blobs take no lock: racing processes may each download one, the first to finish
    # places it, and everyone's tree links that one file.
    data = b"#!/bin/sh\necho small\n" * 100
    art = ocitest.oras_artifact({"tool": data})
    ocitest.push_artifact(registry, unique_repo, "1", art)
    lock = write_lockfile(tmp_path / "tools.lock.json",
                          {"tool": lock_entry(f"{proxy.host}/{unique_repo}:1", art, "tool")})
    proxy.add("slow", rate=64 << 10, times=None)  # ~40 ms per request: the fetches overlap
    procs = [toolfetch_proc("fetch", "--lockfile", str(lock), "--json") for _ in range(N)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * N, [e.decode() for _, e in outs]
    paths = {json.loads(o)[0]["path"] for o, _ in outs}
    assert len(paths) == 1
    tool = Path(paths.pop())
    blob = sharded(cache_dir, "blobs", art.layers[0]["digest"])
    assert tool.read_bytes() == data and os.path.samefile(tool, blob)
    assert 1 <= len(proxy.requests("/blobs/")) <= N
    assert check_cache(cache_dir) == {"blobs": 1, "trees": 1, "partial_trees": 0, "tmp": 0}


def test_threads_share_one_download(proxy: FaultProxy, shared_tool: tuple[Path, bytes],
                                    cache_dir: Path) -> None:
    lock, data = shared_tool
    proxy.add("slow", rate=8 << 20, times=None)
    lockfile = Lockfile.load(lock)
    wants = plan(lockfile, ["tool"], None, True)
    errors: list[BaseException] = []
    barrier = threading.Barrier(N)

    def worker() -> None:
        try:
            barrier.wait()
            trees = Fetcher(Cache(cache_dir), lockfile).fetch(wants)
            assert (next(iter(trees.values())) / "tool").read_bytes() == data
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(N)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(proxy.requests("/blobs/")) == 2
    assert check_cache(cache_dir)["trees"] == 1


# ------------------------------------------------------------------------------------------
# crashes
# ------------------------------------------------------------------------------------------


def _wait_for(pred: Any, proc: subprocess.Popen[bytes], timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if pred():
            return True
        time.sleep(0.002)
    return False


def test_sigkill_at_any_point_leaves_no_complete_looking_entry(
        proxy: FaultProxy, registry: ocitest.Registry, unique_repo: str, tmp_path: Path,
        cache_dir: Path) -> None:
    big = random.Random(5).randbytes(3 << 20)
    layer = many_files_tar(1500)
    art = ocitest.oras_artifact({"tool": big, "share.tar.gz": layer})
    ocitest.push_artifact(registry, unique_repo, "1", art)
    lock = write_lockfile(tmp_path / "tools.lock.json",
                          {"tool": lock_entry(f"{proxy.host}/{unique_repo}:1", art, "tool")})
    proxy.add("slow", rate=12 << 20, times=None)
    tmp = cache_dir / "tmp"

    def parts() -> list[Path]:
        return [p for p in tmp.glob("*.part") if p.stat().st_size > 100_000]

    def blobs() -> list[Path]:
        return [p for p in (cache_dir / "blobs").rglob("*") if p.is_file()]

    points: dict[str, tuple[Any, float]] = {  # name: (condition, then wait so long)
        "at start": (lambda: True, 0.05),
        "mid download": (parts, 0.0),
        "after first blob": (blobs, 0.0),
        "mid unpack": (lambda: list(tmp.glob("*.tree")), 0.05),
    }
    killed: list[str] = []
    for name, (pred, extra) in points.items():
        proc = toolfetch_proc("fetch", "--lockfile", str(lock))
        if name == "at start" or _wait_for(lambda p=pred: tmp.exists() and p(), proc):
            time.sleep(extra)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                killed.append(name)
        proc.communicate(timeout=30)
        check_cache(cache_dir)  # whatever looks complete is complete
        # offline, the next run either finishes from complete blobs or says what is missing
        r = tf_main("which", "--lockfile", str(lock), "tool", "--offline")
        assert r.returncode in (0, 6), (name, r)
        if r.returncode == 0:
            assert Path(r.stdout.strip()).read_bytes() == big
            shutil.rmtree(cache_dir / "trees")  # start the next kill from the blobs again
            shutil.rmtree(cache_dir / "blobs")
    assert len(killed) >= 3, killed
    r = tf_main("fetch", "--lockfile", str(lock), "--json")
    assert r.returncode == 0, r
    assert Path(json.loads(r.stdout)[0]["path"]).read_bytes() == big
    counts = check_cache(cache_dir)
    assert counts["trees"] == 1 and counts["partial_trees"] == 0


def test_leftovers_of_a_crash_are_not_mistaken_for_entries(
        registry: ocitest.Registry, unique_repo: str, tmp_path: Path, cache_dir: Path) -> None:
    """The states a crash can leave between the steps of store_tree/store_blob."""
    art, entry = push_tool(registry, unique_repo, {"tool": b"#!/bin/sh\necho ok\n",
                                                   "lib.tar.gz": many_files_tar(5)})
    lock = write_lockfile(tmp_path / "tools.lock.json", {"tool": entry})
    cache = Cache(cache_dir)
    cache.ensure()
    # a dead process's partial download and unpack directory
    (cache.tmp / "999999-deadbeef.part").write_bytes(b"partial")
    (cache.tmp / "999999-deadbeef.tree").mkdir()
    # a tree renamed into place with no record yet, holding only part of its files
    tree = tree_of(cache_dir, entry)
    (tree / "share").mkdir(parents=True)
    (tree / "share" / "half-written").write_bytes(b"x")
    # the lock files of a killed process
    for layer in art.layers:
        (cache.locks / f"blob-{layer['digest'].split(':')[1]}.lock").write_bytes(b"")
    r = tf_main("which", "--lockfile", str(lock), "tool", "--offline")
    assert r.returncode == 6, r
    r = tf_main("which", "--lockfile", str(lock), "tool")
    assert r.returncode == 0, r
    assert not (tree / "share" / "half-written").exists()
    assert check_cache(cache_dir)["trees"] == 1


# ------------------------------------------------------------------------------------------
# full and read-only disks
# ------------------------------------------------------------------------------------------


def test_disk_full_real_tmpfs(registry: ocitest.Registry, unique_repo: str,
                              tmp_path: Path) -> None:
    big = random.Random(9).randbytes(1536 * 1024)
    unpacks_big = ocitest.targz({"bin/tool": (b"#!/bin/sh\n", 0o755),
                                 "share/zeros": b"\0" * (3 << 20)})
    _, e1 = push_tool(registry, unique_repo + "/a", {"tool": big})
    _, e2 = push_tool(registry, unique_repo + "/b", {"tool.tar.gz": unpacks_big}, exe="bin/tool")
    lock = write_lockfile(tmp_path / "tools.lock.json", {"big": e1, "bomb": e2})
    with tmpfs(tmp_path / "small", "1m") as root:
        cache = root / "cache"
        for tool in ("big", "bomb"):
            r = tf_main("fetch", "--lockfile", str(lock), "--cache-dir", str(cache), tool)
            assert r.returncode == 8, r  # a local I/O failure, not an internal error
            assert "no space left on device" in r.stderr.lower(), r
            assert "Traceback" not in r.stderr
            counts = check_cache(cache)
            assert counts == {"blobs": 0 if tool == "big" else 1, "trees": 0,
                              "partial_trees": 0, "tmp": 0}, (tool, counts)


def test_disk_full_while_writing_a_blob(registry: ocitest.Registry, unique_repo: str,
                                        tmp_path: Path, cache_dir: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The same without root: the temp file's writes fail with ENOSPC half-way."""
    _, entry = push_tool(registry, unique_repo, {"tool": random.Random(1).randbytes(300_000)})
    lock = write_lockfile(tmp_path / "tools.lock.json", {"tool": entry})
    real = Cache.store_blob

    class Full(io.RawIOBase):
        def __init__(self, f: IO[bytes]) -> None:
            self.f, self.n = f, 0

        def write(self, b: Any) -> int:
            self.n += len(b)
            if self.n > 100_000:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "tmp-file")
            return self.f.write(b)

    def store_blob(self: Cache, digest: Any, write: Callable[[IO[bytes]], None],
                   size: int | None = None) -> Path:
        return real(self, digest, lambda f: write(cast(IO[bytes], Full(f))), size)

    monkeypatch.setattr(Cache, "store_blob", store_blob)
    r = tf_main("fetch", "--lockfile", str(lock))
    assert r.returncode == 8 and "no space left on device" in r.stderr, r
    assert check_cache(cache_dir) == {"blobs": 0, "trees": 0, "partial_trees": 0, "tmp": 0}


def test_read_only_cache(registry: ocitest.Registry, unique_repo: str, tmp_path: Path) -> None:
    """Root: a tmpfs remounted read-only (EROFS); others: directories without write bits."""
    _, e1 = push_tool(registry, unique_repo + "/a", {"a": b"#!/bin/sh\necho a\n"})
    _, e2 = push_tool(registry, unique_repo + "/b", {"b": b"#!/bin/sh\necho b\n"})
    lock = write_lockfile(tmp_path / "tools.lock.json", {"a": e1, "b": e2})
    root = tmp_path / "ro"
    with contextlib.ExitStack() as stack:
        if os.geteuid() == 0:
            stack.enter_context(tmpfs(root, "4m"))
        else:
            root.mkdir()
        cache = root / "cache"
        r = tf_main("fetch", "--lockfile", str(lock), "--cache-dir", str(cache), "a")
        assert r.returncode == 0, r
        if os.geteuid() == 0:
            subprocess.run(["mount", "-o", "remount,ro", str(root)], check=True)
            reason = "read-only file system"
        else:
            for d in [root, *(p for p in root.rglob("*") if p.is_dir())]:
                d.chmod(0o555)
            def writable() -> None:
                for d in [root, *root.rglob("*")]:
                    if d.is_dir():
                        d.chmod(0o755)

            stack.callback(writable)
            reason = "permission denied"
        r = tf_main("which", "--lockfile", str(lock), "--cache-dir", str(cache), "a")
        assert r.returncode == 0 and r.stdout.strip().endswith("/a"), r  # hits still work
        r = tf_main("fetch", "--lockfile", str(lock), "--cache-dir", str(cache), "b")
        assert r.returncode == 8 and reason in r.stderr.lower(), r
        assert "Traceback" not in r.stderr and "internal error" not in r.stderr
        assert check_cache(cache)["trees"] == 1
        r = tf_main("fetch", "--lockfile", str(lock), "--cache-dir", str(root / "fresh"), "b")
        assert r.returncode == 8 and reason in r.stderr.lower(), r


# ------------------------------------------------------------------------------------------
# hostile layers from a registry
# ------------------------------------------------------------------------------------------

HOSTILE: dict[str, dict[str, ocitest.TarValue]] = {
    "dotdot": {"tool": b"x", "../escaped": b"x"},
    "absolute": {"tool": b"x", "/tmp/toolfetch-absolute-escape": b"x"},
    "symlink-then-member": {"tool": b"x", "d/": b"", "d/up": ocitest.Symlink(".."),
                            "d/up/escaped": b"x"},
    "symlink-outside": {"tool": b"x", "out": ocitest.Symlink("../../etc")},
    "hardlink-outside": {"tool": b"x", "pw": ocitest.Hardlink("/etc/passwd")},
    "hardlink-dotdot": {"tool": b"x", "pw": ocitest.Hardlink("../escaped")},
    "fifo": {"tool": b"x", "pipe": ocitest.Special(tarfile.FIFOTYPE)},
    "device": {"tool": b"x", "dev": ocitest.Special(tarfile.CHRTYPE)},
    "dir-over-file": {"tool": b"x", "tool/": b""},
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_layer_is_refused(case: str, registry: ocitest.Registry, unique_repo: str,
                                  tmp_path: Path, cache_dir: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    _, entry = push_tool(registry, unique_repo, {"evil.tar": ocitest.tarbytes(HOSTILE[case])},
                         exe="tool")
    lock = write_lockfile(work / "tools.lock.json", {"evil": entry})
    r = tf_main("fetch", "--lockfile", str(lock))
    assert r.returncode == 3, r
    assert "Traceback" not in r.stderr
    assert check_cache(cache_dir)["trees"] == 0
    assert not list((cache_dir / "trees").rglob("*.json"))
    assert escapes(tmp_path) == []
    assert check_cache(cache_dir)["partial_trees"] == 0


ESCAPE_NAMES = ("escaped", "toolfetch-absolute-escape")


def escapes(tmp_path: Path) -> list[Path]:
    """Files a hostile layer planted outside its tree: anywhere under the test's directory
    (the cache's tmp/, where unpacking runs, included) and /tmp for absolute names."""
    found = [p for p in tmp_path.rglob("*") if p.name in ESCAPE_NAMES]
    return found + [p for p in (Path("/tmp/toolfetch-absolute-escape"),) if p.exists()]


def test_the_escape_finder_finds_an_escape(registry: ocitest.Registry, unique_repo: str,
                                           tmp_path: Path, cache_dir: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above can fail: with the name check switched off, ``../escaped`` lands
    beside the tree being unpacked under <cache>/tmp/, and :func:`escapes` reports it."""
    from toolfetch.cache.safetree import SafeTree

    monkeypatch.setattr(SafeTree, "parts", lambda self, name: tuple(name.split("/")))
    _, entry = push_tool(registry, unique_repo, {"evil.tar": ocitest.tarbytes(
        HOSTILE["dotdot"])}, exe="tool")
    lock = write_lockfile(tmp_path / "tools.lock.json", {"evil": entry})
    tf_main("fetch", "--lockfile", str(lock))
    found = escapes(tmp_path)
    assert found and found[0].parent == cache_dir / "tmp", found


def test_decompression_bomb_limit(registry: ocitest.Registry, unique_repo: str,
                                  tmp_path: Path, cache_dir: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = gzip.compress(ocitest.tarbytes({"tool": b"x", "zeros": b"\0" * (8 << 20)}), 9)
    assert len(bomb) < 64 * 1024
    _, entry = push_tool(registry, unique_repo, {"bomb.tar.gz": bomb}, exe="tool")
    lock = write_lockfile(tmp_path / "tools.lock.json", {"bomb": entry})
    monkeypatch.setenv("TOOLFETCH_MAX_UNPACK_BYTES", "1M")
    r = tf_main("fetch", "--lockfile", str(lock))
    assert r.returncode == 3 and "TOOLFETCH_MAX_UNPACK_BYTES" in r.stderr, r
    assert check_cache(cache_dir)["trees"] == 0
    monkeypatch.setenv("TOOLFETCH_MAX_UNPACK_BYTES", "16M")
    assert tf_main("fetch", "--lockfile", str(lock)).returncode == 0


def test_setuid_bits_are_stripped(registry: ocitest.Registry, unique_repo: str,
                                  tmp_path: Path) -> None:
    layer = ocitest.tarbytes({"tool": (b"#!/bin/sh\n", 0o6755), "data": (b"d", 0o4644)})
    _, entry = push_tool(registry, unique_repo, {"t.tar": layer}, exe="tool")
    lock = write_lockfile(tmp_path / "tools.lock.json", {"t": entry})
    r = tf_main("fetch", "--lockfile", str(lock), "--json")
    assert r.returncode == 0, r
    tree = Path(json.loads(r.stdout)[0]["tree"])
    assert (tree / "tool").stat().st_mode & 0o7777 == 0o555
    assert (tree / "data").stat().st_mode & 0o7777 == 0o444


@pytest.mark.parametrize("title", ["../evil", "/abs/evil", "a/../../evil"])
def test_hostile_titles_are_refused(title: str, registry: ocitest.Registry, unique_repo: str,
                                    tmp_path: Path, cache_dir: Path) -> None:
    art = ocitest.oras_artifact({title: b"#!/bin/sh\n"})
    ocitest.push_artifact(registry, unique_repo, "1", art)
    (tmp_path / "tools.yaml").write_text(
        f"tools:\n  t:\n    ref: {registry.host}/{unique_repo}:1\n    path: evil\n")
    r = tf_main("lock", "--lockfile", str(tmp_path / "tools.lock.json"))
    assert r.returncode == 3 and "title" in r.stderr, r  # the registry serves an unsafe artifact
    # a lockfile written by hand (or tampered with) cannot smuggle it past fetch either
    lock = write_lockfile(tmp_path / "hand.lock.json", {
        "t": lock_entry(f"{registry.host}/{unique_repo}:1", art, "evil",
                        unpack={art.layers[0]["digest"]: "raw"})})
    r = tf_main("fetch", "--lockfile", str(lock))
    assert r.returncode == 2 and "title" in r.stderr, r  # the lockfile itself is invalid
    assert check_cache(cache_dir)["trees"] == 0
    assert [p for p in tmp_path.rglob("evil")] == [] and not Path("/abs/evil").exists()
