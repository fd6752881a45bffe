"""Safe unpacking of layers into a tree (DESIGN §7); formats are told apart in :mod:`formats`.

Archives are hostile.  Members are created with ``*at`` calls on directory descriptors opened
with ``O_NOFOLLOW`` (POSIX only), so nothing is written through a symlink, whatever the archive
or an earlier layer left on disk.  Refused with an :class:`IntegrityError` naming the member:
absolute names, ``..``, backslashes, drive letters; symlinks whose target is absolute, escapes
the tree, or has ``..`` after a name (it could climb out through another symlink); hardlinks to
anything but a regular file extracted earlier from the same archive; device, fifo and unknown
members; writing below a symlink or a file; duplicates other than file-after-file or
dir-after-dir; replacing a directory.  A later layer replaces earlier files and symlinks
(unlinked, never followed), as OCI layers do; whiteouts get no special meaning.  Modes keep only
the executable bit: files 0o555/0o444, directories 0o755 until :func:`make_read_only`.  Where
``tarfile.data_filter`` exists (3.10.12+, 3.11.4+) it is applied as a second check.

Unpacked bytes are capped (decompression bombs) by ``max_bytes``, else the environment variable
``TOOLFETCH_MAX_UNPACK_BYTES`` (bytes, optional K/M/G/T suffix), else
:data:`DEFAULT_MAX_UNPACKED`; nothing is written past the cap.  The decompressed tar stream
(2 x cap + 64 MiB) and pax/GNU long-name headers (1 MiB, held in memory by tarfile) are capped
too.  Raw layers are hardlinked to the blob, not copied, and not capped.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import os
import stat
import sys
import tarfile
import zipfile
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import IO, Any, cast

from toolfetch.errors import IntegrityError, InternalError, UsageError
from toolfetch.formats import UNPACK_FORMATS, check_title, split_relative

DEFAULT_MAX_UNPACKED = 8 * 1024**3
MAX_UNPACK_ENV = "TOOLFETCH_MAX_UNPACK_BYTES"

_CHUNK = 1 << 20
_MAX_META = 1 << 20  # data of one pax / GNU long-name header
_MAX_LINK = 4096  # a zip symlink's target
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_SYMLINK_ERRNOS = (errno.ELOOP, errno.ENOTDIR, errno.EMLINK)
_NO_LINK_ERRNOS = (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP)
_META_TYPES = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE,
               tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE)
# What unpacking wrote: relative path -> (inode, "sha256:…") of each regular file, so the tree
# digest needs no second pass over the bytes (see trees.tree_digest).
Known = MutableMapping[str, tuple[int, str]]

def max_unpack_bytes() -> int:
    """The cap on unpacked bytes from ``TOOLFETCH_MAX_UNPACK_BYTES``, else the default."""
    text = os.environ.get(MAX_UNPACK_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_UNPACKED
    scale = 1024 ** ("KMGT".index(text[-1].upper()) + 1) if text[-1].upper() in "KMGT" else 1
    try:
        value = int(text[:-1] if scale > 1 else text) * scale
    except ValueError as e:
        raise UsageError(f"{MAX_UNPACK_ENV}={text!r}: expected a byte count like 8G") from e
    if value <= 0:
        raise UsageError(f"{MAX_UNPACK_ENV}={text!r}: must be positive")
    return value


class _HeaderTooLarge(Exception):
    """Raised inside tarfile's header parsing; turned into an IntegrityError naming the layer."""


class _GuardedTarInfo(tarfile.TarInfo):
    """Refuses oversized pax / GNU long-name headers, which tarfile reads into memory."""

    def _proc_member(self, tf: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _META_TYPES and self.size > _MAX_META:
            raise _HeaderTooLarge(self.name, f"its header holds {self.size} bytes of metadata "
                                  f"(at most {_MAX_META})")
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


class _Tree:
    """Creates members under ``dest`` without following symlinks; tracks this layer's names."""

    def __init__(self, dest: Path, what: str, exe: tuple[str, ...] | None, limit: int,
                 known: Known | None = None) -> None:
        self.dest, self.what, self.exe, self.limit, self.used = dest, what, exe, limit, 0
        self.known: Known = known if known is not None else {}
        self.kinds: dict[tuple[str, ...], str] = {}
        self.tarinfo: tarfile.TarInfo | None = None  # checked by tarfile.data_filter too
        self.root_fd = os.open(dest, _DIR_FLAGS)

    def close(self) -> None:
        os.close(self.root_fd)

    def fail(self, member: str, reason: str) -> IntegrityError:
        return IntegrityError(f"{self.what}: unsafe member {member!r}: {reason}")

    def parts(self, name: str) -> tuple[str, ...]:
        try:
            return split_relative(name)
        except ValueError as e:
            raise self.fail(name, f"the name {e}") from e

    def _open_parent(self, parts: tuple[str, ...], member: str) -> int:
        fd = os.dup(self.root_fd)
        try:
            for i, comp in enumerate(parts[:-1]):
                try:
                    nfd = os.open(comp, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    os.mkdir(comp, 0o755, dir_fd=fd)
                    nfd = os.open(comp, _DIR_FLAGS, dir_fd=fd)
                except OSError as e:
                    if e.errno not in _SYMLINK_ERRNOS:
                        raise
                    where = "/".join(parts[: i + 1])
                    raise self.fail(member, f"{where!r} is a symlink or a file; refusing to "
                                            "write through it") from e
                os.close(fd)
                fd = nfd
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _prepare(self, parts: tuple[str, ...], kind: str, member: str) -> tuple[int, str]:
        """Check duplicates, open the parent, clear the name; returns (parent fd, name)."""
        prev = self.kinds.get(parts)
        if prev is not None and not (prev == kind and kind in ("file", "dir")):
            raise self.fail(member, f"duplicate member (a {kind} after a {prev})")
        if self.tarinfo is not None and hasattr(tarfile, "data_filter"):
            try:
                tarfile.data_filter(self.tarinfo, str(self.dest))
            except tarfile.FilterError as e:
                raise self.fail(member, str(e)) from e
        fd = self._open_parent(parts, member)
        name = parts[-1]
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode) and kind != "dir":
                raise self.fail(member, "would replace a directory")
            if not stat.S_ISDIR(st.st_mode):
                os.unlink(name, dir_fd=fd)  # an earlier file or symlink: replace, never follow
        except FileNotFoundError:
            pass
        except BaseException:
            os.close(fd)
            raise
        self.kinds[parts] = kind
        self.known.pop("/".join(parts), None)  # whatever an earlier layer wrote here is gone
        return fd, name

    def add_dir(self, parts: tuple[str, ...], member: str) -> None:
        fd, name = self._prepare(parts, "dir", member)
        try:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o755, dir_fd=fd)
        finally:
            os.close(fd)

    def add_file(self, parts: tuple[str, ...], member: str, mode: int, size: int,
                 read: Callable[[int], bytes]) -> None:
        if self.used + size > self.limit:
            raise self._too_big(member)
        fd, name = self._prepare(parts, "file", member)
        perm = 0o555 if mode & 0o111 or parts == self.exe else 0o444
        digest = hashlib.sha256()  # hashed while written: the tree digest reads nothing back
        try:
            with open(os.open(name, _FILE_FLAGS, 0o600, dir_fd=fd), "wb") as out:
                while True:
                    try:
                        chunk = read(_CHUNK)
                    except (OSError, EOFError, RuntimeError, zipfile.BadZipFile,
                            tarfile.TarError, NotImplementedError) as e:
                        raise self.fail(member, f"corrupt data: {e}") from e
                    if not chunk:
                        break
                    self.used += len(chunk)
                    if self.used > self.limit:
                        raise self._too_big(member)
                    out.write(chunk)
                    digest.update(chunk)
                os.fchmod(out.fileno(), perm)
                self.known["/".join(parts)] = (os.fstat(out.fileno()).st_ino,
                                               f"sha256:{digest.hexdigest()}")
        finally:
            os.close(fd)

    def _too_big(self, member: str) -> IntegrityError:
        return IntegrityError(f"{self.what}: member {member!r}: unpacked size exceeds the limit "
                              f"of {self.limit} bytes (decompression bomb? see {MAX_UNPACK_ENV})")

    def add_symlink(self, parts: tuple[str, ...], member: str, target: str) -> None:
        rest, ups = target, 0
        while rest.startswith(("../", "./")) or rest in ("..", "."):
            ups += rest.startswith("..")
            rest = rest.partition("/")[2].lstrip("/")
        try:
            if not target or target.startswith("/"):
                raise ValueError("is absolute or empty")
            split_relative(rest)
        except ValueError as e:
            raise self.fail(member, f"symlink target {target!r} {e} (only leading '..' are "
                                    "allowed)") from e
        if ups >= len(parts):
            raise self.fail(member, f"symlink target {target!r} escapes the tree")
        fd, name = self._prepare(parts, "symlink", member)
        try:
            os.symlink(target, name, dir_fd=fd)
        finally:
            os.close(fd)

    def add_hardlink(self, parts: tuple[str, ...], member: str, target: str) -> None:
        try:
            tparts = split_relative(target)
        except ValueError as e:
            raise self.fail(member, f"hardlink target {target!r} {e}") from e
        if self.kinds.get(tparts) not in ("file", "link"):
            raise self.fail(member, f"hardlink to {target!r}, which is not a regular file "
                                    "extracted earlier from this archive")
        tfd = self._open_parent(tparts, member)
        try:
            fd, name = self._prepare(parts, "link", member)
            try:
                os.link(tparts[-1], name, src_dir_fd=tfd, dst_dir_fd=fd, follow_symlinks=False)
                if "/".join(tparts) in self.known:
                    self.known["/".join(parts)] = self.known["/".join(tparts)]
            finally:
                os.close(fd)
        finally:
            os.close(tfd)


def _unpack_tar(tree: _Tree, stream: _Counted) -> None:
    try:
        # Stream mode only ever calls read(): no seeking, constant memory.
        with tarfile.open(fileobj=cast(IO[bytes], stream), mode="r|",
                          tarinfo=_GuardedTarInfo) as tf:
            while (m := tf.next()) is not None:
                cast(Any, tf).members.clear()  # constant memory: no member lookups
                parts = tree.parts(m.name)
                tree.tarinfo = m
                if not parts:
                    if not m.isdir():
                        raise tree.fail(m.name, "names the root of the tree")
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
                elif m.ischr() or m.isblk() or m.isfifo():
                    raise tree.fail(m.name, "device and fifo members are not allowed")
                else:
                    raise tree.fail(m.name, f"unsupported member type {m.type!r}")
    except _HeaderTooLarge as e:
        raise tree.fail(str(e.args[0]), str(e.args[1])) from e
    except tarfile.TarError as e:
        raise IntegrityError(f"{tree.what}: not a valid tar archive: {e}") from e


def _unpack_zip(tree: _Tree, blob: Path) -> None:
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
            EOFError) as e:
        raise IntegrityError(f"{tree.what}: not a valid zip archive: {e}") from e


def _place_raw(blob: Path, dest: Path, title: str, what: str, exe: tuple[str, ...] | None,
               known: Known | None, digest: str | None) -> None:
    parts = tuple(title.split("/"))
    mode = 0o555 if parts == exe else 0o444
    tree = _Tree(dest, what, exe, sys.maxsize, known)
    try:
        st = os.stat(blob)
        # Link unless that would change the mode of an inode another tree already shares.
        if stat.S_IMODE(st.st_mode) == mode or st.st_nlink == 1:
            fd, name = tree._prepare(parts, "file", title)
            try:
                os.link(blob, name, dst_dir_fd=fd)
                if stat.S_IMODE(st.st_mode) != mode:
                    os.chmod(name, mode, dir_fd=fd)
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
            tree.add_file(parts, title, mode, 0, src.read)
    finally:
        tree.close()


def unpack_layer(blob: Path, fmt: str, dest: Path, *, title: str | None, what: str,
                 executable: str | None = None, max_bytes: int | None = None,
                 known: Known | None = None, digest: str | None = None) -> None:
    """Unpack one layer blob into the existing directory ``dest`` (see the module doc).

    ``known`` (shared by the layers of one tree) collects the inode and digest of every file
    written; ``digest`` is the verified digest of ``blob``, used for a hardlinked raw layer.
    """
    if fmt not in UNPACK_FORMATS:
        raise UsageError(f"{what}: unknown unpack format {fmt!r} (one of {UNPACK_FORMATS})")
    limit = max_bytes if max_bytes is not None else max_unpack_bytes()
    try:
        exe: tuple[str, ...] | None = split_relative(executable) if executable else None
    except ValueError:
        exe = None
    try:
        if fmt == "raw":
            if title is None:
                raise UsageError(f"{what}: a raw layer needs a title annotation")
            try:
                name = check_title(title)
            except UsageError as e:
                raise UsageError(f"{what}: {e}") from e
            _place_raw(blob, dest, name, what, exe, known, digest)
            return
        tree = _Tree(dest, what, exe, limit, known)
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
        raise InternalError(f"{what}: cannot unpack {blob} into {dest}: {e}") from e


def _zstd_reader(raw: IO[bytes], what: str) -> Callable[[int], bytes]:
    try:
        import zstandard
    except ImportError as e:
        raise UsageError(f"{what}: tar+zstd layers need the optional 'zstandard' module "
                         "(pip install 'toolfetch[zstd]')") from e
    reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    return reader.read
