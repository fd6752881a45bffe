"""Reading archives as streams: a capped stream and guarded tar headers.

Shared by unpacking (:mod:`toolfetch.cache.unpack`) and by listing an archive's members
(``lock`` checking a tool's ``path``), so both read an archive through the same rules:

* :class:`Counted`, a read-only stream that caps what it yields and turns codec errors into
  an :class:`IntegrityError`;
* :class:`GuardedTarInfo`, which refuses oversized or malformed pax / GNU long-name headers
  (tarfile reads them into memory) and makes a corrupt header an error rather than the end of
  the archive. Pax records are checked by CPython 3.13's rules on every Python
  (:func:`check_pax_records`), so one layer unpacks alike on all of them.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from typing import Any, cast

from toolfetch.cache.safetree import MAX_UNPACK_ENV
from toolfetch.core.errors import IntegrityError

_MAX_META = 1 << 20  # data of one pax / GNU long-name header
_META_TYPES = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE,
               tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE)


class RefusedHeader(Exception):
    """A metadata header refused inside tarfile's parsing; an IntegrityError naming the layer."""


class BadHeader(Exception):
    """A header tarfile would take for the end of the archive; not a tarfile error, so that
    ``TarFile.next()`` lets it through instead of silently ending the member list."""


class _Replay:
    """The stream tarfile reads, with bytes already read from it put back in front."""

    def __init__(self, head: bytes, rest: Any) -> None:
        self._head, self._rest = head, rest

    def read(self, size: int) -> bytes:
        if not self._head:
            return cast(bytes, self._rest.read(size))
        data, self._head = self._head[:size], self._head[size:]
        return data + (self._rest.read(size - len(data)) if len(data) < size else b"")

    def tell(self) -> int:
        return cast(int, self._rest.tell()) - len(self._head)


def check_pax_records(buf: bytes) -> str | None:
    """Why the pax header data ``buf`` (block-padded) is malformed, or None.

    CPython 3.13 (and 3.12.6+, 3.11.10+) refuse records older releases accept (trailing bytes,
    a record not ending in a newline), so these rules, the strict ones, are checked here on
    every Python: one layer must unpack alike on all of them.
    """
    pos = 0
    while pos < len(buf) and buf[pos] != 0:
        space = buf.find(b" ", pos, pos + 21)
        digits = buf[pos:space] if space > pos else b""
        if not digits or not digits.isdigit() or not digits.isascii():
            return f"pax record at byte {pos} has no length"
        length = int(digits)
        end = pos + length  # one past the record's newline
        if length < 5 or end > len(buf):
            return f"pax record at byte {pos} has a bad length {length}"
        keyword, equals, _ = buf[space + 1:end - 1].partition(b"=")
        if not keyword or not equals or buf[end - 1] != 0x0A:
            return f"pax record at byte {pos} is not 'LENGTH KEYWORD=VALUE\\n'"
        pos = end
    return None


# tarfile's own "the archive ends here" errors (not in typeshed): a zero block, end of stream.
_END_OF_ARCHIVE = (cast(Any, tarfile).EOFHeaderError, cast(Any, tarfile).EmptyHeaderError)


class GuardedTarInfo(tarfile.TarInfo):
    """Refuses oversized or malformed pax / GNU long-name headers (tarfile reads them into
    memory), and makes a corrupt header an error rather than the end of the archive."""

    @classmethod
    def fromtarfile(cls, tarfile_: tarfile.TarFile) -> GuardedTarInfo:
        offset = cast(Any, tarfile_).fileobj.tell()
        try:
            return super().fromtarfile(tarfile_)
        except _END_OF_ARCHIVE:
            raise  # a zero block or the end of the stream: the archive really ends here
        except tarfile.HeaderError as e:
            raise BadHeader(f"bad header at byte {offset}: {e}") from e

    def _proc_member(self, tf: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _META_TYPES and self.size > _MAX_META:
            raise RefusedHeader(self.name, f"its header holds {self.size} bytes of metadata "
                                  f"(at most {_MAX_META})")
        if self.type in (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE):
            stream = cast(Any, tf).fileobj
            buf = stream.read(self._block(self.size))  # type: ignore[attr-defined]
            if (why := check_pax_records(buf)) is not None:
                raise RefusedHeader(self.name, why)
            cast(Any, tf).fileobj = _Replay(buf, stream)
            try:
                return cast(tarfile.TarInfo, cast(Any, super())._proc_member(tf))
            finally:
                cast(Any, tf).fileobj = stream
        return cast(tarfile.TarInfo, cast(Any, super())._proc_member(tf))


class Counted:
    """A read-only stream over a decompressor: caps the bytes read, wraps codec errors."""

    def __init__(self, read: Callable[[int], bytes], cap: int, what: str) -> None:
        self._read, self.cap, self.what, self.count = read, cap, what, 0

    def read(self, size: int = -1) -> bytes:
        try:
            data = self._read(size)
        except Exception as e:
            raise IntegrityError(f"{self.what}: corrupt or truncated archive: {e}") from e
        self.count += len(data)
        if self.count > self.cap:
            raise IntegrityError(f"{self.what}: decompressed archive exceeds {self.cap} bytes "
                                 f"(see {MAX_UNPACK_ENV})")
        return data
