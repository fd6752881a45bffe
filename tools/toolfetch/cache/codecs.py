"""Decompressing a layer's bytes as a stream, for every :class:`~toolfetch.oci.formats.Codec`.

Every stream is read whole, as the command-line tools read it: all gzip members, all zstd
frames (skippable ones skipped), all xz streams with the null stream padding ``xz`` accepts,
all bzip2 streams. Output is produced in bounded reads (a bomb never costs more memory than
one read), and a stream that ends early or carries garbage raises from ``read`` (callers turn
it into exit 3): ``zstandard``'s reader ends quietly at a cut, so a zstd stream's frames are
walked first (:func:`check_zstd_frames`, headers only) and must end exactly at the end of
the blob.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import struct
from collections.abc import Callable
from typing import IO, cast

from toolfetch.core.digest import COPY_CHUNK as CHUNK
from toolfetch.core.errors import IntegrityError, UsageError
from toolfetch.oci.formats import Codec, zstd_backend

_ZSTD_MAGIC = 0xFD2FB528
_SKIPPABLE = range(0x184D2A50, 0x184D2A60)


def decompressing_reader(codec: Codec, raw: IO[bytes], what: str) -> Callable[[int], bytes]:
    """``read(n)`` of the decompressed stream; corrupt or cut data raises from ``read``."""
    if codec is Codec.NONE:
        return raw.read
    if codec is Codec.GZIP:
        return gzip.GzipFile(fileobj=raw, mode="rb").read
    if codec is Codec.XZ:
        return _XzStreams(raw).read
    if codec is Codec.BZIP2:
        return bz2.BZ2File(raw, mode="rb").read
    return _zstd_reader(raw, what)


class _XzStreams:
    """Concatenated xz streams with null stream padding between and after them (xz's file
    format, 2.2; :class:`lzma.LZMAFile` refuses the padding)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.decoder: lzma.LZMADecompressor | None = None
        self.pending = b""  # input not yet given to a decoder
        self.started = False

    def _fill(self) -> bool:
        chunk = self.raw.read(CHUNK)
        self.pending += chunk
        return bool(chunk)

    def read(self, size: int = -1) -> bytes:
        size = CHUNK if size is None or size < 0 else size
        while True:
            if self.decoder is None:
                while True:  # between streams: skip the padding, then a stream or the end
                    stripped = self.pending.lstrip(b"\0")
                    padding = len(self.pending) - len(stripped)
                    if stripped or not self._fill():
                        break
                if not stripped:
                    if padding % 4 or not self.started:
                        raise EOFError("xz stream padding is not a multiple of 4 bytes"
                                       if self.started else "no xz stream")
                    return b""
                if padding % 4:
                    raise lzma.LZMAError("xz stream padding is not a multiple of 4 bytes")
                self.decoder, self.pending, self.started = \
                    lzma.LZMADecompressor(lzma.FORMAT_XZ), stripped, True
            data, self.pending = self.pending, b""
            out = self.decoder.decompress(data, max_length=size)
            if self.decoder.eof:
                self.pending, self.decoder = self.decoder.unused_data, None
            elif not out and self.decoder.needs_input and not self._fill():
                raise EOFError("xz stream ended before its end marker")
            if out:
                return out


def check_zstd_frames(raw: IO[bytes], what: str) -> None:
    """Walk the zstd frames of ``raw`` (seekable, at 0) by their headers; EOFError when the
    last one is cut, ValueError for garbage. Leaves ``raw`` at 0."""
    def take(n: int) -> bytes:
        data = raw.read(n)
        if len(data) != n:
            raise EOFError("zstd stream ended inside a frame")
        return data

    frames = 0
    while head := raw.read(4):
        if len(head) < 4:
            raise ValueError("trailing bytes after the last zstd frame")
        (magic,) = struct.unpack("<I", head)
        if magic in _SKIPPABLE:
            (length,) = struct.unpack("<I", take(4))
            raw.seek(length, 1)
            take(0)
            continue
        if magic != _ZSTD_MAGIC:
            raise ValueError("not a zstd frame" + (" after the last one" if frames else ""))
        frames += 1
        (descriptor,) = take(1)
        single, checksum = descriptor & 0x20, descriptor & 0x04
        if descriptor & 0x08:
            raise ValueError("a zstd frame header sets a reserved bit")
        content = (1 if single else 0, 2, 4, 8)[descriptor >> 6]
        take((0 if single else 1) + (0, 1, 2, 4)[descriptor & 3] + content)
        last = False
        while not last:
            (header,) = struct.unpack("<I", take(3) + b"\0")
            last, kind, length = bool(header & 1), (header >> 1) & 3, header >> 3
            if kind == 3:
                raise ValueError("a zstd block of the reserved type")
            raw.seek(1 if kind == 1 else length, 1)
        end = raw.tell()
        if raw.seek(0, 2) < end:
            raise EOFError("zstd stream ended inside a frame")
        raw.seek(end)
        if checksum:
            take(4)
    if not frames:
        raise ValueError("no zstd frame")
    raw.seek(0)


def _zstd_reader(raw: IO[bytes], what: str) -> Callable[[int], bytes]:
    try:
        backend = zstd_backend()
    except ImportError as e:  # a dependency of toolfetch: only a broken install lacks it
        raise UsageError(f"{what}: zstd layers need the 'zstandard' package, a dependency "
                         "of toolfetch on this Python (pip install zstandard)") from e
    try:
        check_zstd_frames(raw, what)
    except (EOFError, ValueError, struct.error) as e:
        raise IntegrityError(f"{what}: corrupt or truncated archive: {e}") from e
    return cast(Callable[[int], bytes], backend.reader(raw).read)
