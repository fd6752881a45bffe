"""``copy`` and ``pull``: move content between registries and OCI layouts, byte-exact.

``copy`` walks the graph under SRC (an index's manifests, each manifest's config and layers),
copies every blob the destination lacks and then the manifests, children first, with their
original bytes, so every digest is preserved. Between repositories of one registry blobs are
mounted, not transferred. Without ``--all-platforms`` an index is resolved for ``--platform``
(default: this host) and only that manifest is copied, as ``skopeo copy`` does.
Everything read is verified by digest before it is written anywhere.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from toolfetch.digest import Digest
from toolfetch.errors import NotFoundError, UsageError
from toolfetch.manifest import ANNOTATION_UNPACK, Descriptor, Manifest
from toolfetch.platform import Platform, host_platform
from toolfetch.reference import AnyReference, LayoutReference, Reference, parse_any
from toolfetch.sources import ContentSource
from toolfetch.targets import BlobSpool, Target, open_source, open_target, same_registry

log = logging.getLogger("toolfetch")


def manifest_blobs(manifest: Manifest, what: str) -> list[Descriptor]:
    """The config and layers of an image manifest (foreign, URL-only layers are left out)."""
    config = manifest.config(what)
    foreign = {str(item.get("digest")) for item in manifest.data.get("layers") or []
               if isinstance(item, dict) and item.get("urls")
               and "foreign" in str(item.get("mediaType"))}
    blobs = ([config] if config is not None else []) + manifest.layers(what)
    return [d for d in blobs if str(d.digest) not in foreign]


class Copier:
    """Copies one graph from a source to a target."""

    def __init__(self, source: ContentSource, target: Target, spool: BlobSpool,
                 mount_from: Sequence[str] = (), jobs: int = 4) -> None:
        self.source = source
        self.target = target
        self.spool = spool
        self.mount_from = tuple(mount_from)
        self.jobs = max(1, jobs)

    def copy(self, manifest: Manifest, tag: str | None, what: str) -> None:
        """Copy ``manifest`` and everything under it; tag the root with ``tag``."""
        if manifest.is_index:
            for i, child in enumerate(manifest.manifests(what)):
                child_what = f"{what} manifests[{i}] {child.digest.short}"
                sub = self.source.get_manifest(str(child.digest), child.digest)
                self.copy(sub, None, child_what)
        else:
            self._copy_blobs(manifest_blobs(manifest, what), what)
        self.target.put_manifest(manifest.raw, manifest.media_type, tag)

    def _copy_blobs(self, blobs: list[Descriptor], what: str) -> None:
        unique = {d.digest: d for d in blobs}
        with ThreadPoolExecutor(self.jobs, thread_name_prefix="copy") as pool:
            futures = [pool.submit(self._copy_blob, d, what) for d in unique.values()]
            for fut in futures:
                fut.result()

    def _copy_blob(self, desc: Descriptor, what: str) -> None:
        blob_what = f"blob {desc.digest} of {what}"
        provide = self.spool.provider(desc.digest, desc.size, blob_what)
        outcome = self.target.put_blob(desc.digest, desc.size, provide, self.mount_from)
        log.debug("%s: %s", blob_what, outcome)


def resolve_root(source: ContentSource, ref: AnyReference, platform: Platform | None,
                 what: str) -> Manifest:
    """The manifest ``ref`` names; an index is resolved for ``platform`` unless it is None."""
    manifest = source.get_manifest(ref.target, ref.digest)
    if platform is None or not manifest.is_index:
        return manifest
    desc = manifest.select(platform, what)
    child = source.get_manifest(str(desc.digest), desc.digest)
    if child.is_index:
        raise UsageError(f"{what}: nested index {desc.digest} for {platform} is not supported")
    return child


def copy(src: AnyReference, dst: AnyReference, *, all_platforms: bool = False,
         platform: Platform | None = None, jobs: int = 4) -> Digest:
    """Copy SRC to DST; returns the digest of the root copied (index or manifest)."""
    from toolfetch.transport import Transport

    transport = Transport()
    what = f"copy {src} -> {dst}"
    source = open_source(src, transport)
    root = resolve_root(source, src, None if all_platforms else platform or host_platform(),
                        what)
    if dst.digest is not None and dst.digest != root.digest:
        raise UsageError(f"{what}: the destination names digest {dst.digest}, but the content "
                         f"copied is {root.digest}")
    tag = dst.tag
    if tag is None and isinstance(dst, LayoutReference) and dst.digest is None:
        tag = src.tag
    mount_from = [src.repository] if isinstance(src, Reference) and same_registry(src, dst) else []
    target = open_target(dst, transport)
    spool, tmp = BlobSpool.create(source)
    with tmp:
        Copier(source, target, spool, mount_from, jobs).copy(root, tag, what)
    return root.digest


def pull(ref: AnyReference, output: Path, platform: Platform | None = None) -> list[Path]:
    """Write an artifact's titled layers into ``output``; returns what was written."""
    what = f"pull {ref}"
    source = open_source(ref)
    manifest = resolve_root(source, ref, platform or host_platform(), what)
    output.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix=".toolfetch-pull-", dir=output) as tmp:
        work = Path(tmp)
        for i, desc in enumerate(manifest.layers(what)):
            if desc.title is None:
                log.warning("%s: layer %s has no title; skipped", what, desc.digest)
                continue
            blob = work / f"blob-{i}"
            with blob.open("wb") as f:
                source.fetch_blob(desc.digest, desc.size, f, f"{what}: {desc.title}")
            if desc.annotations.get(ANNOTATION_UNPACK) == "true":
                written += _unpack_into(blob, work / f"tree-{i}", output, desc, what)
            else:
                written.append(_place_file(blob, output, desc.title, what))
    return written


def _place_file(blob: Path, output: Path, title: str, what: str) -> Path:
    from toolfetch.formats import check_title

    try:
        name = check_title(title)
    except UsageError as e:
        raise UsageError(f"{what}: {e}") from e
    dest = output / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_dir() and not dest.is_symlink():
        raise UsageError(f"{what}: {dest} is a directory; cannot write {title} there")
    os.chmod(blob, 0o644)
    os.replace(blob, dest)
    return dest


def _unpack_into(blob: Path, tree: Path, output: Path, desc: Descriptor,
                 what: str) -> list[Path]:
    from toolfetch.formats import detect_format
    from toolfetch.trees import make_writable
    from toolfetch.unpack import unpack_layer

    with blob.open("rb") as f:
        fmt = detect_format(desc.media_type, None, f.read(512))
    tree.mkdir()
    unpack_layer(blob, fmt, tree, title=None, what=f"{what}: {desc.title}")
    make_writable(tree)
    placed = []
    for entry in sorted(tree.iterdir()):
        dest = output / entry.name
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)
        elif dest.exists() or dest.is_symlink():
            dest.unlink()
        _owner_writable(entry)
        os.replace(entry, dest)
        placed.append(dest)
    return placed


def _owner_writable(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, os.lstat(path).st_mode | 0o200)


def cmd_copy(args: argparse.Namespace) -> int:
    src, dst = parse_any(args.src), parse_any(args.dst)
    platform = Platform.parse(args.platform) if args.platform else None
    digest = copy(src, dst, all_platforms=args.all_platforms, platform=platform, jobs=args.jobs)
    print(digest)
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    ref = parse_any(args.ref)
    platform = Platform.parse(args.platform) if args.platform else None
    written = pull(ref, args.output.absolute(), platform)
    if not written:
        raise NotFoundError(f"pull {ref}: no layer has a title; nothing to write")
    for path in written:
        log.info("wrote %s", path)
    return 0
