"""`cache verify` tells a bad tree from one it cannot check here, and checks every promise a
tree makes: read-only directories, a real directory as its root, a record whose file list
hashes to its tree digest."""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tf import Result, assert_ok, tf_main

from toolfetch.cache import unpack
from toolfetch.cache.store import Cache
from toolfetch.core.errors import IntegrityError, LocalIOError, UsageError
from toolfetch.core.fs import remove_tree


@pytest.fixture
def hello(example: Path) -> Path:
    """The tree of the example's `hello` (one tar+gzip layer: share/hello/greeting.txt)."""
    r = tf_main("which", "--json", "hello", "--lockfile", example)
    assert_ok(r)
    tree = Path(json.loads(r.stdout)["tree"])
    assert_ok(tf_main("cache", "verify"))
    return tree


def _record(tree: Path) -> Path:
    return tree.with_name(tree.name + ".json")


def _bad(r: Result) -> list[dict[str, str]]:
    """The bad entries ``cache verify --json`` reported (exit 3 when there are any)."""
    bad: list[dict[str, str]] = json.loads(r.stdout)
    assert r.returncode == (3 if bad else 0), r
    return bad


def _only_bad(tree: Path) -> str:
    """The one problem verify reports, which must be about ``tree``."""
    r = tf_main("cache", "verify", "--json")
    bad = _bad(r)
    assert [(b["kind"], b["digest"]) for b in bad] == [("tree", f"sha256:{tree.name}")], bad
    assert f"bad tree sha256:{tree.name}: {bad[0]['problem']}" in r.stderr
    return bad[0]["problem"]


def _kept_on_repair(example: Path, tree: Path) -> None:
    """verify reports nothing, and --repair leaves the tree and its record as they are."""
    record, inode = _record(tree).read_bytes(), tree.stat().st_ino
    r = tf_main("cache", "verify", "--json")
    assert _bad(r) == []
    assert "not checked against its layers" in r.stderr
    assert_ok(tf_main("cache", "verify", "--repair", "--lockfile", example))
    assert tree.stat().st_ino == inode
    assert _record(tree).read_bytes() == record


def _repaired(example: Path, tree: Path) -> None:
    assert_ok(tf_main("cache", "verify", "--repair", "--lockfile", example))
    assert not tree.is_symlink() and tree.is_dir()
    assert (tree / "share" / "hello" / "greeting.txt").is_file()
    assert_ok(tf_main("cache", "verify"))


# ---------------------------------------------------------------- not checkable is not bad


def test_a_lower_unpack_cap_here_does_not_make_a_tree_bad(
        example: Path, hello: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rebuild ignores TOOLFETCH_MAX_UNPACK_BYTES: the tree's layers are checked anyway."""
    monkeypatch.setenv("TOOLFETCH_MAX_UNPACK_BYTES", "1")
    r = tf_main("cache", "verify", "--json")
    assert _bad(r) == []
    assert r.stderr == ""  # rebuilt (uncapped), and found sound: no warning either
    inode = hello.stat().st_ino
    assert_ok(tf_main("cache", "verify", "--repair", "--lockfile", example))
    assert hello.stat().st_ino == inode


def _raise_enospc(*_args: Any, **_kwargs: Any) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def _raise_no_zstandard(*_args: Any, **_kwargs: Any) -> None:
    raise UsageError("tar+zstd layers need the optional 'zstandard' module")


def _raise_local_io(*_args: Any, **_kwargs: Any) -> None:
    raise LocalIOError("cannot unpack: No space left on device")


def _full_tmp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Cache, "temp_dir", _raise_enospc)


@pytest.mark.parametrize("fail", [
    pytest.param(lambda m: m.setattr(unpack, "unpack_layer", _raise_enospc), id="oserror"),
    pytest.param(lambda m: m.setattr(unpack, "unpack_layer", _raise_no_zstandard),
                 id="no-zstandard"),
    pytest.param(lambda m: m.setattr(unpack, "unpack_layer", _raise_local_io), id="localio"),
    pytest.param(_full_tmp, id="full-tmp"),
])
def test_a_rebuild_that_fails_here_is_not_checkable_and_kept(
        example: Path, hello: Path, monkeypatch: pytest.MonkeyPatch,
        fail: Callable[[pytest.MonkeyPatch], None]) -> None:
    fail(monkeypatch)
    _kept_on_repair(example, hello)


def test_layers_the_rules_refuse_prove_the_tree_bad(
        hello: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Intact blobs these unpack rules refuse never gave the tree: bad, not 'not checkable'."""
    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise IntegrityError("unsafe member '../x'")

    monkeypatch.setattr(unpack, "unpack_layer", refuse)
    assert "its layers are refused: unsafe member '../x'" in _only_bad(hello)


def test_a_tree_that_cannot_be_rebuilt_is_still_checked_against_its_record(
        hello: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not checkable against its layers does not skip the checks that need no rebuild."""
    monkeypatch.setattr(unpack, "unpack_layer", _raise_enospc)
    (hello / "share").chmod(0o777)
    assert "directory share has mode 0o777" in _only_bad(hello)


# ---------------------------------------------------------------- broken promises


def test_a_world_writable_directory_is_bad(example: Path, hello: Path) -> None:
    (hello / "share" / "hello").chmod(0o777)
    problem = _only_bad(hello)
    assert "directory share/hello has mode 0o777, not 0o555" in problem, problem
    _repaired(example, hello)
    assert (hello / "share" / "hello").stat().st_mode & 0o777 == 0o555


def test_a_writable_tree_root_is_bad(hello: Path) -> None:
    hello.chmod(0o755)
    assert "its root directory has mode 0o755, not 0o555" in _only_bad(hello)


def test_a_tree_root_replaced_by_a_symlink_is_bad(example: Path, hello: Path,
                                                  tmp_path: Path) -> None:
    """Even to an exact copy: the cache's trees must be its own, not whatever a link
    points at; --repair removes the link, never what it points at."""
    copy = tmp_path / "copy"
    shutil.copytree(hello, copy, symlinks=True)
    remove_tree(hello)
    os.symlink(copy, hello)
    assert "symlink" in _only_bad(hello)
    _repaired(example, hello)
    assert (copy / "share" / "hello" / "greeting.txt").is_file()


@pytest.mark.parametrize("field, value", [("mode", 0o644), ("size", 1), ("digest", None)])
def test_a_record_whose_files_do_not_hash_to_its_tree_is_bad(
        example: Path, hello: Path, field: str, value: int | None) -> None:
    path = _record(hello)
    record = json.loads(path.read_bytes())
    entry = next(f for f in record["files"] if f["path"] == "share/hello/greeting.txt")
    entry[field] = value if value is not None else "sha256:" + "0" * 64
    path.chmod(0o644)
    path.write_text(json.dumps(record))
    problem = _only_bad(hello)
    assert "file list hashes to sha256:" in problem and record["tree"] in problem, problem
    _repaired(example, hello)
