"""Unpacking layers into a tree: tar archives (plain, gzip, zstd, xz or bzip2), zip archives,
raw files and single compressed files (docs/design.md, "Unpacking").

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

import os
import stat
import sys
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any, cast

from toolfetch.cache.codecs import decompressing_reader
from toolfetch.cache.safetree import MAX_UNPACK_ENV, Known, SafeTree
from toolfetch.cache.streams import (
    BadHeader,
    Counted,
    GuardedTarInfo,
    RefusedHeader,
)
from toolfetch.core.errors import IntegrityError, LocalIOError, UsageError
from toolfetch.core.sizes import parse_size
from toolfetch.oci.formats import FORMATS, Codec, Container, Format, check_title, split_relative

DEFAULT_MAX_UNPACKED = 8 * 1024**3

RAW_MODE = 0o555
_MAX_LINK = 4096  # a zip symlink's target
def stream_cap(limit: int) -> int:
    """The cap on a decompressed stream for ``limit`` unpacked bytes: tar headers, padding
    and members the tree replaces come on top of what is written."""
    return 2 * limit + (64 << 20)


def max_unpack_bytes() -> int:
    """The cap on unpacked bytes from ``TOOLFETCH_MAX_UNPACK_BYTES`` (a size, see
    :mod:`toolfetch.core.sizes`), else the default."""
    text = os.environ.get(MAX_UNPACK_ENV, "").strip()
    return parse_size(text, MAX_UNPACK_ENV, minimum=1) if text else DEFAULT_MAX_UNPACKED


def _unpack_tar(tree: SafeTree, stream: Counted) -> None:
    try:
        # Stream mode only ever calls read(): no seeking, constant memory.
        with tarfile.open(fileobj=cast(IO[bytes], stream), mode="r|",
                          tarinfo=GuardedTarInfo) as tf:
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
    except RefusedHeader as e:
        raise tree.fail(str(e.args[0]), str(e.args[1])) from e
    except BadHeader as e:
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
    """The blob under its title, mode :data:`RAW_MODE`: hardlinked, copied where links fail
    (:meth:`SafeTree.add_linked_file`), not capped."""
    tree = SafeTree(dest, what, sys.maxsize, known)
    try:
        tree.add_linked_file(tuple(title.split("/")), title, blob, RAW_MODE, digest)
    finally:
        tree.close()


def unpack_layer(blob: Path, fmt: str, dest: Path, *, title: str | None, what: str,
                 whiteouts: bool = False, max_bytes: int | None = None,
                 known: Known | None = None, digest: str | None = None) -> None:
    """Unpack one layer blob into the existing directory ``dest`` (see the module doc).

    ``fmt`` is a name of :data:`toolfetch.oci.formats.FORMATS`. ``whiteouts``: the layer is
    an image changeset (see :func:`toolfetch.core.treekey.applies_whiteouts`). ``known``
    (shared by the layers of one tree) collects the inode and digest of every file written;
    ``digest`` is the verified digest of ``blob``, used for a hardlinked raw layer.
    """
    layer_format = FORMATS.get(fmt)
    if layer_format is None:
        raise UsageError(f"{what}: unknown unpack format {fmt!r} (one of "
                         f"{', '.join(FORMATS)})")
    limit = max_bytes if max_bytes is not None else max_unpack_bytes()
    try:
        if layer_format.container is Container.FILE:
            if title is None:
                raise UsageError(f"{what}: a {fmt} layer needs a title annotation (the name "
                                 "of its file in the tree)")
            try:
                name = check_title(title)
            except UsageError as e:
                raise e.context(what) from e
            if layer_format.codec is Codec.NONE:
                _place_raw(blob, dest, name, what, known, digest)
            else:
                _place_decompressed(blob, layer_format.codec, dest, name, what, limit, known)
            return
        tree = SafeTree(dest, what, limit, known, whiteouts=whiteouts)
        try:
            if layer_format.container is Container.ZIP:
                _unpack_zip(tree, blob)
                return
            with open(blob, "rb") as raw:
                read = decompressing_reader(layer_format.codec, raw, what)
                _unpack_tar(tree, Counted(read, stream_cap(limit), what))
        finally:
            tree.close()
    except OSError as e:
        raise LocalIOError.of(e, f"{what}: cannot unpack {blob.name} into {dest}") from e


def _place_decompressed(blob: Path, codec: Codec, dest: Path, title: str, what: str,
                        limit: int, known: Known | None) -> None:
    """A single compressed file, decompressed under its title (mode 0o555, as a raw file),
    streaming, capped at ``limit`` bytes (a bomb stops at the cap, nothing past it written)."""
    tree = SafeTree(dest, what, limit, known)
    try:
        with open(blob, "rb") as raw:
            read = decompressing_reader(codec, raw, what)
            tree.add_file(tuple(title.split("/")), title, RAW_MODE, 0,
                          Counted(read, stream_cap(limit), what).read)
    finally:
        tree.close()


def archive_members(blob: Path, fmt: Format, what: str) -> set[str]:
    """The names of the files and links an archive holds (normalised ``/``-paths), read
    through the same parsing and caps as unpacking, writing nothing (``lock`` checks a tool's
    ``path`` with it). An unsafe or corrupt archive is an IntegrityError, as unpacking is."""
    names: set[str] = set()

    def keep(name: str) -> None:
        try:
            parts = split_relative(name)
        except ValueError as e:
            raise IntegrityError(f"{what}: unsafe member {name!r}: the name {e}") from e
        if parts:
            names.add("/".join(parts))

    try:
        if fmt.container is Container.ZIP:
            with zipfile.ZipFile(blob) as zf:
                for info in zf.infolist():
                    if not info.filename.endswith("/"):
                        keep(info.filename)
            return names
        with open(blob, "rb") as raw:
            stream = Counted(decompressing_reader(fmt.codec, raw, what),
                              stream_cap(max_unpack_bytes()), what)
            with tarfile.open(fileobj=cast(IO[bytes], stream), mode="r|",
                              tarinfo=GuardedTarInfo) as tf:
                while (m := tf.next()) is not None:
                    cast(Any, tf).members.clear()
                    if not m.isdir():
                        keep(m.name)
    except (RefusedHeader, BadHeader, tarfile.TarError, zipfile.BadZipFile,
            zipfile.LargeZipFile, EOFError, zlib.error) as e:
        raise IntegrityError(f"{what}: not a valid {fmt.name} archive: {e}") from e
    except OSError as e:
        raise LocalIOError.of(e, f"{what}: cannot read {blob}") from e
    return names


def unpack_recipe(recipe: Mapping[str, Any], blob_path: Callable[[str], Path], dest: Path,
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
