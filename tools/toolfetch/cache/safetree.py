"""Writing hostile archive members into a tree without ever leaving it.

:class:`SafeTree` creates one layer's members under a directory with ``*at`` calls on
directory descriptors opened with ``O_NOFOLLOW`` (POSIX only), so nothing is written through a
symlink, whatever the archive or an earlier layer left on disk. Refused with an
:class:`IntegrityError` naming the member: names that are absolute, have ``..``, backslashes or
drive letters; symlinks whose target is absolute, escapes the tree, or has ``..`` after a name
(it could climb out through another symlink); hardlinks to anything but a regular file written
earlier by the same layer; writing below a symlink or a file; duplicates other than
file-after-file or dir-after-dir. Modes keep only the executable bit: files 0o555/0o444,
directories 0o755 until :func:`toolfetch.cache.trees.make_read_only`.

A later layer replaces earlier files and symlinks (unlinked, never followed). For an image
changeset (``whiteouts=True``, see :func:`toolfetch.core.treekey.applies_whiteouts`) the OCI layer
rules apply as well (image-spec layer.md): ``.wh.<name>`` deletes ``<name>`` of lower layers,
``.wh..wh..opq`` deletes every lower entry of its directory, other ``.wh..wh.*`` names (aufs
metadata) are skipped, whiteouts never touch what the same layer wrote, whatever their order
in the archive, and never appear in the tree; a lower directory replaced by a non-directory is
removed, and so is a lower file or symlink used as an implicit parent (``foo/bar`` over a lower
file ``foo``, without ``foo/``): it becomes a directory, whether ``.wh.foo`` comes before, after
or not at all. Without whiteouts, replacing a directory is refused.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, MutableMapping
from pathlib import Path

from toolfetch.core.digest import COPY_CHUNK as CHUNK
from toolfetch.core.errors import IntegrityError
from toolfetch.oci.formats import split_relative

MAX_UNPACK_ENV = "TOOLFETCH_MAX_UNPACK_BYTES"  # the cap on unpacked bytes (cache.unpack)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_SYMLINK_ERRNOS = (errno.ELOOP, errno.ENOTDIR, errno.EMLINK)
# A hardlink the file system refuses (another device, no links, a link count limit).
_NO_LINK_ERRNOS = (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP)
# What reading a corrupt member raises (zlib.error: a damaged deflate stream in a zip).
_READ_ERRORS = (OSError, EOFError, RuntimeError, zipfile.BadZipFile, tarfile.TarError,
                NotImplementedError, zlib.error)
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
WHITEOUT_META = ".wh..wh."
# What unpacking wrote: relative path -> (inode, "sha256:…") of each regular file, so the tree
# digest needs no second pass over the bytes (see trees.tree_digest).
Known = MutableMapping[str, tuple[int, str]]
Parts = tuple[str, ...]


class SafeTree:
    """Creates one layer's members under ``dest``; tracks the names this layer wrote."""

    def __init__(self, dest: Path, what: str, limit: int, known: Known | None = None,
                 whiteouts: bool = False) -> None:
        self.dest, self.what, self.limit, self.used = dest, what, limit, 0
        self.whiteouts = whiteouts
        self.known: Known = known if known is not None else {}
        self.kinds: dict[Parts, str] = {}  # what this layer wrote, by path
        self.ancestors: set[Parts] = set()  # directories holding something this layer wrote
        self.root_fd = os.open(dest, _DIR_FLAGS)

    def close(self) -> None:
        os.close(self.root_fd)

    def fail(self, member: str, reason: str) -> IntegrityError:
        return IntegrityError(f"{self.what}: unsafe member {member!r}: {reason}")

    def parts(self, name: str) -> Parts:
        try:
            return split_relative(name)
        except ValueError as e:
            raise self.fail(name, f"the name {e}") from e

    # -- descriptors ----------------------------------------------------------------------
    def _open_parent(self, parts: Parts, member: str, create: bool = True) -> int | None:
        """A descriptor of the directory holding ``parts[-1]`` (created unless ``create`` is
        false, then None when it is missing, a file or a symlink)."""
        fd = os.dup(self.root_fd)
        try:
            for i, comp in enumerate(parts[:-1]):
                try:
                    nfd = os.open(comp, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        os.close(fd)
                        return None
                    os.mkdir(comp, 0o755, dir_fd=fd)
                    nfd = os.open(comp, _DIR_FLAGS, dir_fd=fd)
                except OSError as e:
                    if e.errno not in _SYMLINK_ERRNOS:
                        raise
                    if not create:
                        os.close(fd)
                        return None
                    if not self._replace_lower(fd, parts[: i + 1]):
                        where = "/".join(parts[: i + 1])
                        raise self.fail(member, f"{where!r} is a symlink or a file; refusing "
                                                "to write through it") from e
                    nfd = os.open(comp, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = nfd
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _replace_lower(self, dir_fd: int, parts: Parts) -> bool:
        """In a changeset, replace the lower layer's file or symlink ``parts`` (an implicit
        parent) by a directory, as ``.wh.<name>`` before ``<name>/…`` would: the result never
        depends on member order. The symlink is unlinked, never followed. False (nothing
        changed) outside whiteout mode, for what this layer wrote, or for a directory."""
        if not self.whiteouts or parts in self.kinds or parts in self.ancestors:
            return False
        name = parts[-1]
        if stat.S_ISDIR(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
            return False
        self._remove_at(dir_fd, name, parts)
        os.mkdir(name, 0o755, dir_fd=dir_fd)
        return True

    def _prepare(self, parts: Parts, kind: str, member: str) -> tuple[int, str]:
        """Check duplicates, open the parent, clear the name; returns (parent fd, name)."""
        prev = self.kinds.get(parts)
        if prev is not None and not (prev == kind and kind in ("file", "dir")):
            raise self.fail(member, f"duplicate member (a {kind} after a {prev})")
        fd = self._open_parent(parts, member)
        assert fd is not None
        name = parts[-1]
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode) and kind != "dir":
                if not self.whiteouts or prev is not None or parts in self.ancestors:
                    raise self.fail(member, "would replace a directory")
                self._remove_at(fd, name, parts)  # a lower layer's directory (layer.md)
            elif not stat.S_ISDIR(st.st_mode):
                os.unlink(name, dir_fd=fd)  # an earlier file or symlink: replace, never follow
        except FileNotFoundError:
            pass
        except BaseException:
            os.close(fd)
            raise
        self.kinds[parts] = kind
        self.ancestors.update(parts[:i] for i in range(1, len(parts)))
        self.known.pop("/".join(parts), None)  # whatever an earlier layer wrote here is gone
        return fd, name

    # -- members --------------------------------------------------------------------------
    def add_dir(self, parts: Parts, member: str) -> None:
        fd, name = self._prepare(parts, "dir", member)
        try:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o755, dir_fd=fd)
        finally:
            os.close(fd)

    def add_file(self, parts: Parts, member: str, mode: int, size: int,
                 read: Callable[[int], bytes]) -> None:
        if self.used + size > self.limit:
            raise self._too_big(member)
        fd, name = self._prepare(parts, "file", member)
        perm = 0o555 if mode & 0o111 else 0o444
        digest = hashlib.sha256()  # hashed while written: the tree digest reads nothing back
        try:
            with open(os.open(name, _FILE_FLAGS, 0o600, dir_fd=fd), "wb") as out:
                while True:
                    try:
                        chunk = read(CHUNK)
                    except _READ_ERRORS as e:
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
        except BaseException:  # a bomb stopped at the cap, a corrupt member: nothing partial
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=fd)
            raise
        finally:
            os.close(fd)

    def add_linked_file(self, parts: Parts, member: str, source: Path, mode: int,
                        digest: str | None) -> None:
        """The existing file ``source`` (a verified blob) under ``parts``, hardlinked, with
        ``mode`` set on the inode it shares (callers that link one blob into several trees
        all ask for the same mode, so no tree changes another's); copied where the file
        system refuses the link. ``digest``, what ``source`` was verified against, is
        recorded so the tree digest reads nothing back. The link is not counted against the
        cap (a copy is)."""
        st = os.stat(source)
        fd, name = self._prepare(parts, "file", member)
        try:
            os.link(source, name, dst_dir_fd=fd)
            if stat.S_IMODE(st.st_mode) != mode:
                os.chmod(name, mode, dir_fd=fd)
            if digest is not None:
                self.known["/".join(parts)] = (st.st_ino, digest)
            return
        except OSError as e:
            if e.errno not in _NO_LINK_ERRNOS:
                raise
            del self.kinds[parts]  # written by the copy below instead
        finally:
            os.close(fd)
        with open(source, "rb") as src:
            self.add_file(parts, member, mode, 0, src.read)

    def _too_big(self, member: str) -> IntegrityError:
        return IntegrityError(f"{self.what}: member {member!r}: unpacked size exceeds the limit "
                              f"of {self.limit} bytes (decompression bomb? see {MAX_UNPACK_ENV})")

    def add_symlink(self, parts: Parts, member: str, target: str) -> None:
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

    def add_hardlink(self, parts: Parts, member: str, target: str) -> None:
        try:
            tparts = split_relative(target)
        except ValueError as e:
            raise self.fail(member, f"hardlink target {target!r} {e}") from e
        if self.kinds.get(tparts) not in ("file", "link"):
            raise self.fail(member, f"hardlink to {target!r}, which is not a regular file "
                                    "extracted earlier from this archive")
        tfd = self._open_parent(tparts, member)
        assert tfd is not None
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

    # -- whiteouts ------------------------------------------------------------------------
    def is_whiteout(self, parts: Parts) -> bool:
        """Whether a member is a whiteout (or aufs metadata) rather than content."""
        return self.whiteouts and any(p.startswith(WHITEOUT) for p in parts)

    def apply_whiteout(self, parts: Parts, member: str) -> None:
        """Delete what a ``.wh.`` member names from the lower layers (see the module doc)."""
        if any(p.startswith(WHITEOUT_META) for p in parts[:-1]):
            return  # inside aufs metadata (.wh..wh.plnk/…): not content
        if any(p.startswith(WHITEOUT) for p in parts[:-1]):
            raise self.fail(member, "a whiteout name is used as a directory")
        name, directory = parts[-1], parts[:-1]
        if name == OPAQUE:
            self._clear_lower(directory, member)
        elif not name.startswith(WHITEOUT_META):  # other .wh..wh.* names: aufs metadata
            target = name[len(WHITEOUT):]
            if not target or target in (".", ".."):
                raise self.fail(member, "whiteout that names nothing")
            self._delete_lower((*directory, target), member)

    def _delete_lower(self, parts: Parts, member: str) -> None:
        if parts in self.kinds and self.kinds[parts] != "dir":
            return  # written by this layer: only a later layer's whiteout hides it
        if parts in self.kinds or parts in self.ancestors:
            self._clear_lower(parts, member)
            return
        fd = self._open_parent(parts, member, create=False)
        if fd is None:
            return  # nothing there (or only through a symlink, which a changeset never means)
        try:
            with contextlib.suppress(FileNotFoundError):
                self._remove_at(fd, parts[-1], parts)
        finally:
            os.close(fd)

    def _clear_lower(self, directory: Parts, member: str) -> None:
        """Delete every entry below ``directory`` that this layer did not write."""
        fd = self._open_parent((*directory, ""), member, create=False)  # the directory itself
        if fd is None:
            return
        try:
            for entry in list(os.scandir(fd)):
                child = (*directory, entry.name)
                if child in self.kinds and self.kinds[child] != "dir":
                    continue
                if child in self.kinds or child in self.ancestors:
                    if entry.is_dir(follow_symlinks=False):
                        self._clear_lower(child, member)
                    continue
                self._remove_at(fd, entry.name, child)
        finally:
            os.close(fd)

    def _remove_at(self, dir_fd: int, name: str, parts: Parts) -> None:
        """rm -r ``name`` in ``dir_fd`` (never following a symlink) and forget its files."""
        _remove_recursively(dir_fd, name)
        prefix = "/".join(parts)
        for path in [p for p in self.known if p == prefix or p.startswith(prefix + "/")]:
            del self.known[path]


def _remove_recursively(dir_fd: int, name: str) -> None:
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if stat.S_ISDIR(st.st_mode):
        fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        try:
            for entry in list(os.scandir(fd)):
                _remove_recursively(fd, entry.name)
        finally:
            os.close(fd)
        os.rmdir(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)
