"""Layer formats: the one table of what a layer is and how it lands in a tree; safe names.

Every format toolfetch knows is one :class:`Format` in :data:`FORMATS`: a *container* (a
single file placed under its title, a tar archive, or a zip archive) and a *codec* (none,
gzip, zstd, xz, bzip2). Its ``name`` is what the lockfile's ``unpack`` field and tools.yaml's
``format`` say. Everything else derives from this table: the lockfile and tools.yaml schemas'
enums, the tree key's list of archives (:data:`toolfetch.core.treekey.ARCHIVE_FORMATS`), the
unpacker, the importers' spellings (:data:`SPELLINGS`: every spelling DotSlash and
rules_multitool accept), and the Bazel shim's copy (``rules/bazel/private/downloads.bzl``);
tests keep the copies equal.

How ``lock`` chooses a format (docs/design.md, "Unpacking"): the entry's own ``format``; else
the mediaType; else an *archive* extension of the title or URL (``.tar.gz``, ``.zip``, …).
A single compressed file (``tool.gz``) or a zip-based package (``app.jar``) stays a plain file
unless the entry says otherwise: decompressing or unzipping what a publisher shipped as a file
would hand out other bytes than the ones they named. Magic bytes are consulted only for a name
without any extension, and only ever pick an archive (a tar inside a compression codec, or a
zip), never a single decompressed file.

Names (titles, archive members) are relative ``/``-paths without ``..``, drive letters,
backslashes or NUL bytes.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from toolfetch.core.errors import UsageError


class Codec(enum.Enum):
    """The compression around a layer's bytes (a tar stream or a single file)."""

    NONE = ""
    GZIP = "gzip"
    ZSTD = "zstd"
    XZ = "xz"
    BZIP2 = "bzip2"

    @property
    def magic(self) -> bytes:
        return _CODEC_MAGIC[self]


_CODEC_MAGIC = {Codec.NONE: b"", Codec.GZIP: b"\x1f\x8b", Codec.ZSTD: b"\x28\xb5\x2f\xfd",
                Codec.XZ: b"\xfd7zXZ\x00", Codec.BZIP2: b"BZh"}


class Container(enum.Enum):
    """How the (decompressed) bytes land in a tree."""

    FILE = "file"  # one file, placed under the layer's title (mode 0o555)
    TAR = "tar"
    ZIP = "zip"


@dataclass(frozen=True)
class Format:
    """One layer format: the ``unpack`` value, how it unpacks, and the media type toolfetch
    writes for it."""

    name: str
    container: Container
    codec: Codec
    media_type: str

    @property
    def is_archive(self) -> bool:
        """Members of their own (tar, zip); else a single file placed under the title."""
        return self.container is not Container.FILE

    def __str__(self) -> str:
        return self.name


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("raw", Container.FILE, Codec.NONE, "application/octet-stream"),
    Format("gzip", Container.FILE, Codec.GZIP, "application/gzip"),
    Format("zstd", Container.FILE, Codec.ZSTD, "application/zstd"),
    Format("xz", Container.FILE, Codec.XZ, "application/x-xz"),
    Format("bzip2", Container.FILE, Codec.BZIP2, "application/x-bzip2"),
    Format("tar", Container.TAR, Codec.NONE, "application/vnd.oci.image.layer.v1.tar"),
    Format("tar+gzip", Container.TAR, Codec.GZIP, "application/vnd.oci.image.layer.v1.tar+gzip"),
    Format("tar+zstd", Container.TAR, Codec.ZSTD, "application/vnd.oci.image.layer.v1.tar+zstd"),
    Format("tar+xz", Container.TAR, Codec.XZ, "application/x-xz-compressed-tar"),
    Format("tar+bzip2", Container.TAR, Codec.BZIP2, "application/x-bzip2-compressed-tar"),
    Format("zip", Container.ZIP, Codec.NONE, "application/zip"),
)}
UNPACK_FORMATS = tuple(FORMATS)
RAW = FORMATS["raw"]
ORAS_DEFAULT_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar"

# Every spelling of a format the files toolfetch imports use (DotSlash's `format`,
# rules_multitool's archive `type`, with or without its leading dot), and toolfetch's own.
SPELLINGS: dict[str, str] = {
    **{name: name for name in FORMATS},
    "tar.gz": "tar+gzip", "tgz": "tar+gzip",
    "tar.zst": "tar+zstd", "tar.zstd": "tar+zstd", "tzst": "tar+zstd",
    "tar.xz": "tar+xz", "txz": "tar+xz",
    "tar.bz2": "tar+bzip2", "tbz": "tar+bzip2", "tbz2": "tar+bzip2",
    "jar": "zip", "war": "zip", "aar": "zip",
    "gz": "gzip", "zst": "zstd", "bz2": "bzip2",
}

# Extensions that make a title or URL an archive without being told (longest first wins).
_ARCHIVE_EXTENSIONS = (
    (".tar.gz", "tar+gzip"), (".tgz", "tar+gzip"), (".tar.zst", "tar+zstd"),
    (".tar.zstd", "tar+zstd"), (".tzst", "tar+zstd"), (".tar.xz", "tar+xz"), (".txz", "tar+xz"),
    (".tar.bz2", "tar+bzip2"), (".tbz2", "tar+bzip2"), (".tbz", "tar+bzip2"),
    (".tar", "tar"), (".zip", "zip"),
)
# Single compressed files: what `path` defaults to is the name without this suffix.
_CODEC_EXTENSIONS = {Codec.GZIP: ".gz", Codec.ZSTD: ".zst", Codec.XZ: ".xz", Codec.BZIP2: ".bz2"}
# Media types that make a layer an archive outright, besides the OCI layer types matched by
# suffix. Single compressed files and zip-based packages (application/gzip, java-archive) are
# not among them: a layer is decompressed or unzipped only when it is an archive.
_MEDIA_TYPES = {f.media_type: f.name for f in FORMATS.values() if f.is_archive} | {
    "application/x-tar": "tar", "application/x-zip-compressed": "zip",
}
_MEDIA_SUFFIXES = (
    (("tar+gzip", "tar.gzip", "tar+gz", "tar.gz"), "tar+gzip"),
    (("tar+zstd", "tar.zstd"), "tar+zstd"),
    (("tar+xz",), "tar+xz"),
    (("tar+bzip2",), "tar+bzip2"),
    (("/zip", "+zip"), "zip"),
    (("/tar", "/x-tar", ".tar", "+tar"), "tar"),
)


def format_named(name: str, what: str) -> Format:
    """The format a file calls ``name`` (any of :data:`SPELLINGS`); UsageError names the
    ones known."""
    canonical = SPELLINGS.get(name.strip().lower().removeprefix("."))
    if canonical is None:
        raise UsageError(f"{what}: format {name!r} is not supported (supported: "
                         f"{', '.join(sorted(SPELLINGS))})")
    return FORMATS[canonical]


def format_by_extension(name: str) -> Format:
    """The archive format a file name's extension says; :data:`RAW` when it names none
    (``tool.gz`` and ``app.jar`` are plain files until an entry says otherwise)."""
    lowered = name.lower()
    return next((FORMATS[fmt] for ext, fmt in _ARCHIVE_EXTENSIONS if lowered.endswith(ext)),
                RAW)


def plain_name(name: str, fmt: Format) -> str:
    """The name a single compressed file has once decompressed (``buck2.zst`` → ``buck2``)."""
    suffix = _CODEC_EXTENSIONS.get(fmt.codec)
    if fmt.container is Container.FILE and suffix and name.lower().endswith(suffix) and (
            len(name) > len(suffix)):
        return name[:-len(suffix)]
    return name


def split_relative(name: str) -> tuple[str, ...]:
    """Relative name -> components without ``.``/empty ones; ValueError says what is wrong."""
    if "\x00" in name:
        raise ValueError("contains a NUL byte")
    if "\\" in name:
        raise ValueError("contains a backslash")
    if name.startswith("/"):
        raise ValueError("is an absolute path")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if parts and len(parts[0]) >= 2 and parts[0][1] == ":" and parts[0][0].isalpha():
        raise ValueError("starts with a drive letter")
    if ".." in parts:
        raise ValueError("has a '..' component")
    return parts


def check_title(title: object) -> str:
    """Validate a layer title (a relative file name) and return it normalised."""
    if not isinstance(title, str):
        raise UsageError(f"invalid title {title!r}: a title is a string")
    try:
        parts = split_relative(title)
    except ValueError as e:
        raise UsageError(f"invalid title {title!r}: it {e}; titles are relative names") from e
    if not parts or title.endswith("/"):
        raise UsageError(f"invalid title {title!r}: it names no file")
    return "/".join(parts)


def _by_media_type(media_type: str, title: str | None) -> Format | None:
    base = media_type.split(";", 1)[0].strip().lower()
    if base == ORAS_DEFAULT_MEDIA_TYPE:
        # ORAS gives every pushed file this type: it means tar only for an untitled layer.
        return None if title is not None else FORMATS["tar"]
    if base in _MEDIA_TYPES:
        return FORMATS[_MEDIA_TYPES[base]]
    for suffixes, fmt in _MEDIA_SUFFIXES:
        if base.endswith(suffixes):
            return FORMATS[fmt]
    return None


def sniff(head: bytes) -> Format:
    """The archive format magic bytes show: a zip, a tar, or a tar inside a codec (its first
    decompressed block is looked at); :data:`RAW` otherwise (a compressed single file is not
    decompressed unless an entry says so)."""
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return FORMATS["zip"]
    if head[257:262] == b"ustar":
        return FORMATS["tar"]
    for codec in (Codec.GZIP, Codec.ZSTD, Codec.XZ, Codec.BZIP2):
        if head.startswith(codec.magic):
            inner = _decompress_head(codec, head)
            if inner is not None and inner[257:262] == b"ustar":
                return next(f for f in FORMATS.values()
                            if f.container is Container.TAR and f.codec is codec)
    return RAW


def _decompress_head(codec: Codec, head: bytes) -> bytes | None:
    """The first bytes ``head`` decompresses to (None when it cannot tell)."""
    try:
        if codec is Codec.GZIP:
            import zlib

            return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, 1024)
        if codec is Codec.XZ:
            import lzma

            return lzma.LZMADecompressor().decompress(head, 1024)
        if codec is Codec.BZIP2:
            import bz2

            return bz2.BZ2Decompressor().decompress(head, 1024)
        return bytes(zstd_backend().decompressobj().decompress(head)[:1024])
    except Exception:  # a truncated or foreign head: not a tar we can see
        return None


@dataclass(frozen=True)
class ZstdBackend:
    """The zstd decoder toolfetch uses, from :func:`zstd_backend`."""

    decompressobj: Callable[[], Any]  # an incremental decompressor (``.decompress(data)``)
    reader: Callable[[IO[bytes]], Any]  # a file-like reader of every frame of ``raw``


def zstd_backend() -> ZstdBackend:
    """zstd from the standard library (``compression.zstd``, Python 3.14+), else from the
    ``zstandard`` package (a dependency of toolfetch where the standard library has none):
    the one place that chooses. ImportError when neither is there (a broken install)."""
    try:
        from compression import zstd  # type: ignore[import-not-found, unused-ignore]

        return ZstdBackend(zstd.ZstdDecompressor,
                           lambda raw: zstd.ZstdFile(raw, mode="rb"))
    except ImportError:
        import zstandard

        return ZstdBackend(
            lambda: zstandard.ZstdDecompressor().decompressobj(),
            lambda raw: zstandard.ZstdDecompressor().stream_reader(raw,
                                                                   read_across_frames=True))


def detect_format(media_type: str, title: str | None, head: bytes) -> Format:
    """The format of a layer with no format of its own: by mediaType, then an archive
    extension of its title, then (only for a title without an extension, or none) magic
    bytes in ``head`` (``b""`` skips sniffing); a given title must be valid (UsageError).

    A titled plain file is never turned into an archive by sniffing, nor is ``tool.gz``
    decompressed: the title's own extension and the mediaType decide (docs/publishing.md).
    """
    if title is not None:
        title = check_title(title)
    by_type = _by_media_type(media_type, title)
    if by_type is not None:
        return by_type
    by_name = format_by_extension(title or "")
    if by_name is not RAW:
        return by_name
    return sniff(head) if sniffable(title) else RAW


def sniffable(title: str | None) -> bool:
    """Whether a layer's bytes may decide its format: no title, or one without an extension
    (a name with one says what the file is)."""
    return title is None or "." not in title.rpartition("/")[2]
