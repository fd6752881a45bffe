"""``lock`` for HTTP release assets: pin sha256, size and format, reusing what is pinned.

An asset is downloaded at lock time only when the lockfile holds no pin for exactly this
entry (the same URLs, path and format, and the same sha256 when tools.yaml gives one) and
the cache holds no intact blob of the sha256 tools.yaml gives (it is hashed before its size
is pinned; a damaged one is dropped and downloaded again), or when asked (``lock
--refresh-assets``); so a second ``lock`` and ``lock --check`` need no network for assets. A URL
serving other bytes than a given sha256 is skipped for the next one. The download streams
into the cache, hashed as it is written (constant memory), so the ``fetch`` that follows
finds the blob there. A sha256 given in tools.yaml is checked (exit 3 on a mismatch); one
that is missing is pinned, with a warning saying so. The format is ``format``, else the
URL's extension, else the file's magic bytes.

In the lockfile an asset is one layer: its sha256, size, format and title, so it lands in
the same content-addressed cache as registry blobs (an asset that is also published to a
registry is stored once) and its tree is keyed the same way. A raw asset's title is the
file's name in the tree: ``path`` if given, else the URL's last segment.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import unquote, urlsplit

from toolfetch.cache.store import Cache
from toolfetch.core.digest import Digest
from toolfetch.core.errors import IntegrityError, ToolfetchError, UsageError
from toolfetch.lock.config import PlatformSpec
from toolfetch.lock.lockfile import LockedLayer, LockedPlatform
from toolfetch.oci.formats import FORMAT_MEDIA_TYPES, check_title, detect_format
from toolfetch.registry.sources import SourceFactory

if TYPE_CHECKING:  # the transport (requests) is imported only when something is downloaded
    from toolfetch.registry.assets import AssetSource

log = logging.getLogger("toolfetch")
CHUNK = 1 << 20


def url_basename(url: str) -> str:
    """The last path segment, percent-decoded: the asset's file name."""
    return unquote(urlsplit(url).path.rstrip("/").rpartition("/")[2])


def reusable(spec: PlatformSpec, old: LockedPlatform | None) -> bool:
    """Whether ``old`` pins exactly what ``spec`` asks for (no download needed)."""
    if old is None or old.urls != spec.urls or len(old.layers) != 1:
        return False
    layer = old.layers[0]
    return ((spec.sha256 is None or layer.digest.hex == spec.sha256)
            and (spec.format is None or layer.unpack == spec.format)
            and old.path == (spec.path or layer.title))


@dataclass(frozen=True)
class _Pinned:
    digest: Digest
    size: int
    url: str
    head: bytes  # the first bytes, for format sniffing


def lock_asset(tool: str, key: str, spec: PlatformSpec, old: LockedPlatform | None,
               sources: SourceFactory, cache: Cache | None, refresh: bool,
               config_path: Path) -> LockedPlatform:
    what = f"tool {tool} ({key})"
    if not refresh and reusable(spec, old):
        assert old is not None
        return old
    name = url_basename(spec.urls[0])
    pinned, into = _cached(what, spec, sources, cache) if not refresh else (None, cache)
    if pinned is None:
        pinned = _download(what, spec, sources, into, config_path)
    fmt = spec.format or detect_format("", name, pinned.head)
    try:
        title = check_title(spec.path if fmt == "raw" and spec.path else name)
    except ToolfetchError as e:
        raise UsageError(f"{what}: {e}; set `path` in {config_path}") from e
    path = spec.path or (title if fmt == "raw" else None)
    if path is None:
        raise UsageError(f"{what}: set `path` (the executable inside {name}) in {config_path}")
    if spec.sha256 is None:
        log.warning("%s: pinned sha256:%s (%d bytes) of %s; add `sha256: %s` to %s to have "
                    "lock check it", what, pinned.digest.hex, pinned.size, pinned.url,
                    pinned.digest.hex, config_path)
    layer = LockedLayer(pinned.digest, pinned.size, FORMAT_MEDIA_TYPES[fmt], title, fmt)
    return LockedPlatform("", path, None, None, (layer,), spec.urls)


def _cached(what: str, spec: PlatformSpec, sources: SourceFactory,
            cache: Cache | None) -> tuple[_Pinned | None, Cache | None]:
    """A given sha256 whose blob the cache holds, hashed (streaming) before it is trusted:
    (pin, None), no download. A blob that does not hash to it (truncated, damaged) is dropped:
    (None, cache) to download into the cache as if it was absent, or (None, None) when it
    cannot be dropped (then the download goes through a temp file). Offline: exit 3."""
    if spec.sha256 is None or cache is None:
        return None, cache
    digest = Digest.parse(f"sha256:{spec.sha256}")
    blob = cache.blob_path(digest)
    try:
        with open(blob, "rb", buffering=0) as f:
            head = f.read(512)
            f.seek(0)
            actual, size = Digest.of_open_file(f), os.fstat(f.fileno()).st_size
            if actual == digest:
                return _Pinned(digest, size, spec.urls[0], head), None
            damage = f"{what}: the cached blob {digest} is damaged ({size} bytes, {actual})"
            if sources.offline:
                raise IntegrityError(f"{damage}, and offline it cannot be downloaded again")
            log.warning("%s; dropped, downloading it again", damage)
            try:
                cache.drop_damaged_blob(digest, f)
            except OSError as e:
                log.warning("%s: cannot drop %s: %s", what, blob, e)
                return None, None
    except OSError:
        return None, cache
    return None, cache


def _download(what: str, spec: PlatformSpec, sources: SourceFactory, cache: Cache | None,
              config_path: Path) -> _Pinned:
    """The first URL that serves the asset (and, given one, the sha256 tools.yaml pins),
    streamed into the cache when there is one, else through a temp file that is removed."""
    found: list[_Pinned] = []

    def write(f: BinaryIO) -> Digest:
        def attempt(source: AssetSource) -> Digest:
            digest, size = source.pin(f, f"{what}: {source}")
            if spec.sha256 is not None and digest.hex != spec.sha256:
                raise IntegrityError(f"{what}: {source} serves sha256:{digest.hex}, but "
                                     f"{config_path} pins sha256:{spec.sha256}")
            f.flush()
            f.seek(0)
            found.append(_Pinned(digest, size, str(source), f.read(512)))
            return digest

        return sources.try_in_order(sources.url_sources(spec.urls), what, attempt)

    if cache is not None:
        cache.store_new_blob(write)
    else:
        with tempfile.TemporaryFile() as f:
            write(f)
    return found[-1]
