"""``export`` and ``import``: a lockfile's closure as an OCI image layout, and back.

``export`` writes every index, manifest, config and layer the lockfile pins (for this host,
``--platform``, or ``--all-platforms``) into an OCI image layout. Each root (the index a
platform came from, else its manifest) is listed in ``index.json`` annotated
``org.opencontainers.image.ref.name`` with its reference as written in the lockfile (an
``oci-layout:`` reference, not a valid name, as ``oci-layout/<dir>:<tag>``: :func:`ref_name`);
an HTTP asset tool is an artifact index named ``asset/<tool>``
(:mod:`toolfetch.ops.asset_artifacts`). Docker-typed roots stay byte-exact (the lockfile pins
their digests), so skopeo and umoci, which open OCI-typed roots only, cannot open them.
Content comes from the cache when present, else from the lockfile's sources (mirrors,
upstream, an asset's URLs); everything is verified by digest. The layout works as an
``oci-layout:`` mirror on an air-gapped machine, as a ``copy`` source, or through ``import``
into the cache, after which ``fetch --offline`` succeeds.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from toolfetch.cache.store import Cache
from toolfetch.core.digest import Digest, StreamVerifier, copy_verified
from toolfetch.core.errors import NotFoundError
from toolfetch.core.platform import Platform
from toolfetch.core.progress import ByteReport, Progress
from toolfetch.core.reference import LAYOUT_PREFIX, AnyReference, LayoutReference, parse_any
from toolfetch.lock.lockfile import Lockfile
from toolfetch.oci.layout import LayoutSource
from toolfetch.oci.manifest import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    EMPTY_JSON,
    INDEX_TYPES,
    MANIFEST_TYPES,
    OCI_INDEX,
    Descriptor,
    Manifest,
    empty_config,
)
from toolfetch.ops.asset_artifacts import asset_index, asset_manifest
from toolfetch.ops.plan import Want, plan
from toolfetch.registry.sources import BlobSource, ContentSource, SourceFactory, parse_mirror_map

log = logging.getLogger("toolfetch")
ASSET_ROOT = "asset/"  # index.json names an HTTP asset tool's index asset/<tool>


@dataclass(frozen=True)
class BundleStats:
    """What ``export`` or ``import`` did: the roots (``index.json``'s names), how many blobs
    it wrote, how many of those came from the cache (export), and how many blobs the layout
    references but lacks (import of a partial export)."""

    roots: tuple[str, ...] = ()
    blobs: int = 0
    from_cache: int = 0
    skipped: int = 0


@dataclass
class _Tally:
    """The counts of :class:`BundleStats` while they grow."""

    roots: list[str] = field(default_factory=list)
    blobs: int = 0
    from_cache: int = 0
    skipped: int = 0

    def stats(self) -> BundleStats:
        return BundleStats(tuple(self.roots), self.blobs, self.from_cache, self.skipped)


class Exporter:
    def __init__(self, lockfile: Lockfile, layout: LayoutSource, cache: Cache | None,
                 progress: Progress | None = None, *, offline: bool = False) -> None:
        self.lockfile = lockfile
        self.progress = progress or Progress("", 0, False)
        self.layout = layout
        self.cache = cache
        self.sources = SourceFactory(parse_mirror_map(lockfile.mirrors, lockfile.base_dir,
                                                      where=str(lockfile.path)),
                                     offline=offline)
        self.tally = _Tally()

    def export(self, platform: Platform | None) -> BundleStats:

        wants = plan(self.lockfile, None, platform, platform is None)
        self.layout.init()
        roots: dict[str, Descriptor] = {}
        assets: dict[str, list[tuple[str, bytes]]] = {}
        for want in wants:
            entry = want.entry
            if entry.is_asset:
                assets.setdefault(want.tool, []).append((want.key, self._asset(want)))
                continue
            ref = parse_any(entry.ref, self.lockfile.base_dir)
            assert entry.manifest is not None  # a registry entry
            manifest = self._manifest(ref, entry.manifest, want.what)
            for desc in manifest.blobs(want.what):
                self._blob(functools.partial(self.sources.sources, ref), desc.digest,
                           desc.size, f"{want.what}: blob {desc.digest}", want.tool)
            root = manifest
            if entry.index is not None:
                root = self._manifest(ref, entry.index, want.what)
            roots.setdefault(entry.ref, Descriptor(root.media_type, root.digest, len(root.raw)))
        for tool, manifests in assets.items():
            raw = asset_index(manifests)
            roots[f"{ASSET_ROOT}{tool}"] = Descriptor(OCI_INDEX, self.layout.put_bytes(raw),
                                                      len(raw))
        named: dict[str, Descriptor] = {}
        for written, desc in sorted(roots.items()):
            name = ref_name(written)
            if named.get(name, desc).digest != desc.digest:  # two layouts' names met
                name = f"{name}@{desc.digest}"
            named[name] = desc
        for name, desc in sorted(named.items()):
            self.layout.tag(desc, name)
            self.tally.roots.append(name)
        docker = sorted(n for n, d in named.items() if d.media_type in DOCKER_TYPES)
        if docker:
            log.warning("%s: %s %s Docker-typed (kept byte-exact: the lockfile pins their "
                        "digests); skopeo's oci: transport and umoci open only OCI-typed "
                        "roots, toolfetch (import, copy, oci-layout: mirrors) opens every "
                        "root", self.layout, ", ".join(docker),
                        "is" if len(docker) == 1 else "are")
        return self.tally.stats()

    def _manifest(self, ref: AnyReference, digest: Digest, what: str) -> Manifest:
        def get(source: ContentSource) -> Manifest:
            return source.get_manifest(str(digest), digest)

        manifest = self.sources.first_success(ref, f"{what}: manifest {digest}", get)
        self.layout.put_bytes(manifest.raw, digest)
        return manifest

    def _asset(self, want: Want) -> bytes:
        """An HTTP asset's blob and its artifact manifest (:mod:`asset_artifacts`)."""
        layer = want.entry.layers[0]
        self._blob(lambda: self.sources.asset_sources(want.entry.urls, want.tool),
                   layer.digest, layer.size, f"{want.what}: blob {layer.digest}", want.tool)
        empty = empty_config()
        self.layout.put_bytes(EMPTY_JSON, empty.digest)
        raw = asset_manifest(want.entry)
        self.layout.put_bytes(raw)
        return raw

    def _blob(self, sources: Callable[[], Sequence[tuple[str, BlobSource]]], digest: Digest,
              size: int, what: str, name: str) -> None:
        """Into the layout from the cache, else from ``sources()`` (made only when needed).

        A blob already in the layout is kept only if its size and sha256 match; a damaged
        one (a truncated copy, a disk error) is replaced, atomically."""
        if self.layout.has_intact_blob(digest, size):
            return
        self.progress.expect(size)
        report = self.progress.reporter(name)
        if self.layout.blob_exists(digest):
            log.warning("%s: the copy in %s is damaged; replacing it", what, self.layout)
        cached = self.cache.blob_path(digest) if self.cache is not None else None
        if cached is not None and cached.is_file():
            self.layout.put_stream(digest, lambda f: _copy_verified(cached, f, digest, size, what))
            report(size)
            self.tally.from_cache += 1
        else:
            def fetch(source: BlobSource) -> None:
                self.layout.put_stream(digest, lambda f: source.fetch_blob(digest, size, f, what,
                                                                           report))

            self.sources.try_in_order(sources(), what, fetch)
        self.tally.blobs += 1


# The image-layout spec's grammar for org.opencontainers.image.ref.name, which skopeo and
# umoci enforce: alphanumeric components joined by one of -._:@+ (or --), then "/".
_COMPONENT = r"[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*"
_REF_NAME = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
DOCKER_TYPES = frozenset({DOCKER_LIST, DOCKER_MANIFEST})


def ref_name(ref: str) -> str:
    """The ``ref.name`` a root gets: its reference as the lockfile writes it when that is a
    valid name (every registry reference); an ``oci-layout:DIR[:tag]`` reference, whose
    ``..``, ``/`` and ``:`` are not, becomes ``oci-layout/<DIR's names>[:tag|@digest]``."""
    if _REF_NAME.fullmatch(ref):
        return ref
    if ref.startswith(LAYOUT_PREFIX):
        layout = LayoutReference.parse(ref)
        parts = [re.sub(r"[^A-Za-z0-9]+", "-", p).strip("-") for p in layout.path.parts]
        name = "/".join(["oci-layout", *(p for p in parts if p)])
        name += (f":{layout.tag}" if layout.tag else "") + (
            f"@{layout.digest}" if layout.digest else "")
    else:
        name = ref
    name = re.sub(r"[^A-Za-z0-9._:@+/-]+", "-", name)  # anything else (an IPv6 host's [])
    return name if _REF_NAME.fullmatch(name) else f"root-{hashlib.sha256(ref.encode()).hexdigest()}"


def _copy_verified(src: Path, out: BinaryIO, digest: Digest, size: int, what: str) -> None:
    with StreamVerifier(digest, size, what) as verifier, src.open("rb", buffering=0) as f:
        copy_verified(f.readinto, out, verifier)
        verifier.finish()


def import_layout(path: Path, cache: Cache, progress: bool = False) -> BundleStats:
    """Store every blob reachable from the layout's ``index.json`` in the cache, verified."""
    bar = Progress("import", 0, progress)
    try:
        return _import(LayoutSource(path), cache, bar)
    finally:
        bar.close()


def _import(layout: LayoutSource, cache: Cache, progress: Progress) -> BundleStats:
    layout.check()
    cache.ensure()
    tally = _Tally()
    seen: set[Digest] = set()
    stack = [(d, True) for d in layout.entries()]
    for d in layout.entries():
        name = d.annotations.get("org.opencontainers.image.ref.name")
        tally.roots.append(name or str(d.digest))
    while stack:
        desc, is_root = stack.pop()
        if desc.digest in seen:
            continue
        seen.add(desc.digest)
        what = f"{layout}: blob {desc.digest}"
        if not layout.blob_exists(desc.digest):
            if is_root:
                raise NotFoundError(f"{what}: listed in index.json but missing")
            log.debug("%s: not in the layout (partial export); skipped", what)
            tally.skipped += 1
            continue
        if desc.media_type in INDEX_TYPES or desc.media_type in MANIFEST_TYPES:
            manifest = layout.get_manifest(str(desc.digest), desc.digest)
            _store_bytes(cache, manifest.raw, desc.digest)
            children = (manifest.manifests(what) if manifest.is_index
                        else manifest.blobs(what))
            stack.extend((c, False) for c in children)
        else:
            progress.expect(desc.size)
            name = desc.title or desc.digest.short
            _store_from(cache, layout, desc, what, progress.reporter(name))
        tally.blobs += 1
    return tally.stats()


def _store_bytes(cache: Cache, raw: bytes, digest: Digest) -> None:
    def write(f: BinaryIO) -> None:
        f.write(raw)

    cache.store_blob(digest, write)


def _store_from(cache: Cache, layout: LayoutSource, desc: Descriptor, what: str,
                report: ByteReport) -> None:
    def write(f: BinaryIO) -> None:
        layout.fetch_blob(desc.digest, desc.size, f, what, report)

    cache.store_blob(desc.digest, write)


def export(lockfile_path: Path, cache: Cache, directory: Path,
           platform: Platform | None, progress: bool = False,
           offline: bool = False) -> BundleStats:
    """Export what the lockfile needs (``platform``, or every platform when None);
    ``offline``: what the cache and layout mirrors hold, else UnreachableError."""
    bar = Progress("export", 0, progress)
    exporter = Exporter(Lockfile.load(lockfile_path), LayoutSource(directory),
                        cache if cache.root.exists() else None, bar, offline=offline)
    try:
        return exporter.export(platform)
    finally:
        bar.close()
