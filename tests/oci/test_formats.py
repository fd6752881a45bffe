"""Tests for toolfetch.oci.formats: the one table of layer formats (and the copies derived
from it), how a layer's format is chosen, and safe names."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile

import pytest
import zstandard

from toolfetch.core.errors import UsageError
from toolfetch.core.treekey import ARCHIVE_FORMATS, recipe
from toolfetch.oci.formats import (
    FORMATS,
    SPELLINGS,
    UNPACK_FORMATS,
    check_title,
    detect_format,
)


def _ustar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("a")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    return buf.getvalue()[:512]


USTAR = _ustar()
# Real heads: a compressed tar (the codec's magic, then a ustar header inside), a plain
# compressed file (magic, no tar inside), a zip.
GZ, ZST = gzip.compress(USTAR)[:300], zstandard.ZstdCompressor().compress(USTAR)
XZ, BZ2 = lzma.compress(USTAR), bz2.compress(USTAR)
GZ_FILE, ZIP = gzip.compress(b"\x7fELF plain program"), b"PK\x03\x04\x14"


@pytest.mark.parametrize(("media_type", "title", "head", "fmt"), [
    ("application/vnd.oci.image.layer.v1.tar+gzip", None, b"", "tar+gzip"),
    ("application/vnd.docker.image.rootfs.diff.tar.gzip", None, b"", "tar+gzip"),
    ("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", "x", b"", "tar+gzip"),
    ("application/vnd.oci.image.layer.v1.tar+zstd", None, b"", "tar+zstd"),
    ("application/zip", "tool", b"", "zip"),
    ("application/vnd.docker.image.rootfs.diff.tar", None, b"", "tar"),
    ("application/x-tar", "tool", b"", "tar"),
    ("application/vnd.oci.image.layer.v1.tar", None, b"", "tar"),  # ORAS default, no title
    ("application/vnd.oci.image.layer.v1.tar", "protoc", b"\x7fELF", "raw"),  # ORAS file
    ("application/vnd.oci.image.layer.v1.tar", "protoc.tar.gz", GZ, "tar+gzip"),
    ("application/vnd.oci.image.layer.v1.tar", "bundle", USTAR, "tar"),
    ("application/octet-stream", "a.tar", b"", "tar"),
    ("application/octet-stream", "a.tar.gz", b"", "tar+gzip"),
    ("application/octet-stream", "A.TGZ", b"", "tar+gzip"),
    ("application/octet-stream", "a.tar.zst", b"", "tar+zstd"),
    ("application/octet-stream", "a.tzst", b"", "tar+zstd"),
    ("application/octet-stream", "a.zip", b"", "zip"),
    ("application/octet-stream", "a.tar.xz", b"", "tar+xz"),
    ("application/octet-stream", "a.TXZ", b"", "tar+xz"),
    ("application/octet-stream", "a.tar.bz2", b"", "tar+bzip2"),
    ("application/octet-stream", "a.tbz", b"", "tar+bzip2"),
    ("application/x-xz-compressed-tar", "x", b"", "tar+xz"),
    ("application/octet-stream", "blob", GZ, "tar+gzip"),
    ("application/octet-stream", "blob", ZST, "tar+zstd"),
    ("application/octet-stream", "blob", XZ, "tar+xz"),
    ("application/octet-stream", "blob", BZ2, "tar+bzip2"),
    ("application/octet-stream", "blob", ZIP, "zip"),
    ("application/octet-stream", None, USTAR, "tar"),
    ("application/vnd.acme.tool", "bin/tool", b"\x7fELF", "raw"),
    # Issue 24 #8: a titled plain file is never made an archive by its bytes or by a
    # compression suffix: a gzip file stays the gzip file, a jar stays a jar.
    ("application/octet-stream", "payload.gz", GZ, "raw"),
    ("application/octet-stream", "payload.gz", GZ_FILE, "raw"),
    ("application/gzip", "tool.gz", GZ_FILE, "raw"),
    ("application/octet-stream", "blob", GZ_FILE, "raw"),  # gzip, but no tar inside
    ("application/octet-stream", "app.jar", ZIP, "raw"),
    ("application/java-archive", "app.jar", ZIP, "raw"),
    ("application/vnd.oci.image.layer.v1.tar", "tool.xz", XZ, "raw"),
    ("application/octet-stream", "data.bin", USTAR, "raw"),
])
def test_detect_format(media_type: str, title: str | None, head: bytes, fmt: str) -> None:
    assert fmt in UNPACK_FORMATS
    assert detect_format(media_type, title, head).name == fmt


def test_detect_format_raw_needs_a_valid_title() -> None:
    assert detect_format("application/octet-stream", None, b"").name == "raw"  # nothing sniffed
    with pytest.raises(UsageError, match="invalid title"):
        detect_format("application/octet-stream", "../tool", b"\x7fELF")


@pytest.mark.parametrize(("title", "norm"), [("tool", "tool"), ("./bin//tool", "bin/tool"),
                                             ("a/./b", "a/b")])
def test_check_title_ok(title: str, norm: str) -> None:
    assert check_title(title) == norm


@pytest.mark.parametrize("title", ["/abs", "../x", "a/../b", "a\\b", "C:/x", "c:x", "a\x00b",
                                   "", ".", "dir/"])
def test_check_title_refused(title: str) -> None:
    with pytest.raises(UsageError, match="invalid title"):
        check_title(title)


def test_the_tables_agree() -> None:
    """The tree key's list of archives is the format table's; every spelling names a format;
    a single file's title is part of its tree key, an archive's is not."""
    assert {n for n, f in FORMATS.items() if f.is_archive} == ARCHIVE_FORMATS
    assert set(SPELLINGS.values()) <= set(FORMATS)
    layer = {"digest": "sha256:" + "0" * 64, "mediaType": "x", "title": "t"}
    for name, f in FORMATS.items():
        step = recipe([{**layer, "unpack": name}])["layers"][0]
        assert (step[2] is None) == f.is_archive, name
