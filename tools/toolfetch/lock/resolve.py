"""``toolfetch lock``: resolve tools.yaml references into a pinned lockfile.

Tags are resolved upstream first, falling back to mirrors with a warning. Every
(tool, platform) resolution runs concurrently; the lockfile is written only after all of
them succeeded, atomically, byte-identical for unchanged inputs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from toolfetch.cache.store import Cache
from toolfetch.core.digest import Digest
from toolfetch.core.errors import (
    IntegrityError,
    MultipleErrors,
    NotFoundError,
    OutOfDateError,
    ToolfetchError,
    UsageError,
)
from toolfetch.core.platform import Platform
from toolfetch.core.progress import Progress
from toolfetch.core.reference import parse_any, rebase_layout_ref
from toolfetch.lock.config import Config, PlatformSpec, ToolSpec
from toolfetch.lock.lockfile import ANY_PLATFORM, LockedLayer, LockedPlatform, LockedTool, Lockfile
from toolfetch.oci.formats import ORAS_DEFAULT_MEDIA_TYPE, check_title, detect_format
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
                 cache: Cache | None = None, refresh_assets: bool = False) -> None:
        self.old = old  # the lockfile as it was: pinned assets are reused from it
        self.cache = cache  # where assets downloaded for pinning go
        self.refresh_assets = refresh_assets
        self.config = config
        self.progress = progress
        self.lockfile_path = lockfile_path
        self.jobs = jobs
        mirrors = parse_mirror_map(config.mirrors, config.path.parent, where=str(config.path))
        self.sources = SourceFactory(mirrors)
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
        progress = Progress("locking", len(jobs), self.progress and len(jobs) > 1, "refs")

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
        if errors:
            ordered = [errors[n] for n in names if n in errors]
            raise ordered[0] if len(ordered) == 1 else MultipleErrors(ordered)
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
            key = self._single_manifest_key(job, image_platform(source, manifest, what), what)
            entry = self._entry(job, lock_ref, source, manifest, None, what)
            return {key: entry}
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
    def _single_manifest_key(job: _Job, offered: Platform | None, what: str) -> str:
        """The lock key of a ref that names one manifest: ``"*"`` unless it is an image
        whose config names a platform; then that platform, which every platform the tool
        wants must accept (a darwin machine is never handed a linux binary)."""
        if offered is None:
            return job.fixed_key or ANY_PLATFORM
        wanted = [Platform.parse(job.fixed_key)] if job.fixed_key else list(job.wanted or ())
        for platform in wanted:
            if not platform.accepts(offered):
                raise NotFoundError(f"{what} is a single-platform image for {offered}, "
                                    f"not {platform}; it offers: {offered}")
        return job.fixed_key or _key(offered)

    def _entry(self, job: _Job, lock_ref: str, source: ContentSource, manifest: Manifest,
               index: Manifest | None, what: str) -> LockedPlatform:
        layers = tuple(self._layer(source, d, what) for d in manifest.layers(what))
        if not layers:
            raise UsageError(f"{what}: manifest {manifest.digest} has no layers")
        path = job.path
        if path is None:
            titles = [layer.title for layer in layers if layer.unpack == "raw" and layer.title]
            if len(layers) == 1 and titles:
                path = titles[0]
            else:
                raise UsageError(f"{what}: set `path` (the executable inside the artifact) in "
                                 f"{self.config.path}")
        titles = sorted(str(layer.title) for layer in layers)
        if all(layer.unpack == "raw" for layer in layers) and path not in titles:
            import difflib

            close = difflib.get_close_matches(path, titles, n=3, cutoff=0.5)
            hint = f"closest: {', '.join(close)}; " if close else ""
            shown = ", ".join(titles[:20]) + (" …" if len(titles) > 20 else "")
            raise NotFoundError(f"{what}: path {path!r} is not among the artifact's files "
                                f"({hint}it has: {shown}); fix `path` in {self.config.path}")
        return LockedPlatform(lock_ref, path, manifest.digest,
                              index.digest if index else None, layers)

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
            fmt = detect_format(desc.media_type, title, b"")
            generic = fmt == "raw" or (desc.media_type == ORAS_DEFAULT_MEDIA_TYPE and not (
                title or "").endswith(".tar"))
            if generic:  # sniff: ORAS pushes plain files as ...layer.v1.tar
                fmt = detect_format("application/octet-stream", title,
                                    source.read_blob_head(desc.digest))
        if fmt == "raw" and not title:
            raise UsageError(f"{what}: layer {desc.digest} is a plain file without an "
                             "org.opencontainers.image.title annotation")
        return LockedLayer(desc.digest, desc.size, desc.media_type, title, fmt)


def _naming_tool(e: ToolfetchError, name: str) -> ToolfetchError:
    """The error with the tool's name in front, unless it already names the tool."""
    if f"tool {name} " in e.message or isinstance(e, MultipleErrors):
        return e
    return e.context(f"tool {name}")


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
    except (ValueError, AttributeError) as e:
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


def run_lock(config: Config, lockfile_path: Path, tools: list[str], check: bool,
             jobs: int = 8, progress: bool = False, upgrade: bool = False, *,
             cache: Cache | None = None, refresh_assets: bool = False
             ) -> tuple[Lockfile, bool]:
    """Resolve and (unless ``check``) write; returns the lockfile and whether it changed.

    Tools with a ``version`` keep their locked tag while it satisfies the constraint; with
    ``upgrade`` they move to the highest matching tag (see :mod:`toolfetch.lock.versions`). HTTP
    assets keep their pins unless their entry changed or ``refresh_assets``; assets
    downloaded to pin them go into ``cache``.
    """
    unknown = [t for t in tools if t not in config.tools]
    if unknown:
        raise NotFoundError(f"{config.path}: no tool {', '.join(map(repr, unknown))}; "
                            f"it has: {', '.join(sorted(config.tools))}")
    old: Lockfile | None = None
    old_text = None
    if lockfile_path.exists():
        old_text = lockfile_path.read_text(encoding="utf-8")
        if tools:
            old = Lockfile.load(lockfile_path)
        elif any(s.is_asset for t in config.tools.values() for s in (t.per_platform or {}
                                                                        ).values()):
            old = _previous(lockfile_path)
    resolver = Resolver(config, lockfile_path, jobs, progress, old=old, cache=cache,
                        refresh_assets=refresh_assets)
    names = tools or sorted(config.tools)
    if any(config.tools[n].version for n in names):
        from toolfetch.lock.versions import version_refs

        resolver.ref_overrides = version_refs(config, lockfile_path, names, upgrade,
                                              resolver.sources)
    resolved = resolver.resolve(names)
    merged: dict[str, LockedTool] = {}
    for name in config.tools:
        if name in resolved:
            merged[name] = resolved[name]
        elif old is not None and name in old.tools:
            merged[name] = old.tools[name]
    mirrors = {
        host: tuple(rebase_layout_ref(m, config.path.parent, lockfile_path.parent)
                    for m in ms)
        for host, ms in config.mirrors.items()
    }
    new = Lockfile(lockfile_path, merged, mirrors)
    changed = new.dumps() != old_text
    if check:
        if changed:
            raise OutOfDateError(f"{lockfile_path} is out of date with {config.path}: "
                                 f"{_describe_drift(old_text, new)}; run `toolfetch lock`")
        return new, False
    if changed:
        new.write()
    return new, changed


def _previous(lockfile_path: Path) -> Lockfile | None:
    """The lockfile being replaced, for its asset pins; one that no longer loads has none."""
    try:
        return Lockfile.load(lockfile_path)
    except ToolfetchError as e:
        log.debug("%s: not reusing its pins (%s)", lockfile_path, e)
        return None


def _describe_drift(old_text: str | None, new: Lockfile) -> str:
    if old_text is None:
        return "it does not exist"
    import json

    try:
        old_tools = json.loads(old_text).get("tools", {})
    except ValueError:
        return "it is not valid JSON"
    new_tools = new.to_json()["tools"]
    names = sorted(set(old_tools) | set(new_tools))
    drift = [n for n in names if old_tools.get(n) != new_tools.get(n)]
    return f"tools differ: {', '.join(drift)}" if drift else "formatting or mirrors differ"


def upgrade_refs(config: Config, lockfile_path: Path, tools: Sequence[str],
                 cache: Cache | None = None, *, jobs: int = 8, progress: bool = False,
                 refresh_assets: bool = False) -> dict[str, tuple[str | None, str]]:
    """``lock --upgrade [TOOL…]``: relock with the highest matching tags.

    Returns ``{tool: (old_ref, new_ref)}`` for the tools that have a ``version``.
    """
    from toolfetch.lock.versions import locked_refs

    names = list(tools) or sorted(config.tools)
    before = locked_refs(lockfile_path)
    run_lock(config, lockfile_path, list(tools), check=False, jobs=jobs, progress=progress,
             upgrade=True, cache=cache, refresh_assets=refresh_assets)
    after = locked_refs(lockfile_path)
    return {name: (before[name][1] if name in before else None, after[name][1])
            for name in names if name in config.tools and config.tools[name].version
            and not config.tools[name].is_assets and name in after}
