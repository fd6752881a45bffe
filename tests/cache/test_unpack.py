"""Tests for toolfetch.cache.unpack: happy paths, and one hostile archive per rule (format
detection and safe names: tests/oci/test_formats.py)."""

from __future__ import annotations

import gzip
import io
import os
import re
import shutil
import stat
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from toolfetch.cache.records import TreeFile
from toolfetch.cache.trees import make_read_only, tree_digest
from toolfetch.cache.unpack import DEFAULT_MAX_UNPACKED, max_unpack_bytes, unpack_layer
from toolfetch.core.errors import IntegrityError, UsageError
from toolfetch.core.fs import make_writable

WHAT = "layer sha256:abcdef012345 (t.tar) of tool t"
Member = tuple[tarfile.TarInfo, bytes]
ZEntry = tuple[zipfile.ZipInfo, bytes]


def m(name: str, data: bytes = b"", *, kind: bytes = tarfile.REGTYPE, mode: int = 0o644,
      link: str = "", pax: dict[str, str] | None = None) -> Member:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname = kind, mode, link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    if pax:
        info.pax_headers = pax
    return info, data


def make_tar(*members: Member, mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode, format=tarfile.PAX_FORMAT) as tf:  # type: ignore[call-overload]
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def zentry(name: str, data: bytes = b"", st_mode: int | None = None) -> ZEntry:
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    if st_mode is not None:
        info.create_system = 3
        info.external_attr = st_mode << 16
    return info, data


def make_zip(*entries: ZEntry) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for info, data in entries:
            zf.writestr(info, data)
    return buf.getvalue()


@pytest.fixture(autouse=True)
def no_data_filter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every verdict here is toolfetch's own: a ``tarfile.data_filter`` that refuses
    everything (as 3.10.12 and 3.11.4 wrongly refuse some valid links) changes nothing."""
    def refuse(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
        raise tarfile.FilterError(f"refused {member.name} (simulated buggy data_filter)")

    monkeypatch.setattr(tarfile, "data_filter", refuse, raising=False)


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    d = tmp_path / "tmp" / "unpack"
    d.mkdir(parents=True)
    return d


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    d = tmp_path / "outside"
    d.mkdir()
    return d


def unpack(dest: Path, data: bytes, fmt: str = "tar", **kw: object) -> None:
    blob = dest.parent / f"blob{len(list(dest.parent.iterdir()))}"
    blob.write_bytes(data)
    kw.setdefault("title", None)
    unpack_layer(blob, fmt, dest, what=WHAT, **kw)  # type: ignore[arg-type]


def refused(dest: Path, data: bytes, member: str, fmt: str = "tar", **kw: object) -> str:
    with pytest.raises(IntegrityError) as exc:
        unpack(dest, data, fmt, **kw)
    msg = str(exc.value)
    assert WHAT in msg and repr(member) in msg, msg
    return msg


# ---------------------------------------------------------------- happy paths

def mode_of(p: Path) -> int:
    return stat.S_IMODE(p.lstat().st_mode)


def test_tar_gz_tree(dest: Path) -> None:
    data = make_tar(m("./", kind=tarfile.DIRTYPE, mode=0o700),
                    m("bin/", kind=tarfile.DIRTYPE), m("bin/tool", b"#!/bin/sh\n", mode=0o755),
                    m("share/doc/a/b.txt", b"nested", mode=0o600),
                    m("bin/alias", kind=tarfile.SYMTYPE, link="tool"),
                    m("lib/docs", kind=tarfile.SYMTYPE, link="../share/./doc"),
                    m("bin/tool2", kind=tarfile.LNKTYPE, link="./bin/tool"), mode="w:gz")
    unpack(dest, data, "tar+gzip")
    assert (dest / "bin/tool").read_bytes() == b"#!/bin/sh\n"
    assert mode_of(dest / "bin/tool") == 0o555
    assert mode_of(dest / "share/doc/a/b.txt") == 0o444
    assert mode_of(dest / "share/doc/a") == 0o755 and mode_of(dest) == 0o755
    assert os.readlink(dest / "bin/alias") == "tool"
    assert (dest / "lib/docs/a/b.txt").read_bytes() == b"nested"
    assert (dest / "bin/tool2").stat().st_ino == (dest / "bin/tool").stat().st_ino


def test_special_bits_stripped(dest: Path) -> None:
    unpack(dest, make_tar(m("suid", b"x", mode=0o4755), m("sgid", b"x", mode=0o2644),
                          m("sticky", kind=tarfile.DIRTYPE, mode=0o1777),
                          m("gx", b"x", mode=0o610)))
    assert mode_of(dest / "suid") == 0o555 and mode_of(dest / "sgid") == 0o444
    assert mode_of(dest / "sticky") == 0o755 and mode_of(dest / "gx") == 0o555


def test_zip_exec_bits_and_symlink(dest: Path) -> None:
    data = make_zip(zentry("./"), zentry("bin/", st_mode=stat.S_IFDIR | 0o755),
                    zentry("bin/tool", b"exe", st_mode=stat.S_IFREG | 0o755),
                    zentry("README", b"doc", st_mode=stat.S_IFREG | 0o644),
                    zentry("bin/link", b"tool", st_mode=stat.S_IFLNK | 0o777),
                    zentry("win.exe", b"MZ"))
    unpack(dest, data, "zip")
    assert mode_of(dest / "bin/tool") == 0o555 and mode_of(dest / "README") == 0o444
    assert os.readlink(dest / "bin/link") == "tool"
    # No unix attributes: not executable, whichever tool names it (a tree never depends on
    # who asked for it).
    assert mode_of(dest / "win.exe") == 0o444


def test_zstd(dest: Path) -> None:
    zstandard = pytest.importorskip("zstandard")
    data = zstandard.ZstdCompressor().compress(make_tar(m("bin/tool", b"z", mode=0o755)))
    unpack(dest, data, "tar+zstd")
    assert (dest / "bin/tool").read_bytes() == b"z"


def test_zstd_missing_is_a_usage_error(dest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "zstandard", None)
    monkeypatch.setitem(sys.modules, "compression", None)  # Python 3.14's compression.zstd
    with pytest.raises(UsageError, match="zstandard"):
        unpack(dest, b"\x28\xb5\x2f\xfd", "tar+zstd")


def test_raw_is_a_hardlink(dest: Path, tmp_path: Path) -> None:
    blob = tmp_path / "blob"
    blob.write_bytes(b"\x7fELF")
    blob.chmod(0o444)
    unpack_layer(blob, "raw", dest, title="bin/protoc", what=WHAT)
    placed = dest / "bin/protoc"
    assert placed.stat().st_ino == blob.stat().st_ino and mode_of(placed) == 0o555
    # Every raw placement is 0o555, so a second tree shares the inode without changing it.
    other = tmp_path / "tmp" / "other"
    other.mkdir()
    unpack_layer(blob, "raw", other, title="protoc", what=WHAT)
    assert mode_of(other / "protoc") == 0o555 and mode_of(placed) == 0o555
    assert (other / "protoc").stat().st_ino == blob.stat().st_ino
    assert (other / "protoc").read_bytes() == b"\x7fELF"


def test_raw_is_copied_where_the_file_system_refuses_the_link(
        dest: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import hashlib
    import os

    blob = tmp_path / "blob"
    blob.write_bytes(b"\x7fELF")
    blob.chmod(0o444)

    def no_link(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    known: dict[str, tuple[int, str]] = {}
    unpack_layer(blob, "raw", dest, title="bin/protoc", what=WHAT, known=known,
                 digest="sha256:" + hashlib.sha256(b"\x7fELF").hexdigest())
    placed = dest / "bin/protoc"
    assert placed.stat().st_ino != blob.stat().st_ino and mode_of(placed) == 0o555
    assert placed.read_bytes() == b"\x7fELF" and mode_of(blob) == 0o444
    assert known["bin/protoc"] == (placed.stat().st_ino,
                                   "sha256:" + hashlib.sha256(b"\x7fELF").hexdigest())


def test_raw_needs_title(dest: Path) -> None:
    with pytest.raises(UsageError, match="title"):
        unpack(dest, b"x", "raw")
    with pytest.raises(UsageError, match=r"invalid title '\.\./x'"):
        unpack(dest, b"x", "raw", title="../x")


def test_layers_overwrite_in_order(dest: Path) -> None:
    unpack(dest, make_tar(m("tool", b"v1"), m("keep", b"k"), m("ln", kind=tarfile.SYMTYPE,
                                                              link="keep")))
    unpack(dest, make_tar(m("tool", b"v2", mode=0o755), m("ln", b"file now")))
    assert (dest / "tool").read_bytes() == b"v2" and mode_of(dest / "tool") == 0o555
    assert (dest / "ln").read_bytes() == b"file now" and (dest / "keep").read_bytes() == b"k"


def test_duplicate_regular_file_later_wins(dest: Path) -> None:
    unpack(dest, make_tar(m("f", b"old"), m("f", b"new")))
    assert (dest / "f").read_bytes() == b"new"


# ---------------------------------------------------------------- hostile archives

@pytest.mark.parametrize("name", ["/abs/evil", "../evil", "a/../../evil", "a/..", "a\\..\\evil",
                                  "C:/evil"])
def test_tar_bad_names(dest: Path, outside: Path, name: str) -> None:
    refused(dest, make_tar(m(name, b"x")), name)
    assert not list(outside.iterdir())


@pytest.mark.parametrize(("name", "target"), [
    ("abs", "/etc/passwd"),  # absolute target
    ("a/l", "../../outside"),  # climbs out
    ("l", ".."),
    ("c", "a/b/.."),  # '..' after a name: would climb out through a/b -> ..
    ("d", "C:/x"),
    ("e", ""),
])
def test_tar_symlink_escapes(dest: Path, name: str, target: str) -> None:
    refused(dest, make_tar(m("a/", kind=tarfile.DIRTYPE),
                           m("a/b", kind=tarfile.SYMTYPE, link=".."),
                           m(name, kind=tarfile.SYMTYPE, link=target)), name)


@pytest.mark.parametrize("target", ["/etc/passwd", "../outside/x", "later", "sym", "dir"])
def test_tar_hardlink_refused(dest: Path, target: str) -> None:
    refused(dest, make_tar(m("sym", kind=tarfile.SYMTYPE, link="dir"),
                           m("dir", kind=tarfile.DIRTYPE),
                           m("hl", kind=tarfile.LNKTYPE, link=target), m("later", b"x")), "hl")


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE])
def test_tar_device_and_fifo_refused(dest: Path, kind: bytes) -> None:
    msg = refused(dest, make_tar(m("dev", kind=kind)), "dev")
    assert "device" in msg and not (dest / "dev").exists()


@pytest.mark.parametrize("link", [".", "sub"])
def test_tar_write_through_symlink_in_tree(dest: Path, link: str) -> None:
    msg = refused(dest, make_tar(m("sub/", kind=tarfile.DIRTYPE),
                                 m("a", kind=tarfile.SYMTYPE, link=link), m("a/evil", b"x")),
                  "a/evil")
    assert "symlink" in msg and not (dest / "evil").exists() and not (dest / "sub/evil").exists()


def test_tar_symlink_to_outside_dir_then_member(dest: Path, outside: Path) -> None:
    rel = os.path.relpath(outside, dest)
    refused(dest, make_tar(m("d", kind=tarfile.SYMTYPE, link=rel), m("d/evil", b"x")), "d")
    refused(dest, make_tar(m("d", kind=tarfile.SYMTYPE, link=str(outside)),
                           m("d/evil", b"x")), "d")
    assert not list(outside.iterdir())


def test_planted_symlink_is_never_followed(dest: Path, outside: Path) -> None:
    (dest / "d").symlink_to(outside)  # as if an earlier stage had left it
    refused(dest, make_tar(m("d/evil", b"x")), "d/evil")
    (outside / "target").write_bytes(b"precious")
    (dest / "tool").symlink_to(outside / "target")
    unpack(dest, make_tar(m("tool", b"replaced")))  # replaces the symlink, never writes through
    assert (dest / "tool").read_bytes() == b"replaced" and not (dest / "tool").is_symlink()
    assert (outside / "target").read_bytes() == b"precious"
    assert list(outside.iterdir()) == [outside / "target"]


def test_later_layer_cannot_write_through_earlier_symlink(dest: Path) -> None:
    unpack(dest, make_tar(m("sub/", kind=tarfile.DIRTYPE), m("d", kind=tarfile.SYMTYPE,
                                                             link="sub")))
    refused(dest, make_tar(m("d/evil", b"x")), "d/evil")
    assert not (dest / "sub/evil").exists()


@pytest.mark.parametrize(("first", "second", "why"), [
    (m("x", kind=tarfile.SYMTYPE, link="y"), m("x", b"through?"),
     "duplicate member (a file after a symlink)"),
    (m("x", b"file"), m("x", kind=tarfile.SYMTYPE, link="y"),
     "duplicate member (a symlink after a file)"),
    (m("x", kind=tarfile.DIRTYPE), m("x", b"file"), "duplicate member (a file after a dir)"),
    (m("x", b"file"), m("x", kind=tarfile.DIRTYPE), "duplicate member (a dir after a file)"),
    (m("x/f", b"implicit dir"), m("x", b"file"), "would replace a directory"),
])
def test_tar_duplicates_refused(dest: Path, first: Member, second: Member, why: str) -> None:
    msg = refused(dest, make_tar(m("y", b"target"), first, second), "x")
    assert msg.endswith(f"unsafe member 'x': {why}"), msg
    assert (dest / "y").read_bytes() == b"target"


@pytest.mark.parametrize(("name", "st_mode"), [
    ("/abs/evil", stat.S_IFREG | 0o644), ("../evil", stat.S_IFREG | 0o644),
    ("a/../../evil", None), ("fifo", stat.S_IFIFO | 0o644), ("chr", stat.S_IFCHR | 0o644),
])
def test_zip_bad_entries(dest: Path, outside: Path, name: str, st_mode: int | None) -> None:
    refused(dest, make_zip(zentry(name, b"x", st_mode)), name, "zip")
    assert not list(outside.iterdir())


@pytest.mark.parametrize("target", ["/etc", "../outside", "x/../..", "a" * 5000])
def test_zip_symlink_escapes(dest: Path, target: str) -> None:
    refused(dest, make_zip(zentry("l", target.encode(), stat.S_IFLNK | 0o777)), "l", "zip")


def test_zip_write_through_symlink(dest: Path) -> None:
    data = make_zip(zentry("sub/", st_mode=stat.S_IFDIR | 0o755),
                    zentry("l", b"sub", stat.S_IFLNK | 0o777), zentry("l/evil", b"x"))
    refused(dest, data, "l/evil", "zip")
    assert not (dest / "sub/evil").exists()


def test_tar_gz_bomb(dest: Path) -> None:
    data = make_tar(m("zeros", b"\0" * (64 << 20)), mode="w:gz")
    start = time.monotonic()
    msg = refused(dest, data, "zeros", "tar+gzip", max_bytes=1 << 20)
    assert "limit" in msg and time.monotonic() - start < 5
    assert not (dest / "zeros").exists()


def test_bomb_spread_over_members(dest: Path) -> None:
    data = make_tar(*(m(f"f{i}", b"\0" * 300_000) for i in range(5)), mode="w:gz")
    refused(dest, data, "f3", "tar+gzip", max_bytes=1 << 20)
    assert sum(p.stat().st_size for p in dest.iterdir()) <= 1 << 20


def _understated(data: bytes, size: int) -> bytes:
    """A one-entry zip whose headers (local and central) claim ``size`` uncompressed bytes."""
    out = bytearray(data)
    assert out[:4] == b"PK\x03\x04"
    out[22:26] = size.to_bytes(4, "little")
    central = out.index(b"PK\x01\x02")
    out[central + 24:central + 28] = size.to_bytes(4, "little")
    return bytes(out)


@pytest.mark.parametrize(("claimed", "why"), [
    (None, "unpacked size exceeds the limit of 1048576 bytes"),
    (100, "corrupt data: Bad CRC-32"),  # zipfile stops at the size claimed, then checks
], ids=["honest-size", "understated-size"])
def test_zip_bomb(dest: Path, claimed: int | None, why: str) -> None:
    """As the tar bomb: refused, and nothing of the member is left, also when the zip's
    headers understate its size (the member is then refused after part of it was written)."""
    data = make_zip(zentry("zeros", b"\0" * (64 << 20)))
    if claimed is not None:
        data = _understated(data, claimed)
    assert why in refused(dest, data, "zeros", "zip", max_bytes=1 << 20)
    assert not (dest / "zeros").exists()


def test_pax_header_bomb(dest: Path) -> None:
    data = make_tar(m("f", b"x", pax={"comment": "x" * (2 << 20)}), mode="w:gz")
    refused(dest, data, "././@PaxHeader", "tar+gzip")


def test_limit_from_environment(dest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert max_unpack_bytes() == DEFAULT_MAX_UNPACKED
    monkeypatch.setenv("TOOLFETCH_MAX_UNPACK_BYTES", "1K")
    assert max_unpack_bytes() == 1024
    refused(dest, make_tar(m("big", b"x" * 2000)), "big")
    monkeypatch.setenv("TOOLFETCH_MAX_UNPACK_BYTES", "lots")
    with pytest.raises(UsageError, match="TOOLFETCH_MAX_UNPACK_BYTES"):
        max_unpack_bytes()


def damaged_deflate_zip() -> bytes:
    """A zip whose deflate stream is damaged: zlib itself raises while reading it."""
    import random
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("f", bytes(random.Random(1).choice(b"abcdefgh") for _ in range(200000)))
    data = bytearray(buf.getvalue())
    for i in range(40, 80):  # the start of the deflate stream, just past the local header
        data[i] ^= 0xFF
    return bytes(data)


@pytest.mark.parametrize(("fmt", "data"), [
    ("tar+gzip", gzip.compress(make_tar(m("f", b"x" * 10000)))[:-20]),
    ("zip", damaged_deflate_zip()),
    ("tar+gzip", b"\x1f\x8bnot really"),
    ("tar", b"garbage" * 200),
    ("zip", b"PK\x03\x04garbage"),
])
def test_corrupt_archives(dest: Path, fmt: str, data: bytes) -> None:
    with pytest.raises(IntegrityError, match=re.escape(WHAT)):
        unpack(dest, data, fmt)


def test_unknown_format(dest: Path) -> None:
    with pytest.raises(UsageError, match="unknown unpack format"):
        unpack(dest, b"", "rar")


# ---------------------------------------------------------------- tree digest, modes

def sample_tree(dest: Path) -> Path:
    unpack(dest, make_tar(m("bin/tool", b"exe", mode=0o755), m("doc/a.txt", b"a"),
                          m("empty/", kind=tarfile.DIRTYPE),
                          m("bin/t", kind=tarfile.SYMTYPE, link="tool")), "tar")
    return dest


def test_tree_digest_stable_and_sensitive(tmp_path: Path) -> None:
    one, two = tmp_path / "tmp/one", tmp_path / "tmp/two"
    one.mkdir(parents=True)
    two.mkdir()
    digest, files = tree_digest(sample_tree(one))
    assert digest.startswith("sha256:") and tree_digest(sample_tree(two))[0] == digest
    assert TreeFile("bin/tool", "file", 0o555, size=3, digest="sha256:" + __import__(
        "hashlib").sha256(b"exe").hexdigest()) in files
    assert TreeFile("bin/t", "symlink", 0o777, target="tool") in files
    assert [f.path for f in files] == sorted(f.path for f in files)
    make_read_only(one)
    assert tree_digest(one)[0] == digest  # directory modes are not part of the digest
    make_writable(one)
    (one / "doc/a.txt").chmod(0o644)
    (one / "doc/a.txt").write_bytes(b"b")
    (one / "doc/a.txt").chmod(0o444)
    assert tree_digest(one)[0] != digest
    (two / "doc/a.txt").chmod(0o555)
    assert tree_digest(two)[0] != digest


def test_make_read_only_and_writable(dest: Path) -> None:
    sample_tree(dest)
    (dest / "doc/a.txt").chmod(0o640)
    make_read_only(dest)
    assert mode_of(dest) == 0o555 and mode_of(dest / "bin") == 0o555
    assert mode_of(dest / "bin/tool") == 0o555 and mode_of(dest / "doc/a.txt") == 0o444
    make_writable(dest)
    assert mode_of(dest) == 0o755 and mode_of(dest / "empty") == 0o755
    assert mode_of(dest / "doc/a.txt") == 0o444
    shutil.rmtree(dest)
    make_writable(dest)  # a missing tree is fine


def test_unpacking_records_digests_so_the_tree_digest_reads_nothing_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every file written (tar, zip, hardlinked raw, later layers replacing earlier files) is
    hashed while written; the tree digest then equals a full re-read without opening a file."""
    import hashlib

    import toolfetch.cache.trees as trees

    tree = tmp_path / "tmp/tree"
    tree.mkdir(parents=True)
    known: dict[str, tuple[int, str]] = {}
    raw = tmp_path / "rawblob"
    raw.write_bytes(b"\x7fELF raw")
    raw.chmod(0o444)
    raw_digest = "sha256:" + hashlib.sha256(b"\x7fELF raw").hexdigest()
    unpack_layer(raw, "raw", tree, title="bin/raw", what=WHAT, known=known, digest=raw_digest)
    unpack(tree, make_tar(m("bin/tool", b"v1", mode=0o755), m("doc/a.txt", b"a"),
                          m("doc/link", kind=tarfile.LNKTYPE, link="doc/a.txt")), known=known)
    # a later layer replaces bin/tool and turns doc/a.txt into a symlink
    unpack(tree, make_tar(m("bin/tool", b"v2", mode=0o755),
                          m("doc/a.txt", kind=tarfile.SYMTYPE, link="link")), known=known)
    unpack(tree, make_zip(zentry("z/in-zip", b"zipped")), "zip", known=known)
    assert set(known) == {"bin/raw", "bin/tool", "doc/link", "z/in-zip"}
    full = tree_digest(tree)
    monkeypatch.setattr(trees.Digest, "of_file", lambda path: pytest.fail(f"re-read {path}"))
    assert tree_digest(tree, known) == full
    files = {f.path: f for f in full[1]}
    assert files["bin/tool"].digest == "sha256:" + hashlib.sha256(b"v2").hexdigest()
    assert files["doc/link"].digest == "sha256:" + hashlib.sha256(b"a").hexdigest()
    assert files["bin/raw"].digest == raw_digest


def test_a_recorded_digest_whose_inode_changed_is_not_trusted(tmp_path: Path) -> None:
    tree = tmp_path / "tmp/tree"
    tree.mkdir(parents=True)
    known: dict[str, tuple[int, str]] = {}
    unpack(tree, make_tar(m("f", b"original")), known=known)
    os.link(tree / "f", tmp_path / "keep")  # the old inode stays allocated: no reuse
    (tree / "f").unlink()
    (tree / "f").write_bytes(b"swapped behind the unpacker's back")
    assert tree_digest(tree, known) == tree_digest(tree)


def test_a_link_up_and_over_unpacks_on_every_python(dest: Path) -> None:
    """CPython gh-107845: tarfile.data_filter of 3.10.12 and 3.11.4 refuses ``dir/link ->
    ../x`` although it stays inside. The autouse fixture makes data_filter refuse everything;
    the verdict here is toolfetch's own, so the tree is the same on every interpreter."""
    unpack(dest, make_tar(m("x", b"target"), m("dir/", kind=tarfile.DIRTYPE),
                          m("dir/link", kind=tarfile.SYMTYPE, link="../x"),
                          m("dir/sub/", kind=tarfile.DIRTYPE),
                          m("dir/sub/up", kind=tarfile.SYMTYPE, link="../../x")))
    assert os.readlink(dest / "dir/link") == "../x"
    assert (dest / "dir/link").read_bytes() == b"target"
    assert (dest / "dir/sub/up").read_bytes() == b"target"
    refused(dest, make_tar(m("dir/out", kind=tarfile.SYMTYPE, link="../../x")), "dir/out")
