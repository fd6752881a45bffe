"""Unpacking layers into a tree: tar, tar+gzip, tar+zstd, zip and raw files (docs/design.md,
"Unpacking").

Formats are told apart in :mod:`formats`; every member goes through :class:`SafeTree`, which
refuses whatever could leave the tree (its module doc lists the rules) and applies OCI
whiteouts to image changesets. Device, fifo and unknown members are refused too. Nothing here
depends on the Python version: ``tarfile.data_filter`` is not used, because its verdicts differ
between releases (3.10.12 and 3.11.4 refuse a valid ``dir/link -> ../x``, CPython gh-107845),
and one digest must give one tree on every machine.

A raw layer (a single-file artifact's file) is placed under its title, hardlinked to the blob
(not copied, not capped), and is executable (0o555) whatever tool asks for it: nothing in the
manifest says which files are programs, and a tree must not depend on who fetched it first.

Unpacked bytes are capped (decompression bombs) by ``max_bytes``, else the environment variable
``TOOLFETCH_MAX_UNPACK_BYTES`` (a size: ``8G``, ``500M``), else
:data:`DEFAULT_MAX_UNPACKED`; nothing is written past the cap.  The decompressed tar stream
(2 x cap + 64 MiB) and pax/GNU long-name headers (1 MiB, held in memory by tarfile) are capped
too.
"""

from __future__ import annotations

import errno
import gzip
import os
import stat
import sys
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, cast

from toolfetch.cache.safetree import MAX_UNPACK_ENV, Known, SafeTree
from toolfetch.core.errors import IntegrityError, LocalIOError, UsageError
from toolfetch.core.sizes import parse_size
from toolfetch.oci.formats import UNPACK_FORMATS, check_title

DEFAULT_MAX_UNPACKED = 8 * 1024**3

RAW_MODE = 0o555
_MAX_META = 1 << 20  # data of one pax / GNU long-name header
_MAX_LINK = 4096  # a zip symlink's target
_NO_LINK_ERRNOS = (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP)
_META_TYPES = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE,
               tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE)


def max_unpack_bytes() -> int:
    """The cap on unpacked bytes from ``TOOLFETCH_MAX_UNPACK_BYTES`` (a size, see
    :mod:`toolfetch.core.sizes`), else the default."""
    text = os.environ.get(MAX_UNPACK_ENV, "").strip()
    return parse_size(text, MAX_UNPACK_ENV, minimum=1) if text else DEFAULT_MAX_UNPACKED


class _RefusedHeader(Exception):
    """A metadata header refused inside tarfile's parsing; an IntegrityError naming the layer."""


class _BadHeader(Exception):
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


class _GuardedTarInfo(tarfile.TarInfo):
    """Refuses oversized or malformed pax / GNU long-name headers (tarfile reads them into
    memory), and makes a corrupt header an error rather than the end of the archive."""

    @classmethod
    def fromtarfile(cls, tarfile_: tarfile.TarFile) -> _GuardedTarInfo:
        offset = cast(Any, tarfile_).fileobj.tell()
        try:
            return super().fromtarfile(tarfile_)
        except _END_OF_ARCHIVE:
            raise  # a zero block or the end of the stream: the archive really ends here
        except tarfile.HeaderError as e:
            raise _BadHeader(f"bad header at byte {offset}: {e}") from e

    def _proc_member(self, tf: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _META_TYPES and self.size > _MAX_META:
            raise _RefusedHeader(self.name, f"its header holds {self.size} bytes of metadata "
                                  f"(at most {_MAX_META})")
        if self.type in (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE):
            stream = cast(Any, tf).fileobj
            buf = stream.read(self._block(self.size))  # type: ignore[attr-defined]
            if (why := check_pax_records(buf)) is not None:
                raise _RefusedHeader(self.name, why)
            cast(Any, tf).fileobj = _Replay(buf, stream)
            try:
                return cast(tarfile.TarInfo, cast(Any, super())._proc_member(tf))
            finally:
                cast(Any, tf).fileobj = stream
        return cast(tarfile.TarInfo, cast(Any, super())._proc_member(tf))


class _Counted:
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


def _unpack_tar(tree: SafeTree, stream: _Counted) -> None:
    try:
        # Stream mode only ever calls read(): no seeking, constant memory.
        with tarfile.open(fileobj=cast(IO[bytes], stream), mode="r|",
                          tarinfo=_GuardedTarInfo) as tf:
            while (m := tf.next()) is not None:
                cast(Any, tf).members.clear()  # constant memory: no member lookups
                parts = tree.parts(m.name)
                if not parts:
                    if not m.isdir():
                        raise tree.fail(m.name, "names the root of the tree")
                elif m.ischr() or m.isblk() or m.isfifo():
                    raise tree.fail(m.name, "device and fifo members are not allowed")
                elif tree.is_whiteout(parts):
                    tree.apply_whiteout(parts, m.name)
                elif m.isreg():
                    data = tf.extractfile(m)
                    assert data is not None
                    tree.add_file(parts, m.name, m.mode, m.size, data.read)
                elif m.isdir():
                    tree.add_dir(parts, m.name)
                elif m.issym():
                    tree.add_symlink(parts, m.name, m.linkname)
                elif m.islnk():
                    tree.add_hardlink(parts, m.name, m.linkname)
                else:
                    raise tree.fail(m.name, f"unsupported member type {m.type!r}")
    except _RefusedHeader as e:
        raise tree.fail(str(e.args[0]), str(e.args[1])) from e
    except _BadHeader as e:
        raise IntegrityError(f"{tree.what}: not a valid tar archive: {e}") from e
    except tarfile.TarError as e:
        raise IntegrityError(f"{tree.what}: not a valid tar archive: {e}") from e


def _unpack_zip(tree: SafeTree, blob: Path) -> None:
    try:
        with zipfile.ZipFile(blob) as zf:
            for info in zf.infolist():
                name, mode = info.filename, info.external_attr >> 16
                parts, kind = tree.parts(name), stat.S_IFMT(mode)
                is_dir = name.endswith("/") or kind == stat.S_IFDIR
                if not parts and not is_dir:
                    raise tree.fail(name, "names the root of the tree")
                if is_dir:
                    if parts:
                        tree.add_dir(parts, name)
                elif kind == stat.S_IFLNK:
                    with zf.open(info) as f:
                        raw = f.read(_MAX_LINK + 1)
                    if len(raw) > _MAX_LINK:
                        raise tree.fail(name, "symlink target is too long")
                    tree.add_symlink(parts, name, raw.decode("utf-8", "surrogateescape"))
                elif kind in (0, stat.S_IFREG):
                    with zf.open(info) as f:
                        tree.add_file(parts, name, mode, info.file_size, f.read)
                else:
                    raise tree.fail(name, "device, fifo and socket entries are not allowed")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, RuntimeError, NotImplementedError,
            EOFError, zlib.error) as e:
        raise IntegrityError(f"{tree.what}: not a valid zip archive: {e}") from e


def _place_raw(blob: Path, dest: Path, title: str, what: str, known: Known | None,
               digest: str | None) -> None:
    """Hardlink the blob under its title, mode :data:`RAW_MODE`; copy where links fail.

    Every raw placement wants the same mode, so changing the mode of the inode the blob (and
    other trees) share never changes what another tree holds.
    """
    parts = tuple(title.split("/"))
    tree = SafeTree(dest, what, sys.maxsize, known)
    try:
        st = os.stat(blob)
        fd, name = tree._prepare(parts, "file", title)
        try:
            os.link(blob, name, dst_dir_fd=fd)
            if stat.S_IMODE(st.st_mode) != RAW_MODE:
                os.chmod(name, RAW_MODE, dir_fd=fd)
            if digest is not None:  # the blob was verified against it when stored
                tree.known[title] = (st.st_ino, digest)
            return
        except OSError as e:
            if e.errno not in _NO_LINK_ERRNOS:
                raise
            tree.kinds.clear()
        finally:
            os.close(fd)
        with open(blob, "rb") as src:
            tree.add_file(parts, title, RAW_MODE, 0, src.read)
    finally:
        tree.close()


def unpack_layer(blob: Path, fmt: str, dest: Path, *, title: str | None, what: str,
                 whiteouts: bool = False, max_bytes: int | None = None,
                 known: Known | None = None, digest: str | None = None) -> None:
    """Unpack one layer blob into the existing directory ``dest`` (see the module doc).

    ``whiteouts``: the layer is an image changeset (see
    :func:`toolfetch.core.treekey.applies_whiteouts`). ``known`` (shared by the layers of one
    tree) collects the inode and digest of every file written; ``digest`` is the verified
    digest of ``blob``, used for a hardlinked raw layer.
    """
    if fmt not in UNPACK_FORMATS:
        raise UsageError(f"{what}: unknown unpack format {fmt!r} (one of {UNPACK_FORMATS})")
    limit = max_bytes if max_bytes is not None else max_unpack_bytes()
    try:
        if fmt == "raw":
            if title is None:
                raise UsageError(f"{what}: a raw layer needs a title annotation")
            try:
                name = check_title(title)
            except UsageError as e:
                raise e.context(what) from e
            _place_raw(blob, dest, name, what, known, digest)
            return
        tree = SafeTree(dest, what, limit, known, whiteouts=whiteouts)
        try:
            if fmt == "zip":
                _unpack_zip(tree, blob)
                return
            with open(blob, "rb") as raw:
                read: Callable[[int], bytes] = raw.read
                if fmt == "tar+gzip":
                    read = gzip.GzipFile(fileobj=raw, mode="rb").read
                elif fmt == "tar+zstd":
                    read = _zstd_reader(raw, what)
                _unpack_tar(tree, _Counted(read, 2 * limit + (64 << 20), what))
        finally:
            tree.close()
    except OSError as e:
        raise LocalIOError.of(e, f"{what}: cannot unpack {blob.name} into {dest}") from e


def _zstd_reader(raw: IO[bytes], what: str) -> Callable[[int], bytes]:
    try:
        import zstandard
    except ImportError as e:
        raise UsageError(f"{what}: tar+zstd layers need the optional 'zstandard' module "
                         "(pip install 'toolfetch[zstd]')") from e
    reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    return reader.read


def unpack_recipe(recipe: dict[str, Any], blob_path: Callable[[str], Path], dest: Path,
                  what: str, known: Known | None = None, max_bytes: int | None = None) -> None:
    """Unpack every layer of a tree recipe (:func:`toolfetch.core.treekey.recipe`) into ``dest``.

    ``blob_path`` maps a layer digest to its verified blob. A recipe of other unpack rules
    than this toolfetch's cannot be rebuilt (UsageError). ``max_bytes``: as
    :func:`unpack_layer`'s (``cache verify`` rebuilds uncapped).
    """
    from toolfetch.core.treekey import UNPACK_RULES

    if recipe.get("rules") != UNPACK_RULES:
        raise UsageError(f"{what}: recipe of unpack rules {recipe.get('rules')!r}, not "
                         f"{UNPACK_RULES}")
    for digest, fmt, title, whiteouts in recipe["layers"]:
        layer_what = f"layer {digest[:19]} ({title or fmt}) of {what}"
        unpack_layer(blob_path(digest), fmt, dest, title=title, what=layer_what,
                     whiteouts=bool(whiteouts), max_bytes=max_bytes, known=known,
                     digest=digest)
