"""``fetch --output DIR``: all or nothing (a failed copy leaves DIR as it was, so a retry
works), the error names the output file, and one platform only (not ``--all-platforms``)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tf import (
    TRACEBACK,
    assert_error,
    assert_ok,
    cache_trees,
    run_toolfetch,
    tf_main,
    tmpfs,
)

from toolfetch.core.errors import LocalIOError
from toolfetch.ops import output as output_module
from toolfetch.ops.output import materialize


def _tree(lockfile: Path, tool: str) -> Path:
    r = run_toolfetch("which", "--json", tool, "--lockfile", lockfile)
    assert_ok(r)
    return Path(json.loads(r.stdout)["tree"])


@pytest.fixture
def other_fs(tmp_path: Path) -> Iterator[Path]:
    """An empty directory on another file system than tmp_path (the cache): os.link fails
    there with EXDEV, so --output copies."""
    shm = Path("/dev/shm")
    if os.name == "nt" or not shm.is_dir() or not os.access(shm, os.W_OK):
        pytest.skip("no writable /dev/shm")
    if shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("/dev/shm is on the same file system as the cache")
    parent = Path(tempfile.mkdtemp(prefix="toolfetch-test-", dir=shm))
    try:
        yield parent
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def _fetch_limited(lockfile: Path, out: Path, limit: int) -> subprocess.CompletedProcess[str]:
    """``fetch hello --output OUT`` with RLIMIT_FSIZE at ``limit`` bytes (writes past it fail
    with EFBIG: Python ignores SIGXFSZ)."""
    import resource

    def set_limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        [sys.executable, "-m", "toolfetch", "fetch", "--lockfile", str(lockfile), "hello",
         "--output", str(out)],
        capture_output=True, text=True, timeout=120, preexec_fn=set_limit)


@pytest.mark.parametrize("existing", [False, True], ids=["absent", "empty-dir"])
def test_a_copy_failing_part_way_leaves_the_output_as_it_was(
        example: Path, cache_dir: Path, other_fs: Path, existing: bool) -> None:
    tree = _tree(example, "hello")  # the cache is warm: the limited run writes only DIR
    sizes = {str(p.relative_to(tree)): p.stat().st_size for p in tree.rglob("*")
             if p.is_file()}
    big = max(sizes, key=lambda k: sizes[k])
    limit = sizes[big] // 2
    assert [k for k, n in sizes.items() if n > limit] == [big]  # the one copy that fails
    out = other_fs / "out"
    if existing:
        out.mkdir()
        out.chmod(0o750)
    r = _fetch_limited(example, out, limit)
    assert_error(r, 8, f"--output {out}", str(out / big))
    assert str(cache_dir) not in r.stderr and f"/.{out.name}." not in r.stderr, r.stderr
    # DIR as it was, and no temp directory beside it
    assert sorted(p.name for p in other_fs.iterdir()) == (["out"] if existing else [])
    if existing:
        assert list(out.iterdir()) == []
    # a retry (no limit) is not refused, and writes the whole tree, as copies
    r = run_toolfetch("fetch", "--lockfile", example, "hello", "--output", out)
    assert_ok(r)
    assert TRACEBACK not in r.stderr
    assert sorted(p.name for p in other_fs.iterdir()) == ["out"]
    for rel in sizes:
        assert (out / rel).read_bytes() == (tree / rel).read_bytes()
        assert (out / rel).stat().st_ino != (tree / rel).stat().st_ino  # copied
    if existing:
        assert out.stat().st_mode & 0o777 == 0o750  # the empty directory's mode is kept
    p = subprocess.run([str(out / "bin" / "hello")], capture_output=True, text=True)
    assert p.returncode == 0 and "Hello from toolfetch!" in p.stdout, p.stderr


def test_materialize_cleans_up_after_a_failing_copy(example: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The same on any machine: links refused, the second copy runs out of space."""
    tree = _tree(example, "hello")
    copied: list[str] = []

    def refuse_link(src: Any, dst: Any) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link", str(src), None, str(dst))

    def copy_then_fill_up(src: Any, dst: Any) -> None:
        if copied:
            Path(dst).write_bytes(b"half")
            raise OSError(errno.ENOSPC, "No space left on device", str(src), None, str(dst))
        copied.append(str(dst))
        shutil.copyfile(src, dst)

    out = tmp_path / "deep" / "out"
    with monkeypatch.context() as m, pytest.raises(LocalIOError) as failed:
        m.setattr(output_module.os, "link", refuse_link)
        m.setattr(output_module.shutil, "copy2", copy_then_fill_up)
        materialize(tree, out)
    assert failed.value.exit_code == 8
    assert "no space left on device" in str(failed.value) and f"({out}/" in str(failed.value)
    assert str(tree) not in str(failed.value)
    assert list((tmp_path / "deep").iterdir()) == []  # neither DIR nor a temp directory
    materialize(tree, out)
    assert (out / "bin" / "hello").read_bytes() == (tree / "bin" / "hello").read_bytes()
    assert (out / "bin" / "hello").stat().st_ino == (tree / "bin" / "hello").stat().st_ino
    assert list((tmp_path / "deep").iterdir()) == [out]


def test_a_non_empty_output_is_refused_and_left_alone(example: Path, tmp_path: Path) -> None:
    tree = _tree(example, "hello")
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine").write_text("keep")
    with pytest.raises(LocalIOError, match="not an empty directory"):
        materialize(tree, out)
    assert [p.name for p in out.iterdir()] == ["mine"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_output_with_all_platforms_is_a_usage_error(example: Path, cache_dir: Path,
                                                    tmp_path: Path) -> None:
    """--output writes one tree: with --all-platforms it would be an arbitrary platform's."""
    out = tmp_path / "out"
    r = tf_main("fetch", "--lockfile", example, "greet", "--all-platforms", "--output", out)
    assert_error(r, 2, "--output", "--all-platforms")
    assert not out.exists()
    assert cache_trees(cache_dir) == {}  # refused before fetching anything


def test_output_onto_an_empty_mount_point_is_filled_in_place(example: Path,
                                                             tmp_path: Path) -> None:
    """Issue 24.18: renaming onto a mount point is EBUSY (exit 8); the tree is copied into it."""
    out = tmp_path / "mnt"
    with tmpfs(out, "4m"):
        r = tf_main("fetch", "--lockfile", example, "hello", "--output", out)
        assert r.returncode == 0, r.stderr
        p = subprocess.run([str(out / "bin" / "hello")], capture_output=True, text=True)
        assert p.returncode == 0 and "Hello from toolfetch!" in p.stdout, p.stderr
        assert os.path.ismount(out)
        assert [n for n in os.listdir(tmp_path) if n.startswith(".")] == []
