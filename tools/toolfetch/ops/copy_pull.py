"""``copy`` and ``pull``: move content between registries and OCI layouts, byte-exact.

``copy`` walks the whole graph under SRC as given (an index's manifests, each manifest's
config and layers), as ``oras cp``, ``crane copy`` and ``regctl`` do, copies every blob the
destination lacks and then the manifests, children first, with their original bytes, so every
digest is preserved: a mirror made this way serves every lockfile that pins the index.
``--platform P`` narrows an index to the manifest for P (skopeo's default); the destination
then holds that manifest, not the index. Between repositories of one registry blobs are
mounted, not transferred. Everything read is verified by digest before it is written anywhere.
Each manifest and blob is read and written once however many indexes list it; indexes nested
deeper than :data:`MAX_INDEX_DEPTH` are refused (exit 3).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from toolfetch.core.digest import Digest
from toolfetch.core.errors import IntegrityError, LocalIOError, NotFoundError, UsageError
from toolfetch.core.platform import Platform, host_platform
from toolfetch.core.progress import Progress
from toolfetch.core.reference import AnyReference, LayoutReference, Reference
from toolfetch.oci.manifest import ANNOTATION_UNPACK, Descriptor, Manifest
from toolfetch.registry.sources import ContentSource
from toolfetch.registry.targets import BlobSpool, Target, open_source, open_target, same_registry

log = logging.getLogger("toolfetch")


# Indexes of indexes are legal, but no real image nests them more than a level or two; a
# deeper graph is a hostile or broken source (exit 3), not something to walk on.
MAX_INDEX_DEPTH = 16


class Copier:
    """Copies one graph from a source to a target: each manifest and blob once, however
    many indexes list it (a DAG is not walked as the tree it unfolds to)."""

    def __init__(self, source: ContentSource, target: Target, spool: BlobSpool,
                 mount_from: Sequence[str] = (), jobs: int = 4,
                 progress: Progress | None = None) -> None:
        self.source = source
        self.target = target
        self.spool = spool
        self.mount_from = tuple(mount_from)
        self.jobs = max(1, jobs)
        self._copied: set[Digest] = set()  # manifests and blobs already in the target
        self.progress = progress or Progress("", 0, False)

    def copy(self, manifest: Manifest, tag: str | None, what: str, depth: int = 0) -> None:
        """Copy ``manifest`` and everything under it; tag the root with ``tag``."""
        if manifest.is_index:
            if depth >= MAX_INDEX_DEPTH:
                raise IntegrityError(f"{what}: index {manifest.digest} is nested more than "
                                     f"{MAX_INDEX_DEPTH} indexes deep; refusing the graph")
            for i, child in enumerate(manifest.manifests(what)):
                if child.digest in self._copied:
                    continue
                child_what = f"{what} manifests[{i}] {child.digest.short}"
                sub = self.source.get_manifest(str(child.digest), child.digest)
                self.copy(sub, None, child_what, depth + 1)
        else:
            self._copy_blobs(manifest.blobs(what), what)
        self.target.put_manifest(manifest.raw, manifest.media_type, tag)
        self._copied.add(manifest.digest)

    def _copy_blobs(self, blobs: list[Descriptor], what: str) -> None:
        unique = {d.digest: d for d in blobs if d.digest not in self._copied}
        self.progress.expect(sum(d.size for d in unique.values()))
        with ThreadPoolExecutor(self.jobs, thread_name_prefix="copy") as pool:
            futures = [pool.submit(self._copy_blob, d, what) for d in unique.values()]
            for fut in futures:
                fut.result()
        self._copied.update(unique)

    def _copy_blob(self, desc: Descriptor, what: str) -> None:
        blob_what = f"blob {desc.digest} of {what}"
        provide = self.spool.provider(desc.digest, desc.size, blob_what)
        outcome = self.target.put_blob(desc.digest, desc.size, provide, self.mount_from,
                                       self.progress.reporter(desc.title or desc.digest.short))
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


def copy(src: AnyReference, dst: AnyReference, *, platform: Platform | None = None,
         jobs: int = 4, progress: bool = False) -> Digest:
    """Copy SRC's whole graph (or, with ``platform``, one manifest of its index) to DST;
    returns the digest of the root copied (index or manifest)."""
    from toolfetch.registry.transport import Transport

    transport = Transport()
    what = f"copy {src} -> {dst}"
    source = open_source(src, transport)
    root = resolve_root(source, src, platform, what)
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
        bar = Progress("copy", 0, progress)
        try:
            Copier(source, target, spool, mount_from, jobs, bar).copy(root, tag, what)
        finally:
            bar.close()
    return root.digest


def pull(ref: AnyReference, output: Path, platform: Platform | None = None,
         progress: bool = False) -> tuple[list[Path], list[Path]]:
    """Write an artifact's titled layers into ``output``; returns (its files in ``output``,
    in layer order; those of them that were there already with the very same bytes).

    Everything is downloaded, verified and unpacked into a temp directory inside ``output``
    first; then, only if no destination exists already (a file with the very same bytes
    excepted: it is left as it is, and pulling twice succeeds), it is moved into place. An
    existing file or directory with other content is never replaced or deleted: the pull is
    refused (UsageError, exit 2) and ``output`` is left as it was. An artifact with no titled
    layer has nothing to write (NotFoundError, exit 4).
    """
    what = f"pull {ref}"
    source = open_source(ref)
    manifest = resolve_root(source, ref, platform or host_platform(), what)
    if all(d.title is None for d in manifest.layers(what)):
        raise NotFoundError(f"{what}: no layer has a title; nothing to write")
    try:
        output.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".toolfetch-pull-", dir=output) as tmp:
            bar = Progress("pull", 0, progress)
            try:
                moves = _download_all(source, manifest, Path(tmp), what, bar)
            finally:
                bar.close()
            _refuse_conflicts(moves, output, what)
            present = [output / name for name, src in moves if _same_file(src, output / name)]
            for name, src in moves:
                if output / name not in present:
                    _move(src, output / name)
            return [output / name for name, _ in moves], present
    except OSError as e:
        raise LocalIOError.of(e, f"{what}: cannot write into {output}") from e


def _download_all(source: ContentSource, manifest: Manifest, work: Path,
                  what: str, progress: Progress) -> list[tuple[str, Path]]:
    """(name under output, file or directory in ``work``) of every titled layer."""
    from toolfetch.oci.formats import check_title

    moves: list[tuple[str, Path]] = []
    layers = manifest.layers(what)
    progress.expect(sum(d.size for d in layers if d.title is not None))
    for i, desc in enumerate(layers):
        if desc.title is None:
            log.warning("%s: layer %s has no title; skipped", what, desc.digest)
            continue
        blob = work / f"blob-{i}"
        with blob.open("wb") as f:
            source.fetch_blob(desc.digest, desc.size, f, f"{what}: {desc.title}",
                              progress.reporter(desc.title))
        if desc.annotations.get(ANNOTATION_UNPACK) == "true":
            tree = work / f"tree-{i}"
            _unpack_into(blob, tree, desc, what)
            moves += [(entry.name, entry) for entry in sorted(tree.iterdir())]
        else:
            try:
                name = check_title(desc.title)
            except UsageError as e:
                raise e.context(what) from e
            # Executable, as fetch makes every single-file layer (nothing in a manifest says
            # which files are programs), but writable: the output is the user's, not the cache
            os.chmod(blob, 0o755)
            moves.append((name, blob))
    names = [name for name, _ in moves]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UsageError(f"{what}: several layers would write {', '.join(twice)}")
    return moves


def _refuse_conflicts(moves: list[tuple[str, Path]], output: Path, what: str) -> None:
    taken = [str(output / name) for name, src in moves
             if (os.path.lexists(output / name) and not _same_file(src, output / name))
             or _blocked_parent(output, name)]
    if taken:
        raise UsageError(f"{what}: {', '.join(taken)} already exist(s); toolfetch never "
                         "replaces or deletes what it did not write: remove them or pull "
                         "into an empty directory (-o DIR)")


def _blocked_parent(output: Path, name: str) -> bool:
    """Whether a parent of ``output/name`` exists but is not a directory."""
    parent = (output / name).parent
    while parent != output:
        if os.path.lexists(parent) and not parent.is_dir():
            return True
        parent = parent.parent
    return False


def _same_file(src: Path, dest: Path) -> bool:
    """A regular file (not a symlink) holding exactly the bytes of ``src``, a file."""
    if not src.is_file() or src.is_symlink() or dest.is_symlink() or not dest.is_file():
        return False
    if src.stat().st_size != dest.stat().st_size:
        return False
    return Digest.of_file(src) == Digest.of_file(dest)


def _move(src: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.rename(src, dest)  # nothing is there (checked): never replaces
    return dest


def _unpack_into(blob: Path, tree: Path, desc: Descriptor, what: str) -> None:
    from toolfetch.cache.unpack import unpack_layer
    from toolfetch.core.fs import make_writable
    from toolfetch.oci.formats import detect_format

    with blob.open("rb") as f:
        fmt = detect_format(desc.media_type, None, f.read(512))
    tree.mkdir()
    unpack_layer(blob, fmt.name, tree, title=None, what=f"{what}: {desc.title}")
    make_writable(tree)
    for dirpath, _dirs, files in os.walk(tree):  # pulled files are the user's to edit
        for name in files:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, os.lstat(path).st_mode | 0o200)
