"""Temp files and read-only caches (issues 24.16 and 24.18): one naming scheme parsed in one
place (core/tempnames), one `pid_alive`; a temp file whose writer merely looks gone (another
pid namespace) is kept for a grace period; `gc --dry-run` works on a read-only cache; an
export onto a full disk names the file it could not write."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tf import assert_error, assert_ok, gc_report, run_toolfetch, tf_main, tmpfs

from toolfetch.core import tempnames
from toolfetch.oci import layout as oci_layout


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _named_by(pid: int, name: str = "entry", suffix: str = ".part") -> str:
    return f".{name}.{tempnames.host_tag()}-{pid}-abcd{suffix}"


def test_gc_survives_temp_names_of_any_shape(example: Path, cache_dir: Path,
                                             monkeypatch: object) -> None:
    """`touch <cache>/tmp/99999999999999999999999-abc.part; cache gc --dry-run` was exit 1
    (OverflowError in the second of two `pid_alive`s)."""
    assert_ok(tf_main("fetch", "--lockfile", example))
    odd = ("99999999999999999999999-abc.part", _named_by(10**30), "x", ".entry.zz-1-2.part")
    for name in odd:
        (cache_dir / "tmp" / name).write_bytes(b"x")
    for name in odd[1::2]:  # an index's temp file is a dot file
        (cache_dir / "lockfiles" / name).write_bytes(b"x")
    for args in (["--dry-run"], []):
        report = gc_report(*args)
        assert report["temp_reclaimed"] == 0  # fresh, and nobody can tell they are dead
    old = time.time() - 2 * tempnames.FOREIGN_GRACE
    for path in [cache_dir / "tmp" / n for n in odd] + [
            cache_dir / "lockfiles" / n for n in odd[1::2]]:
        os.utime(path, (old, old))
    assert gc_report()["temp_reclaimed"] == 6


def test_a_writer_that_looks_gone_keeps_its_temp_files_for_a_grace(
        example: Path, cache_dir: Path, tmp_path: Path) -> None:
    """A writer in another pid namespace (a container sharing the host name) looks dead from
    here while it writes: export and gc remove its temp files only once untouched a while."""
    assert_ok(tf_main("fetch", "--lockfile", example))
    out = tmp_path / "out"
    assert_ok(tf_main("export", "--lockfile", example, out))
    dead = _dead_pid()
    layout_temp = out / "blobs" / "sha256" / _named_by(dead, "ab" * 32)
    cache_temp = cache_dir / "tmp" / _named_by(dead)
    for p in (layout_temp, cache_temp):
        p.write_bytes(b"being written")
    assert_ok(tf_main("export", "--lockfile", example, out))
    os.environ["TOOLFETCH_GC_GRACE"] = "60"
    try:
        assert gc_report()["temp_reclaimed"] == 0
    finally:
        del os.environ["TOOLFETCH_GC_GRACE"]
    assert layout_temp.exists() and cache_temp.exists()
    old = time.time() - oci_layout.WRITER_GRACE - 1
    for p in (layout_temp, cache_temp):
        os.utime(p, (old, old))
    assert_ok(tf_main("export", "--lockfile", example, out))
    assert gc_report()["temp_reclaimed"] == 1
    assert not layout_temp.exists() and not cache_temp.exists()


def test_gc_dry_run_works_on_a_read_only_cache(example: Path, tmp_path: Path) -> None:
    root = tmp_path / "ro"
    with tmpfs(root, "8m"):
        cache = root / "cache"
        assert_ok(run_toolfetch("fetch", "--lockfile", example, "--cache-dir", cache))
        assert list((cache / "locks").iterdir())  # the fetch's: a lock a dry run tries
        subprocess.run(["mount", "-o", "remount,ro", str(root)], check=True)
        r = run_toolfetch("cache", "gc", "--dry-run", "--json", "--max-size", "0",
                          "--cache-dir", cache, env={"TOOLFETCH_GC_GRACE": "0"})
        assert_ok(r)
        assert '"kind": "tree"' in r.stdout


def test_export_onto_a_full_disk_names_the_file(example: Path, tmp_path: Path) -> None:
    root = tmp_path / "full"
    with tmpfs(root, "64k"):
        fd = os.open(root / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:
            pass  # full
        finally:
            os.close(fd)
        r = run_toolfetch("export", "--lockfile", example, root / "out")
        assert_error(r, 8, "no space left on device", str(root / "out"))
