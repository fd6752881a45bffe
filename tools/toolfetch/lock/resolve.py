"""Resolving tools.yaml references into lockfile entries (:class:`Resolver`).

Tags are resolved upstream first, falling back to mirrors with a warning. Every
(tool, platform) resolution runs concurrently; :mod:`toolfetch.lock.update` writes the
lockfile only after all of them succeeded.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from toolfetch.cache.store import Cache
from toolfetch.core.digest import Digest
from toolfetch.core.errors import (
    IntegrityError,
    MultipleErrors,
    NotFoundError,
    ToolfetchError,
    UsageError,
    raise_all,
)
from toolfetch.core.platform import Platform
from toolfetch.core.progress import Progress
from toolfetch.core.reference import parse_any, rebase_layout_ref
from toolfetch.lock.config import Config, PlatformSpec, ToolSpec
from toolfetch.lock.lockfile import ANY_PLATFORM, LockedLayer, LockedPlatform, LockedTool, Lockfile
from toolfetch.lock.pathcheck import check_path
from toolfetch.oci.formats import (
    FORMATS,
    RAW,
    check_title,
    detect_format,
    sniff,
    sniffable,
)
from toolfetch.oci.manifest import (
    ANNOTATION_UNPACK,
    IMAGE_CONFIG_TYPES,
    MAX_CONFIG_BYTES,
    Descriptor,
    Manifest,
)
from toolfetch.registry.sources import ContentSource, SourceFactory, parse_mirror_map

log = logging.getLogger("toolfetch")


@dataclass(frozen=True)
class _Job:
    tool: ToolSpec
    ref: str  # as written, relative to tools.yaml ("" for an HTTP asset)
    path: str | None
    wanted: tuple[Platform, ...] | None  # None: every platform the index offers
    fixed_key: str | None  # per-platform mapping: the platform this ref serves
    asset: PlatformSpec | None = None  # an HTTP release asset (lock.assets)


class Resolver:
    def __init__(self, config: Config, lockfile_path: Path, jobs: int = 8,
                 progress: bool = False, *, old: Lockfile | None = None,
                 cache: Cache | None = None, refresh_assets: bool = False,
                 offline: bool = False) -> None:
        self.old = old  # the lockfile as it was: pinned assets are reused from it
        self.cache = cache  # where assets downloaded for pinning go
        self.refresh_assets = refresh_assets
        self.config = config
        self.progress = progress
        self.lockfile_path = lockfile_path
        self.jobs = jobs
        mirrors = parse_mirror_map(config.mirrors, config.path.parent, where=str(config.path))
        self.sources = SourceFactory(mirrors, offline=offline)  # offline: layouts only
        self.ref_overrides: dict[str, str] = {}  # tools with `version`: the tag chosen

    def _ref_for_lock(self, ref: str) -> str:
        return rebase_layout_ref(ref, self.config.path.parent, self.lockfile_path.parent)

    def _jobs_for(self, tool: ToolSpec) -> list[_Job]:
        if tool.per_platform is not None:
            return [_Job(tool, spec.ref or "", spec.path, (p,), p.key,
                         spec if spec.is_asset else None)
                    for p, spec in sorted(tool.per_platform.items())]
        assert tool.ref is not None
        wanted = tool.platform_list or self.config.platforms
        ref = self.ref_overrides.get(tool.name, tool.ref)
        return [_Job(tool, ref, tool.path, wanted, None)]

    def resolve(self, names: Iterable[str]) -> dict[str, LockedTool]:
        names = list(names)
        jobs = [(name, job) for name in names for job in self._jobs_for(self.config.tools[name])]
        progress = Progress("lock", len(jobs), self.progress and len(jobs) > 1, "refs")

        def job_done(job: _Job) -> dict[str, LockedPlatform]:
            try:
                return self._resolve_job(job)
            finally:
                progress.advance(1)

        with ThreadPoolExecutor(self.jobs, thread_name_prefix="lock") as pool:
            futures = [(name, pool.submit(job_done, job)) for name, job in jobs]
        progress.close()
        results: dict[str, dict[str, LockedPlatform]] = {n: {} for n in names}
        errors: dict[str, ToolfetchError] = {}
        for name, fut in futures:
            exc = fut.exception()
            if isinstance(exc, ToolfetchError):
                errors.setdefault(name, _naming_tool(exc, name))
            elif exc is not None:
                raise exc
            else:
                results[name].update(fut.result())
        raise_all([errors[n] for n in names if n in errors])  # in the order asked for
        return {name: LockedTool(name, self.config.tools[name].to_lock_fields(), results[name])
                for name in names}

    def _resolve_job(self, job: _Job) -> dict[str, LockedPlatform]:
        if job.asset is not None:
            from toolfetch.lock.assets import lock_asset

            assert job.fixed_key is not None
            old_tool = self.old.tools.get(job.tool.name) if self.old else None
            old = old_tool.platforms.get(job.fixed_key) if old_tool else None
            return {job.fixed_key: lock_asset(job.tool.name, job.fixed_key, job.asset, old,
                                              self.sources, self.cache, self.refresh_assets,
                                              self.config.path)}
        what = f"tool {job.tool.name} ({job.ref})"
        try:
            ref = parse_any(job.ref, self.config.path.parent)
        except UsageError as e:
            raise UsageError(f"{what}: {e}") from e

        def top(source: ContentSource) -> tuple[ContentSource, Manifest]:
            return source, source.get_manifest(ref.target, ref.digest)

        source, manifest = self.sources.first_success(ref, what, top, upstream_first=True)
        lock_ref = self._ref_for_lock(job.ref)
        if not manifest.is_index:
            keys = self._single_manifest_keys(job, image_platform(source, manifest, what), what)
            entry = self._entry(job, lock_ref, source, manifest, None, what)
            return dict.fromkeys(keys, entry)
        out: dict[str, LockedPlatform] = {}
        if job.wanted is None:
            targets = [(_key(d.platform), d) for d in manifest.platform_manifests(what)
                       if d.platform is not None]
            if not targets:
                raise NotFoundError(f"{what}: index {manifest.digest} names no platforms")
        else:
            targets = [(p.key, manifest.select(p, what)) for p in job.wanted]
        children: dict[Digest, Manifest] = {}
        for key, desc in targets:
            if key in out:  # an index may list a platform twice; its first entry wins
                if out[key].manifest != desc.digest:
                    log.warning("%s: index %s lists %s more than once (%s, %s); locked the "
                                "first (os.version and os.features are not matched)", what,
                                manifest.digest, key, out[key].manifest, desc.digest)
                continue
            child = children.get(desc.digest) or children.setdefault(
                desc.digest, source.get_manifest(str(desc.digest), desc.digest))  # once each
            if child.is_index:
                raise UsageError(f"{what}: nested index {desc.digest} for {key} is not supported")
            # The image's own config outranks the index's claim: locked through the index or
            # by its digest, one image gets one verdict, and no platform gets another's binary.
            claimed = image_platform(source, child, f"{what} [{key}]")
            if claimed is not None and not Platform.parse(key).accepts(claimed):
                raise IntegrityError(f"{what}: index {manifest.digest} lists {desc.digest} for "
                                     f"{key}, but that image's config says {claimed}")
            out[key] = self._entry(job, lock_ref, source, child, manifest, f"{what} [{key}]")
        return out

    @staticmethod
    def _single_manifest_keys(job: _Job, offered: Platform | None, what: str) -> list[str]:
        """The lock keys of a ref that names one manifest. An artifact that names no platform
        is locked under ``"*"``, unless the tool lists its own ``platforms``: then under
        each of those and nowhere else (a darwin machine is never handed what a tool says is
        a linux binary). An image whose config names a platform is locked under that one,
        which every platform the tool wants must accept."""
        if offered is None:
            if job.fixed_key:
                return [job.fixed_key]
            listed = job.tool.platform_list
            return [p.key for p in listed] if listed else [ANY_PLATFORM]
        wanted = [Platform.parse(job.fixed_key)] if job.fixed_key else list(job.wanted or ())
        for platform in wanted:
            if not platform.accepts(offered):
                raise NotFoundError(f"{what} is a single-platform image for {offered}, "
                                    f"not {platform}; it offers: {offered}")
        return [job.fixed_key or _key(offered)]

    def _entry(self, job: _Job, lock_ref: str, source: ContentSource, manifest: Manifest,
               index: Manifest | None, what: str) -> LockedPlatform:
        layers = tuple(self._layer(source, d, what) for d in manifest.layers(what))
        if not layers:
            raise UsageError(f"{what}: manifest {manifest.digest} has no layers")
        path = job.path
        if path is None:
            titles = [layer.title for layer in layers
                      if not FORMATS[layer.unpack].is_archive and layer.title]
            if len(layers) == 1 and titles:
                path = titles[0]
            else:
                raise UsageError(f"{what}: set `path` (the executable inside the artifact) in "
                                 f"{self.config.path}")
        self._check_path(layers, path, what)
        return LockedPlatform(lock_ref, path, manifest.digest,
                              index.digest if index else None, layers)

    def _check_path(self, layers: tuple[LockedLayer, ...], path: str, what: str) -> None:
        """``path`` must be a file title or, when every archive layer's blob is in the cache
        already (free to read), a member of one (exit 4); archives not cached are checked at
        fetch."""
        from toolfetch.cache.unpack import archive_members

        names = {str(layer.title) for layer in layers if not FORMATS[layer.unpack].is_archive}
        for layer in layers:
            if FORMATS[layer.unpack].is_archive:
                blob = self.cache.blob_path(layer.digest) if self.cache else None
                if blob is None or not blob.is_file():
                    return
                names |= archive_members(blob, FORMATS[layer.unpack], what)
        check_path(what, path, names, "the artifact", self.config.path)

    def _layer(self, source: ContentSource, desc: Descriptor, what: str) -> LockedLayer:
        title = desc.title
        if title is not None:
            try:
                title = check_title(title)
            except ToolfetchError as e:  # the registry serves an unsafe artifact: exit 3
                raise IntegrityError(f"{what}: layer {desc.digest}: {e}") from e
        if desc.annotations.get(ANNOTATION_UNPACK) == "true":
            fmt = "tar+gzip"
        else:
            try:
                detected = detect_format(desc.media_type, title, b"")
                if detected is RAW and sniffable(title):  # generic: the bytes tell
                    detected = sniff(source.read_blob_head(desc.digest))
            except UsageError as e:
                raise IntegrityError(f"{what}: layer {desc.digest}: {e}") from e
            fmt = detected.name
        if not FORMATS[fmt].is_archive and not title:
            raise UsageError(f"{what}: layer {desc.digest} is a plain file without an "
                             "org.opencontainers.image.title annotation")
        return LockedLayer(desc.digest, desc.size, desc.media_type, title, fmt)


def _naming_tool(e: ToolfetchError, name: str) -> ToolfetchError:
    """The error inside the frame ``tool NAME`` (shown unless the message begins with it:
    ``tool NAME (ref) [platform]: …``); a MultipleErrors, whose errors name their sources,
    as it is."""
    return e if isinstance(e, MultipleErrors) else e.context(f"tool {name}")


def image_platform(source: ContentSource, manifest: Manifest, what: str) -> Platform | None:
    """The platform a container image's config names (None for artifacts, whose config is
    empty or not an image config, and for images whose config names none)."""
    import io
    import json

    config = manifest.config(what)
    if config is None or config.media_type not in IMAGE_CONFIG_TYPES:
        return None
    if config.size > MAX_CONFIG_BYTES:
        raise IntegrityError(f"{what}: image config {config.digest} is larger than "
                             f"{MAX_CONFIG_BYTES} bytes")
    buffer = io.BytesIO()
    source.fetch_blob(config.digest, config.size, buffer, f"{what}: image config")
    try:
        data = json.loads(buffer.getvalue())
        os_name, arch = data.get("os"), data.get("architecture")
        variant = data.get("variant") or ""
    except (ValueError, AttributeError, RecursionError) as e:
        raise IntegrityError(f"{what}: image config {config.digest} is not a JSON object") from e
    if not (isinstance(os_name, str) and os_name and isinstance(arch, str) and arch):
        return None
    try:
        return Platform.parse(f"{os_name}/{arch}/{variant}" if variant else f"{os_name}/{arch}")
    except UsageError as e:
        raise IntegrityError(f"{what}: image config {config.digest} names a malformed "
                             f"platform: {e}") from e


def _key(p: Platform | None) -> str:
    assert p is not None
    return p.key
