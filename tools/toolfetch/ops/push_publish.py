"""``push``, ``publish``, ``attach`` and ``tag``: ORAS-style artifacts from local files.

An artifact is an OCI image manifest with the empty config (``application/vnd.oci.empty.v1+json``,
``{}``), an ``artifactType`` and one layer per file, titled with the file's name. A directory
becomes one deterministic ``tar+gzip`` layer (sorted members, mtime 0, uid/gid 0, modes reduced
to 0o755/0o644) with ORAS's ``io.deis.oras.content.unpack`` annotation, so the same inputs always
give the same digests. Manifests are written as compact JSON with sorted keys.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import re
import stat
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from toolfetch.core.digest import Digest
from toolfetch.core.errors import UsageError
from toolfetch.core.platform import Platform
from toolfetch.core.progress import Progress
from toolfetch.core.reference import AnyReference
from toolfetch.oci.formats import FORMATS, format_by_extension
from toolfetch.oci.manifest import (
    ANNOTATION_TITLE,
    ANNOTATION_UNPACK,
    EMPTY_JSON,
    OCI_INDEX,
    OCI_MANIFEST,
    TOOL_ARTIFACT_TYPE,
    Descriptor,
    artifact_index,
    artifact_manifest,
    empty_config,
)
from toolfetch.registry.targets import Target, add_referrer, open_source, open_target

log = logging.getLogger("toolfetch")

ANNOTATION_ORAS_DIGEST = "io.deis.oras.content.digest"
LAYER_TAR_GZIP = FORMATS["tar+gzip"].media_type
_TAG = re.compile(r"[\w][\w.-]{0,127}")


@dataclass(frozen=True)
class LocalBlob:
    path: Path
    descriptor: Descriptor


def media_type_for(name: str) -> str:
    return format_by_extension(name).media_type


def write_tag(ref: AnyReference, command: str) -> str:
    if ref.digest is not None:
        raise UsageError(f"{command}: {ref} names a digest; give a tag to write to")
    return ref.tag or "latest"


class _HashingWriter:
    """A write-only file object that hashes what passes through it."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        return self.out.write(data)

    def flush(self) -> None:
        self.out.flush()


def _tar_directory(src: Path, dest: Path) -> Digest:
    """Deterministic ``tar+gzip`` of ``src`` (members under its name); the tar's digest."""
    base = src.name
    members: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(src):  # symlinks to dirs are not followed
        members.extend(Path(dirpath, n) for n in dirnames + filenames)
    members.sort(key=lambda p: p.relative_to(src).parts)
    with dest.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                                mtime=0) as gz:
        tar_hash = _HashingWriter(gz)  # type: ignore[arg-type]
        with tarfile.open(fileobj=tar_hash, mode="w|",  # type: ignore[call-overload]
                          format=tarfile.PAX_FORMAT) as tf:
            for path in [src, *members]:
                rel = base if path == src else f"{base}/{path.relative_to(src).as_posix()}"
                _add_member(tf, path, rel, src)
    return Digest(tar_hash.hash.hexdigest())


def _add_member(tf: tarfile.TarFile, path: Path, name: str, root: Path) -> None:
    st = path.lstat()
    info = tarfile.TarInfo(name)
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(path)
        resolved = os.path.normpath(os.path.join(os.path.dirname(path), target))
        if os.path.isabs(target) or not (resolved + "/").startswith(str(root) + "/"):
            raise UsageError(f"{path}: symlink to {target!r} points outside {root}")
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
        tf.addfile(info)
    elif stat.S_ISDIR(st.st_mode):
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tf.addfile(info)
    elif stat.S_ISREG(st.st_mode):
        info.mode = 0o755 if st.st_mode & 0o111 else 0o644
        info.size = st.st_size
        with path.open("rb") as f:
            tf.addfile(info, f)
    else:
        raise UsageError(f"{path}: not a regular file, directory or symlink")


def build_layer(text: str, workdir: Path) -> LocalBlob:
    """A layer from ``PATH`` or ``PATH:MEDIA/TYPE`` (a directory becomes a tar+gzip)."""
    path, media_type = Path(text), None
    head, sep, tail = text.rpartition(":")
    if sep and head and "/" in tail and not path.exists():
        path, media_type = Path(head), tail
    if not path.exists():
        raise UsageError(f"{path}: no such file or directory")
    title = path.absolute().name
    if path.is_dir():
        fd, name = tempfile.mkstemp(dir=workdir, suffix=".tar.gz")
        os.close(fd)
        dest = Path(name)
        tar_digest = _tar_directory(path.absolute(), dest)
        annotations = {ANNOTATION_TITLE: title, ANNOTATION_UNPACK: "true",
                       ANNOTATION_ORAS_DIGEST: str(tar_digest)}
        desc = Descriptor(media_type or LAYER_TAR_GZIP, Digest.of_file(dest),
                          dest.stat().st_size, annotations)
        return LocalBlob(dest, desc)
    if not path.is_file():
        raise UsageError(f"{path}: not a regular file or directory")
    desc = Descriptor(media_type or media_type_for(title), Digest.of_file(path),
                      path.stat().st_size, {ANNOTATION_TITLE: title})
    return LocalBlob(path, desc)


def _empty_config(workdir: Path) -> LocalBlob:
    path = workdir / "empty.json"
    path.write_bytes(EMPTY_JSON)
    return LocalBlob(path, empty_config())


def upload_blobs(target: Target, blobs: Sequence[LocalBlob], mount_from: Sequence[str] = (),
                 jobs: int = 4, progress: Progress | None = None) -> None:
    unique = {b.descriptor.digest: b for b in blobs}
    progress = progress or Progress("", 0, False)
    progress.expect(sum(b.descriptor.size for b in unique.values()))
    with ThreadPoolExecutor(max(1, jobs), thread_name_prefix="push") as pool:
        futures = [pool.submit(target.put_blob, d, b.descriptor.size,
                               lambda b=b: b.path, mount_from,  # type: ignore[misc]
                               progress.reporter(b.descriptor.title or d.short))
                   for d, b in unique.items()]
        for fut in futures:
            fut.result()


def push_files(target: Target, files: Sequence[str], tag: str | None, *,
               artifact_type: str = TOOL_ARTIFACT_TYPE,
               annotations: Mapping[str, str] | None = None,
               subject: Descriptor | None = None,
               mount_from: Sequence[str] = (),
               progress: Progress | None = None) -> tuple[Descriptor, bool]:
    """Build and push one artifact; returns its descriptor and the registry's OCI-Subject ack."""
    with tempfile.TemporaryDirectory(prefix="toolfetch-push-") as tmp:
        workdir = Path(tmp)
        layers = [build_layer(f, workdir) for f in files]
        titles = [b.descriptor.title for b in layers]
        dupes = sorted({t for t in titles if t is not None and titles.count(t) > 1})
        if dupes:
            raise UsageError(f"several files would be titled {', '.join(dupes)}; "
                             "titles (file names) must be unique")
        config = _empty_config(workdir)
        raw = artifact_manifest([b.descriptor for b in layers] or [config.descriptor],
                                artifact_type, annotations=annotations, subject=subject)
        upload_blobs(target, [config, *layers], mount_from, progress=progress)
        ack = target.put_manifest(raw, OCI_MANIFEST, tag)
    desc = Descriptor(OCI_MANIFEST, Digest.of_bytes(raw), len(raw), dict(annotations or {}),
                      artifact_type=artifact_type)
    return desc, ack


def publish(target: Target, tag: str, per_platform: Sequence[tuple[Platform, list[str]]], *,
            artifact_type: str = TOOL_ARTIFACT_TYPE,
            annotations: Mapping[str, str] | None = None,
            mount_from: Sequence[str] = (), progress: Progress | None = None) -> Digest:
    """One artifact per platform (pushed by digest) and an index of them tagged ``tag``."""
    seen = [str(p) for p, _ in per_platform]
    if len(set(seen)) != len(seen):
        raise UsageError(f"publish: a platform is given twice: {', '.join(seen)}")
    entries = []
    for platform, files in per_platform:
        desc, _ = push_files(target, files, None, artifact_type=artifact_type,
                             mount_from=mount_from, progress=progress)
        entries.append(Descriptor(desc.media_type, desc.digest, desc.size, {}, platform))
    raw = artifact_index(entries, artifact_type, annotations=annotations)
    target.put_manifest(raw, OCI_INDEX, tag)
    return Digest.of_bytes(raw)


def attach(ref: AnyReference, files: Sequence[str], artifact_type: str,
           annotations: Mapping[str, str]) -> Digest:
    """Push an artifact whose ``subject`` is the manifest ``ref`` names; index it as a
    referrer where the registry does not (the ``sha256-<hex>`` tag schema)."""
    from toolfetch.registry.transport import Transport

    transport = Transport()
    manifest = open_source(ref, transport).get_manifest(ref.target, ref.digest)
    subject = Descriptor(manifest.media_type, manifest.digest, len(manifest.raw))
    target = open_target(ref, transport)
    desc, ack = push_files(target, files, None, artifact_type=artifact_type,
                           annotations=annotations, subject=subject)
    if not ack:
        log.debug("%s indexes no referrers itself; updating the %s tag", target,
                  subject.digest.tag)
        add_referrer(target, subject.digest, desc)
    return desc.digest


def tag(ref: AnyReference, new_tags: Sequence[str]) -> Digest:
    """Give the manifest ``ref`` names more tags; returns its digest."""
    from toolfetch.registry.transport import Transport

    for new_tag in new_tags:
        if not _TAG.fullmatch(new_tag):
            raise UsageError(f"tag: malformed tag {new_tag!r}")
    transport = Transport()
    manifest = open_source(ref, transport).get_manifest(ref.target, ref.digest)
    target = open_target(ref, transport)
    for new_tag in new_tags:
        target.put_manifest(manifest.raw, manifest.media_type, new_tag)
    return manifest.digest
