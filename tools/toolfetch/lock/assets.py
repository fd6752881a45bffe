"""``lock`` for HTTP release assets: verify what the publisher declares, then pin sha256,
size and format, reusing what is pinned.

An asset is downloaded at lock time only when the lockfile holds no pin for exactly this
entry (the same URLs and path, and the same sha256, blake3, size and format when tools.yaml
gives them) and the cache holds no intact blob of the sha256 tools.yaml gives (it is hashed
before its size is pinned; a damaged one is dropped and downloaded again), or when asked
(``lock --refresh-assets``); so a second ``lock`` and ``lock --check`` need no network for
assets. The download streams into the cache, hashed as it is written (sha256, and BLAKE3 when
the entry declares it, in the same pass; constant memory), so the ``fetch`` that follows finds
the blob there. Every digest and size tools.yaml declares is checked before anything is
pinned (exit 3 naming tool, platform, URL and both values; a URL serving other bytes is
skipped for the next one); a missing sha256 is pinned, with a warning saying so. The format
is ``format``, else the URL's archive extension, else (a name without extension) the file's
magic bytes. The executable ``path`` is looked up inside a downloaded archive (exit 4 naming
the closest members), so a wrong one fails ``lock``, not every developer's fetch.

In the lockfile an asset is one layer: its sha256, size, format and title, so it lands in
the same content-addressed cache as registry blobs (an asset that is also published to a
registry is stored once) and its tree is keyed the same way. A plain or single compressed
file's title is its name in the tree: ``path`` if given, else the URL's last segment (without
the compression suffix). A declared BLAKE3 digest is kept beside the pin, so an edit of it in
tools.yaml is noticed and ``--refresh-assets`` checks it again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast
from urllib.parse import unquote, urlsplit

from toolfetch.cache.store import Cache
from toolfetch.core.digest import Digest
from toolfetch.core.errors import IntegrityError, ToolfetchError, UsageError
from toolfetch.lock.config import PlatformSpec
from toolfetch.lock.locked import LockedLayer, LockedPlatform
from toolfetch.lock.pathcheck import check_path
from toolfetch.oci.formats import (
    FORMATS,
    Format,
    check_title,
    detect_format,
    plain_name,
)
from toolfetch.registry.sources import SourceFactory

if TYPE_CHECKING:  # the transport (requests) is imported only when something is downloaded
    from toolfetch.registry.assets import AssetSource, Pin

log = logging.getLogger("toolfetch")


def url_basename(url: str) -> str:
    """The last path segment, percent-decoded: the asset's file name."""
    return unquote(urlsplit(url).path.rstrip("/").rpartition("/")[2])


def reusable(spec: PlatformSpec, old: LockedPlatform | None) -> bool:
    """Whether ``old`` pins exactly what ``spec`` asks for (no download needed): the same
    URLs and path, and whatever the entry declares (sha256, blake3, size, format)."""
    if old is None or old.urls != spec.urls or len(old.layers) != 1:
        return False
    layer = old.layers[0]
    return ((spec.sha256 is None or layer.digest.hex == spec.sha256)
            and (spec.blake3 is None or old.blake3 == spec.blake3)
            and (spec.size is None or layer.size == spec.size)
            and (spec.format is None or layer.unpack == spec.format)
            and old.path == (spec.path or layer.title))


@dataclass(frozen=True)
class _Pinned:
    digest: Digest
    size: int
    url: str
    head: bytes  # the first bytes, for format sniffing
    blob: Path | None  # where the bytes are, to look inside an archive


def lock_asset(tool: str, key: str, spec: PlatformSpec, old: LockedPlatform | None,
               sources: SourceFactory, cache: Cache | None, refresh: bool,
               config_path: Path) -> LockedPlatform:
    what = f"tool {tool} ({key})"
    if not refresh and reusable(spec, old):
        assert old is not None
        return old
    name = url_basename(spec.urls[0])
    with contextlib.ExitStack() as scratch:
        pinned, into = _cached(what, spec, sources, cache) if not refresh else (None, cache)
        if pinned is None:
            pinned = _download(what, spec, sources, into, config_path, scratch)
        fmt = FORMATS[spec.format] if spec.format else detect_format("", name, pinned.head)
        default_name = name if fmt.is_archive else plain_name(name, fmt)
        try:
            title = check_title(spec.path if not fmt.is_archive and spec.path else default_name)
        except ToolfetchError as e:
            raise UsageError(f"{what}: {e}; set `path` in {config_path}") from e
        path = spec.path or (None if fmt.is_archive else title)
        if path is None:
            raise UsageError(f"{what}: set `path` (the executable inside {name}) in "
                             f"{config_path}")
        if fmt.is_archive and pinned.blob is not None:
            _check_path_inside(what, pinned, fmt, path, config_path)
    if spec.sha256 is None:
        log.warning("%s: pinned sha256:%s (%d bytes) of %s%s", what, pinned.digest.hex,
                    pinned.size, pinned.url, " (its declared blake3 digest and size checked)"
                    if spec.blake3 else f"; add `sha256: {pinned.digest.hex}` to "
                    f"{config_path} to have lock check it")
    layer = LockedLayer(pinned.digest, pinned.size, fmt.media_type, title, fmt.name)
    return LockedPlatform("", path, None, None, (layer,), spec.urls, spec.blake3)


def _check_path_inside(what: str, pinned: _Pinned, fmt: Format, path: str,
                       config_path: Path) -> None:
    """``path`` must be a file or link of the archive just downloaded."""
    from toolfetch.cache.unpack import archive_members

    assert pinned.blob is not None
    check_path(what, path, archive_members(pinned.blob, fmt, what), pinned.url, config_path)


def _cached(what: str, spec: PlatformSpec, sources: SourceFactory,
            cache: Cache | None) -> tuple[_Pinned | None, Cache | None]:
    """A given sha256 whose blob the cache holds, hashed (streaming) before it is trusted:
    (pin, None), no download. A blob that does not hash to it (truncated, damaged) is dropped:
    (None, cache) to download into the cache as if it was absent, or (None, None) when it
    cannot be dropped (then the download goes through a temp file). Offline: exit 3. A
    declared blake3 digest needs the bytes hashed again: such a blob is downloaded anew."""
    if spec.sha256 is None or cache is None or spec.blake3 is not None:
        return None, cache
    digest = Digest.parse(f"sha256:{spec.sha256}")
    blob = cache.blob_path(digest)
    try:
        with open(blob, "rb", buffering=0) as f:
            head = f.read(512)
            f.seek(0)
            actual, size = Digest.of_open_file(f), os.fstat(f.fileno()).st_size
            if actual == digest and spec.size in (None, size):
                return _Pinned(digest, size, spec.urls[0], head, blob), None
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


def _declared_mismatch(spec: PlatformSpec, source: str, pinned: Pin,
                       config_path: Path) -> str | None:
    """Why the bytes ``source`` served are not the ones ``spec`` declares, or None."""
    if spec.size is not None and pinned.size != spec.size:
        return (f"{source} serves {pinned.size} bytes, but {config_path} declares size "
                f"{spec.size}")
    if spec.sha256 is not None and pinned.digest.hex != spec.sha256:
        return (f"{source} serves sha256:{pinned.digest.hex}, but {config_path} pins "
                f"sha256:{spec.sha256}")
    if spec.blake3 is not None and pinned.blake3 != spec.blake3:
        return (f"{source} serves blake3:{pinned.blake3}, but {config_path} declares "
                f"blake3:{spec.blake3}")
    return None


def _download(what: str, spec: PlatformSpec, sources: SourceFactory, cache: Cache | None,
              config_path: Path, scratch: contextlib.ExitStack) -> _Pinned:
    """The first URL that serves the asset (and, given them, the sha256, blake3 and size
    tools.yaml declares: checked as it streams, a longer body stops at the declared size),
    streamed into the cache when there is one, else through a temp file (removed when
    ``scratch`` closes)."""
    found: list[_Pinned] = []

    def write(f: BinaryIO, blob: Path | None) -> Digest:
        def attempt(source: AssetSource) -> Digest:
            pinned = source.pin(f, f"{what}: {source}", blake3=spec.blake3 is not None,
                                limit=spec.size)
            why = _declared_mismatch(spec, str(source), pinned, config_path)
            if why is not None:
                raise IntegrityError(f"{what}: {why}")
            f.flush()
            f.seek(0)
            found.append(_Pinned(pinned.digest, pinned.size, str(source), f.read(512), blob))
            return pinned.digest

        return sources.try_in_order(sources.url_sources(spec.urls), what, attempt)

    if cache is not None:
        digest = cache.store_new_blob(lambda f: write(f, None))
        pinned = found[-1]
        return _Pinned(pinned.digest, pinned.size, pinned.url, pinned.head,
                       cache.blob_path(digest))
    # closed with `scratch`, by the caller, once the archive was looked into
    temp = scratch.enter_context(tempfile.NamedTemporaryFile(prefix="tf-asset-"))  # noqa: SIM115
    write(cast(BinaryIO, temp), Path(temp.name))
    return found[-1]
