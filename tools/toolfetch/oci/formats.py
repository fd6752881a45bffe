"""Layer formats: which of raw, tar, tar+gzip, tar+zstd or zip a layer is, and safe names.

The format is chosen by mediaType, then title extension, then magic bytes (docs/design.md,
"Unpacking"); ``lock`` records it so ``fetch`` never guesses. Names (titles, archive members)
are relative ``/``-paths without ``..``, drive letters, backslashes or NUL bytes.
"""

from __future__ import annotations

from toolfetch.core.errors import UsageError

UNPACK_FORMATS = ("raw", "tar", "tar+gzip", "tar+zstd", "zip")
ORAS_DEFAULT_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar"

_MEDIA_SUFFIXES = (
    (("tar+gzip", "tar.gzip", "tar+gz"), "tar+gzip"),
    (("tar+zstd", "tar.zstd"), "tar+zstd"),
    (("/zip", "+zip", "x-zip-compressed"), "zip"),
    (("/tar", "/x-tar", ".tar", "+tar"), "tar"),
)
_EXTENSIONS = ((".tar.gz", "tar+gzip"), (".tgz", "tar+gzip"), (".tar.zst", "tar+zstd"),
               (".tar.zstd", "tar+zstd"), (".tzst", "tar+zstd"), (".tar", "tar"), (".zip", "zip"))
# The media type toolfetch writes for a layer of each format (push, publish, HTTP assets).
FORMAT_MEDIA_TYPES = {
    "raw": "application/octet-stream",
    "tar": "application/vnd.oci.image.layer.v1.tar",
    "tar+gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "tar+zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
    "zip": "application/zip",
}
_MAGIC = ((b"\x1f\x8b", "tar+gzip"), (b"\x28\xb5\x2f\xfd", "tar+zstd"), (b"PK\x03\x04", "zip"),
          (b"PK\x05\x06", "zip"))


def format_by_extension(name: str) -> str:
    """The format a file name's extension says (``raw`` when it says none)."""
    lowered = name.lower()
    return next((fmt for ext, fmt in _EXTENSIONS if lowered.endswith(ext)), "raw")


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


def check_title(title: str) -> str:
    """Validate a layer title (a relative file name) and return it normalised."""
    try:
        parts = split_relative(title)
    except ValueError as e:
        raise UsageError(f"invalid title {title!r}: it {e}; titles are relative names") from e
    if not parts or title.endswith("/"):
        raise UsageError(f"invalid title {title!r}: it names no file")
    return "/".join(parts)


def detect_format(media_type: str, title: str | None, head: bytes) -> str:
    """The unpack format of a layer: by mediaType, then title extension, then magic bytes.

    ``head`` is the start of the blob (512 bytes are enough; ``b""`` skips sniffing).  "raw" is
    returned even without a title, so a caller can sniff afterwards; a raw layer must have one
    (:func:`toolfetch.cache.unpack.unpack_layer` refuses it otherwise) and a given title must be
    valid (UsageError).

    ORAS gives every pushed file the mediaType ``application/vnd.oci.image.layer.v1.tar``, so
    that type means tar only when the layer has no title; with a title it says nothing.
    """
    base = media_type.split(";", 1)[0].strip().lower()
    if base == ORAS_DEFAULT_MEDIA_TYPE and title is None:
        return "tar"
    if base != ORAS_DEFAULT_MEDIA_TYPE:
        for suffixes, fmt in _MEDIA_SUFFIXES:
            if base.endswith(suffixes):
                return fmt
    by_name = format_by_extension(title or "")
    if by_name != "raw":
        return by_name
    for magic, fmt in _MAGIC:
        if head.startswith(magic):
            return fmt
    if head[257:262] == b"ustar":
        return "tar"
    if title is not None:
        check_title(title)
    return "raw"
