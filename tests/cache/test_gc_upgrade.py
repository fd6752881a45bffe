"""Read-only cache commands change nothing, and gc's report matches what it did: a cache of
an older layout (whose trees an upgrade drops), a missing cache, evicted entries' locks."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from tf import assert_ok, gc_report, run_toolfetch


@pytest.fixture
def cache() -> Path:
    return Path(os.environ["TOOLFETCH_CACHE_DIR"])


def _snapshot(root: Path) -> dict[str, tuple[int, int, float]]:
    """Every path under ``root`` with its inode, size and mtime."""
    out = {}
    for p in [root, *root.rglob("*")]:
        st = p.lstat()
        out[str(p.relative_to(root))] = (st.st_ino, st.st_size, st.st_mtime)
    return out


def _records(cache: Path) -> list[Path]:
    return sorted((cache / "trees").rglob("*.json"))


def _layout_1(example: Path, cache: Path) -> int:
    """The example fetched for every platform, then marked as written by cache layout 1."""
    assert_ok(run_toolfetch("fetch", "--all-platforms", "--lockfile", example))
    (cache / "layout.json").write_text('{"version": 1}')
    trees = len(_records(cache))
    assert trees > 1
    return trees


def test_gc_dry_run_of_an_older_layout_changes_nothing_and_reports_the_upgrade(
        example: Path, cache: Path) -> None:
    trees = _layout_1(example, cache)
    before = _snapshot(cache)
    dry = gc_report("--dry-run")
    assert _snapshot(cache) == before  # not one file created, removed or touched
    dropped = [r for r in dry["removed"] if r["kind"] == "tree"]
    assert len(dropped) == trees  # every tree, whatever the grace period says
    real = gc_report()
    assert [(r["kind"], r["digest"], r["freed"]) for r in real["removed"]] == \
        [(r["kind"], r["digest"], r["freed"]) for r in dry["removed"]]
    assert (real["freed"], real["size_after"]) == (dry["freed"], dry["size_after"])
    assert _records(cache) == []
    assert json.loads((cache / "layout.json").read_text()) == {"version": 2}


def test_verify_of_an_older_layout_changes_nothing(example: Path, cache: Path) -> None:
    _layout_1(example, cache)
    before = _snapshot(cache)
    r = run_toolfetch("cache", "verify")
    assert r.returncode == 0, r.stderr
    assert "cache layout 1" in r.stderr and "not checked" in r.stderr
    assert _snapshot(cache) == before


def test_verify_still_finds_a_bad_blob_in_an_older_layout(example: Path, cache: Path) -> None:
    _layout_1(example, cache)
    blob = next(p for p in (cache / "blobs").rglob("*") if p.is_file())
    blob.chmod(0o644)
    blob.write_bytes(b"damaged")
    r = run_toolfetch("cache", "verify")
    assert r.returncode == 3
    assert blob.name in r.stderr


def test_gc_dry_run_of_a_missing_cache_creates_nothing(cache: Path) -> None:
    assert not cache.exists()
    dry = gc_report("--dry-run")
    assert (dry["removed"], dry["size_before"], dry["size_after"]) == ([], 0, 0)
    assert not cache.exists()
    assert gc_report()["removed"] == [] and not cache.exists()


def test_gc_leaves_no_lock_file_of_an_entry_it_evicts(example: Path, cache: Path) -> None:
    assert_ok(run_toolfetch("fetch", "--all-platforms", "--lockfile", example))
    old = time.time() - 10 * 86400
    for p in [*(cache / "blobs").rglob("*"), *_records(cache)]:
        os.utime(p, (old, old), follow_symlinks=False)
    real = gc_report("--unused-for", "1d")
    assert real["removed"] and _records(cache) == []
    assert sorted((cache / "locks").iterdir()) == []
    again = gc_report("--dry-run")
    assert (again["removed"], again["locks_reclaimed"], again["temp_reclaimed"]) == ([], 0, 0)
