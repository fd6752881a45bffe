"""``export`` into a layout that already holds files: a blob there is reused only when its size
and sha256 match (else it is replaced), and the temp files of a killed export are removed."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tf import assert_error, assert_ok, cache_blobs, check_cache_layout, tf_main

from toolfetch.oci import layout as oci_layout


def _blobs_dir(layout: Path) -> Path:
    return layout / "blobs" / "sha256"


def _intact(layout: Path) -> None:
    """Every blob of the layout is named by its own sha256 (recomputed here)."""
    for p in _blobs_dir(layout).iterdir():
        if not p.name.startswith("."):
            assert hashlib.sha256(p.read_bytes()).hexdigest() == p.name, p


def _pinned(lockfile: Path) -> tuple[str, str]:
    """hello's linux/amd64 layer and manifest digests (hex), as the lockfile pins them."""
    entry = json.loads(lockfile.read_text())["tools"]["hello"]["platforms"]["linux/amd64"]
    return entry["layers"][0]["digest"].partition(":")[2], entry["manifest"].partition(":")[2]


def _export(lockfile: Path, layout: Path, cache: Path, *extra: str) -> None:
    assert_ok(tf_main("--cache-dir", cache, "export", layout, "--lockfile", lockfile,
                      "--all-platforms", *extra))


def _damage(blob: Path, how: str) -> None:
    blob.chmod(0o644)
    data = blob.read_bytes()
    if how == "truncated":
        blob.write_bytes(data[:7])
    else:  # the same size, other bytes
        blob.write_bytes(bytes(b ^ 0xFF for b in data[:8]) + data[8:])


@pytest.mark.parametrize("with_cache", [True, False], ids=["from-cache", "from-sources"])
@pytest.mark.parametrize("how", ["truncated", "same-size"])
@pytest.mark.parametrize("which", ["layer", "manifest"])
def test_a_damaged_blob_in_the_layout_is_replaced(example: Path, tmp_path: Path, how: str,
                                                  which: str, with_cache: bool) -> None:
    cache, layout = tmp_path / "cache", tmp_path / "layout"
    if with_cache:
        assert_ok(tf_main("--cache-dir", cache, "fetch", "--lockfile", example,
                          "--all-platforms"))
    _export(example, layout, cache)
    layer, manifest = _pinned(example)
    blob = _blobs_dir(layout) / (layer if which == "layer" else manifest)
    good = blob.read_bytes()
    _damage(blob, how)
    assert blob.read_bytes() != good
    _export(example, layout, cache)
    assert blob.read_bytes() == good
    _intact(layout)
    # and the layout is whole again: import + offline fetch on a fresh machine
    fresh = tmp_path / "fresh-cache"
    assert_ok(tf_main("--cache-dir", fresh, "import", layout))
    assert_ok(tf_main("--cache-dir", fresh, "fetch", "--offline", "--all-platforms",
                      "--lockfile", example))
    check_cache_layout(fresh)


def test_an_intact_blob_is_reused_not_rewritten(example: Path, tmp_path: Path) -> None:
    cache, layout = tmp_path / "cache", tmp_path / "layout"
    _export(example, layout, cache)
    blobs = {p.name: p.stat().st_ino for p in _blobs_dir(layout).iterdir()}
    _export(example, layout, cache)
    assert {p.name: p.stat().st_ino for p in _blobs_dir(layout).iterdir()} == blobs


def test_an_unreadable_blob_in_the_layout_is_exit_8_naming_it(example: Path,
                                                               tmp_path: Path) -> None:
    cache, layout = tmp_path / "cache", tmp_path / "layout"
    _export(example, layout, cache)
    layer, _ = _pinned(example)
    blob = _blobs_dir(layout) / layer
    blob.unlink()
    blob.symlink_to(blob.name)  # a loop: open() fails with ELOOP, as EACCES or EIO would
    r = tf_main("--cache-dir", cache, "export", layout, "--lockfile", example,
                "--all-platforms")
    assert_error(r, 8, f"sha256:{layer}")


# `export` killed mid-blob: its layout writes go as usual until half a blob is written.
_KILLED_EXPORT = """
import os, sys
from toolfetch import cli
from toolfetch.oci.layout import LayoutSource
put_stream = LayoutSource.put_stream
def dying(self, digest, write):
    def half(f):
        f.write(b"half a blob")
        f.flush()
        os._exit(9)
    put_stream(self, digest, half)
LayoutSource.put_stream = dying
sys.exit(cli.main(sys.argv[1:]))
"""


def test_a_killed_exports_temp_files_are_removed_by_the_next(example: Path,
                                                             tmp_path: Path) -> None:
    cache, layout = tmp_path / "cache", tmp_path / "layout"
    _export(example, layout, cache)
    layer, _ = _pinned(example)
    blobs = _blobs_dir(layout)
    (blobs / layer).unlink()  # the blob it will be writing when it is killed
    p = subprocess.run([sys.executable, "-c", _KILLED_EXPORT, "--cache-dir", str(cache),
                        "export", str(layout), "--lockfile", str(example), "--all-platforms"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 9, p.stderr
    (dead,) = (blobs / n for n in os.listdir(blobs) if n.startswith("."))
    assert dead.read_bytes() == b"half a blob"
    # untouched past the grace a writer that only looks gone (another pid namespace) gets
    past = time.time() - oci_layout.WRITER_GRACE - 60
    os.utime(dead, (past, past))
    # one of a live writer (this test) stays
    live = oci_layout.temp_path(blobs / layer)
    live.write_bytes(b"still being written")
    # an older toolfetch's mkstemp temp: removed once untouched for the grace period
    old, recent = blobs / f".{layer}.abc_1234", blobs / f".{layer}.xyz_9876"
    for t in (old, recent):
        t.write_bytes(b"partial")
    aged = time.time() - oci_layout.LEGACY_TEMP_GRACE - 60
    os.utime(old, (aged, aged))
    # import reads only what index.json reaches: the temp files are not blobs to it
    imported = tmp_path / "imported"
    assert_ok(tf_main("--cache-dir", imported, "import", layout))
    assert {f"sha256:{layer}"} & set(cache_blobs(imported)) == set()  # absent in the layout
    _export(example, layout, cache)
    assert not dead.exists() and not old.exists()
    assert live.exists() and recent.exists()
    assert (blobs / layer).is_file()
    _intact(layout)
    live.unlink()
    recent.unlink()
    assert [n for n in os.listdir(blobs) if n.startswith(".")] == []
