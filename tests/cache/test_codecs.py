"""Issue 23: tar.xz, tar.bz2 and single compressed files (gzip, zstd, xz, bzip2) unpack with
every safety rule tar+gzip has: traversal and links refused, bombs stopped at the cap (a
`.xz` that inflates past it included), truncated or corrupt streams refused (exit 3), nothing
written past the cap. Each hostile case is one line of a table."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard

from toolfetch.cache.unpack import archive_members, unpack_layer
from toolfetch.core.errors import IntegrityError
from toolfetch.oci.formats import FORMATS, Codec, Container

WHAT = "layer sha256:0123456789ab (t) of tool t"
COMPRESS: dict[Codec, Callable[[bytes], bytes]] = {
    Codec.NONE: lambda b: b,
    Codec.GZIP: gzip.compress,
    # the zstd command line's defaults: a checksum and the content size in every frame
    Codec.ZSTD: lambda b: zstandard.ZstdCompressor(write_checksum=True).compress(b),
    Codec.XZ: lzma.compress,
    Codec.BZIP2: bz2.compress,
}
TARS = [f for f in FORMATS.values() if f.container is Container.TAR]
SINGLES = [f for f in FORMATS.values() if f.container is Container.FILE and f.codec is not
           Codec.NONE]


def tar(*members: tuple[str, bytes, bytes, str]) -> bytes:
    """(name, data, type, linkname) members."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data, kind, link in members:
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.mode = kind, link, 0o755
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            tf.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    return buf.getvalue()


def unpack(tmp_path: Path, data: bytes, fmt: str, title: str | None = None,
           max_bytes: int | None = None) -> Path:
    dest = tmp_path / "dest"
    dest.mkdir(exist_ok=True)
    blob = tmp_path / "blob"
    blob.write_bytes(data)
    unpack_layer(blob, fmt, dest, title=title, what=WHAT, max_bytes=max_bytes)
    return dest


@pytest.mark.parametrize("fmt", TARS, ids=str)
def test_every_tar_codec_unpacks(tmp_path: Path, fmt: object) -> None:
    f = FORMATS[str(fmt)]
    data = COMPRESS[f.codec](tar(("bin/tool", b"#!/bin/sh\n", tarfile.REGTYPE, ""),
                                 ("bin/alias", b"", tarfile.SYMTYPE, "tool")))
    dest = unpack(tmp_path, data, f.name)
    assert (dest / "bin/tool").read_bytes() == b"#!/bin/sh\n"
    assert (dest / "bin/alias").readlink() == Path("tool")
    assert archive_members(tmp_path / "blob", f, WHAT) == {"bin/tool", "bin/alias"}


@pytest.mark.parametrize("fmt", SINGLES, ids=str)
def test_single_compressed_files_are_decompressed_under_their_title(
        tmp_path: Path, fmt: object) -> None:
    f = FORMATS[str(fmt)]
    payload = b"\x7fELF a real program" * 1000
    dest = unpack(tmp_path, COMPRESS[f.codec](payload), f.name, title="bin/buck2")
    assert (dest / "bin/buck2").read_bytes() == payload
    assert (dest / "bin/buck2").stat().st_mode & 0o777 == 0o555  # as a raw file


def test_multi_frame_streams_are_read_whole(tmp_path: Path) -> None:
    """As the command-line tools: every gzip member and zstd frame, and xz stream padding."""
    dest = unpack(tmp_path, gzip.compress(b"a") + gzip.compress(b"b"), "gzip", title="t")
    assert (dest / "t").read_bytes() == b"ab"
    zst = zstandard.ZstdCompressor()
    (tmp_path / "dest" / "t").unlink()
    dest = unpack(tmp_path, zst.compress(b"c") + zst.compress(b"d"), "zstd", title="t")
    assert (dest / "t").read_bytes() == b"cd"
    (tmp_path / "dest" / "t").unlink()
    dest = unpack(tmp_path, lzma.compress(b"e") + b"\0" * 8, "xz", title="t")
    assert (dest / "t").read_bytes() == b"e"


HOSTILE_MEMBERS = [
    ("../evil", b"x", tarfile.REGTYPE, ""),
    ("/abs/evil", b"x", tarfile.REGTYPE, ""),
    ("link", b"", tarfile.SYMTYPE, "../../outside"),
    ("hard", b"", tarfile.LNKTYPE, "/etc/passwd"),
    ("dev", b"", tarfile.CHRTYPE, ""),
]


@pytest.mark.parametrize("fmt", TARS, ids=str)
@pytest.mark.parametrize("member", HOSTILE_MEMBERS, ids=lambda m: m[0])
def test_hostile_members_are_refused_in_every_tar_codec(
        tmp_path: Path, fmt: object, member: tuple[str, bytes, bytes, str]) -> None:
    f = FORMATS[str(fmt)]
    with pytest.raises(IntegrityError, match="unsafe member"):
        unpack(tmp_path, COMPRESS[f.codec](tar(member)), f.name)
    assert not (tmp_path / "evil").exists() and not (tmp_path / "outside").exists()


@pytest.mark.parametrize("fmt", TARS + SINGLES, ids=str)
def test_bombs_stop_at_the_cap(tmp_path: Path, fmt: object) -> None:
    """64 MiB of zeros compress to a few KiB; with a 1 MiB cap the layer is refused and
    nothing of the file stays (single files stream, so they are stopped while written)."""
    f = FORMATS[str(fmt)]
    zeros = b"\0" * (64 << 20)
    inner = zeros if f.container is Container.FILE else tar(("zeros", zeros, tarfile.REGTYPE,
                                                             ""))
    data = COMPRESS[f.codec](inner)
    assert len(data) < 4 << 20 or f.codec is Codec.NONE
    with pytest.raises(IntegrityError, match=r"limit|exceeds"):
        unpack(tmp_path, data, f.name, title="zeros", max_bytes=1 << 20)
    assert not (tmp_path / "dest" / "zeros").exists()  # nothing partial, as the tar bomb


@pytest.mark.parametrize("fmt", [f for f in TARS + SINGLES if f.codec is not Codec.NONE],
                         ids=str)
@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_truncated_or_corrupt_streams_are_refused(tmp_path: Path, fmt: object,
                                                  damage: str) -> None:
    f = FORMATS[str(fmt)]
    payload = bytes(range(256)) * 4000
    inner = payload if f.container is Container.FILE else tar(("t", payload, tarfile.REGTYPE,
                                                               ""))
    data = COMPRESS[f.codec](inner)
    if damage == "truncated":
        data = data[: len(data) // 2]
    else:
        middle = len(data) // 2
        data = data[:middle] + bytes(b ^ 0xFF for b in data[middle:middle + 64]) + \
            data[middle + 64:]
    with pytest.raises(IntegrityError):
        unpack(tmp_path, data, f.name, title="t")
