"""OCI image layouts on disk (``oci-layout`` + ``index.json`` + ``blobs/``), read and write.

A layout is a content source with the same interface as :class:`RegistryClient`, so it can
stand wherever a registry does: as a reference (``oci-layout:DIR:tag``), a mirror or an
export target. Tags are the ``org.opencontainers.image.ref.name`` annotations of
``index.json`` entries. Everything read is verified by digest like registry content.

Writes go through a temp file beside the destination, renamed into place when complete. Its
name says who wrote it, ``.<name>.<host tag>-<pid>-<random>.part``
(:mod:`toolfetch.core.tempnames`), so :meth:`LayoutSource.init` (every ``export``) removes the
temp files a killed writer of this host left, once untouched for a while, and nothing reads
them as blobs: only ``blobs/sha256/<hex>`` is one.

Only regular files are read (:func:`open_regular`: a FIFO would block for ever, a device such
as ``/dev/zero`` read until memory runs out), ``index.json`` and ``oci-layout`` up to
:data:`MAX_INDEX_BYTES` and :data:`MAX_MARKER_BYTES`, manifests up to their 4 MiB cap.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from toolfetch.core.digest import COPY_CHUNK as CHUNK
from toolfetch.core.digest import Digest, StreamVerifier, copy_verified
from toolfetch.core.errors import (
    IntegrityError,
    LocalIOError,
    NotFoundError,
    ToolfetchError,
    UsageError,
)
from toolfetch.core.fs import atomic_write, atomic_writer
from toolfetch.core.progress import ByteReport
from toolfetch.core.tempnames import FOREIGN_GRACE, abandoned, temp_name, temp_owner
from toolfetch.oci.manifest import (
    ANNOTATION_REF_NAME,
    MAX_MANIFEST_BYTES,
    OCI_INDEX,
    OCI_LAYOUT_VERSION,
    Descriptor,
    Manifest,
    verify_manifest_bytes,
)

# index.json lists every root (an --all-platforms export of a large lockfile: thousands);
# the oci-layout marker is one small object. Past these a layout is hostile or broken.
MAX_INDEX_BYTES = 16 * 1024 * 1024
MAX_MARKER_BYTES = 64 * 1024
TEMP_SUFFIX = ".part"
# Temp files of toolfetch before temp names carried their writer (``mkstemp``'s
# ``.<name>.XXXXXXXX``), and other hosts', are removed only once untouched this long.
LEGACY_TEMP_GRACE = FOREIGN_GRACE
# A temp file of this host whose writer's pid is gone is removed once untouched this long:
# a writer in another pid namespace (a container with this host name) looks gone from here.
WRITER_GRACE = 600.0


def temp_path(dest: Path) -> Path:
    """A fresh temp name beside ``dest`` that names its writer (this host, this pid); the
    directory is made if need be."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    return dest.with_name(temp_name(dest.name, TEMP_SUFFIX))


@contextlib.contextmanager
def _writing(dest: Path) -> Iterator[None]:
    """An OSError while writing ``dest`` (a full disk, a read-only target) names it, exit 8."""
    try:
        yield
    except OSError as e:
        raise LocalIOError.of(e, f"cannot write {dest}") from e


def open_regular(path: Path, what: str, error: type[ToolfetchError]) -> io.FileIO:
    """``path`` opened for reading if it is a regular file (a symlink to one counts), else
    ``error`` naming ``what``: a FIFO would block for ever and a device (``/dev/zero``) read
    until memory runs out. An OSError of opening it propagates."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO: no wait
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise error(f"{what}: not a regular file; refusing to read it")
        os.set_blocking(fd, True)
        return io.FileIO(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_capped_file(path: Path, cap: int, what: str, error: type[ToolfetchError]) -> bytes:
    """A regular file's bytes (:func:`open_regular`), refused past ``cap`` bytes."""
    with open_regular(path, what, error) as f:
        data = f.read(cap + 1)
    if len(data) > cap:
        raise error(f"{what}: larger than {cap} bytes; refusing it")
    return data


def _legacy_temp(name: str) -> bool:
    """``mkstemp``'s ``.<64 hex>.XXXXXXXX`` beside a blob (older toolfetch versions)."""
    base, dot, rand = name[1:].rpartition(".")
    return (name.startswith(".") and bool(dot) and len(base) == 64 and len(rand) == 8
            and all(c in "0123456789abcdef" for c in base))


class LayoutSource:
    """Read and write an OCI image layout directory."""

    def __init__(self, path: Path, name: str | None = None) -> None:
        self.path = path
        # As a mirror: the upstream ``registry/repository``, so that tags also match
        # ``org.opencontainers.image.ref.name`` values that are full references (``export``).
        self.name = name

    def __str__(self) -> str:
        return f"oci-layout:{self.path}"

    def blob_path(self, digest: Digest) -> Path:
        return self.path / "blobs" / "sha256" / digest.hex

    def _index(self) -> dict[str, Any]:
        index_path = self.path / "index.json"
        try:
            raw = read_capped_file(index_path, MAX_INDEX_BYTES, str(index_path), UsageError)
            data = json.loads(raw)
        except FileNotFoundError as e:
            raise NotFoundError(f"{self}: no OCI image layout here (missing index.json)") from e
        except (OSError, ValueError, RecursionError) as e:  # nested past the parser's depth
            raise UsageError(f"{index_path}: unreadable index.json: {e}") from e
        if not isinstance(data, dict) or not isinstance(data.get("manifests", []), list):
            raise UsageError(f"{index_path}: not an OCI image index")
        return data

    def check(self) -> None:
        marker = self.path / "oci-layout"
        try:
            raw = read_capped_file(marker, MAX_MARKER_BYTES, str(marker), UsageError)
            version = json.loads(raw).get("imageLayoutVersion")
        except FileNotFoundError as e:
            raise NotFoundError(f"{self}: not an OCI image layout (missing oci-layout)") from e
        except (OSError, ValueError, AttributeError, RecursionError) as e:
            raise UsageError(f"{marker}: unreadable: {e}") from e
        if version != OCI_LAYOUT_VERSION:
            raise UsageError(f"{marker}: unsupported imageLayoutVersion {version!r}")

    def entries(self) -> list[Descriptor]:
        index = self._index()
        return [Descriptor.parse(m, f"{self}/index.json manifests[{i}]")
                for i, m in enumerate(index.get("manifests", []))]

    def _full_ref_tag(self, ref_name: str) -> str | None:
        """The tag of a full-reference ref.name of this mirror's repository, else None."""
        if self.name is None or "/" not in ref_name:
            return None
        from toolfetch.core.reference import Reference

        try:
            ref = Reference.parse(ref_name)
        except UsageError:
            return None
        return ref.tag if ref.name == self.name else None

    def list_tags(self) -> list[str]:
        names = {d.annotations[ANNOTATION_REF_NAME] for d in self.entries()
                 if ANNOTATION_REF_NAME in d.annotations}
        if self.name is None:
            return sorted(names)
        tags = {self._full_ref_tag(n) for n in names} | {n for n in names if "/" not in n}
        return sorted(t for t in tags if t)

    def resolve(self, target: str) -> Digest:
        if target.startswith("sha256:"):
            return Digest.parse(target)
        entries = self.entries()
        if self.name is not None:
            for d in entries:
                ref_name = d.annotations.get(ANNOTATION_REF_NAME)
                if ref_name and self._full_ref_tag(ref_name) == target:
                    return d.digest
        for d in entries:
            if d.annotations.get(ANNOTATION_REF_NAME) == target:
                return d.digest
        raise NotFoundError(f"{self}: no tag {target!r}; it has: "
                            f"{', '.join(self.list_tags()) or 'none'}")

    def get_manifest(self, target: str, expected: Digest | None = None) -> Manifest:
        digest = expected or self.resolve(target)
        what = f"manifest {self}@{digest}"
        path = self.blob_path(digest)
        try:
            with open_regular(path, what, IntegrityError) as f:
                raw = f.read(MAX_MANIFEST_BYTES + 1)
        except FileNotFoundError as e:
            raise NotFoundError(f"{what}: not found") from e
        except OSError as e:
            raise ToolfetchError(f"{what}: unreadable: {e}") from e
        verify_manifest_bytes(raw, digest, what)
        return Manifest.parse(raw, None, what)

    def manifest_exists(self, target: str) -> Digest | None:
        try:
            digest = self.resolve(target)
        except NotFoundError:
            return None
        return digest if self.blob_path(digest).exists() else None

    def fetch_blob(self, digest: Digest, size: int, sink: BinaryIO, what: str,
                   progress: ByteReport | None = None) -> None:
        with StreamVerifier(digest, size, what) as verifier:
            try:
                with open_regular(self.blob_path(digest), f"{what}: in {self}",
                                  IntegrityError) as f:
                    copy_verified(f.readinto, sink, verifier, progress)
            except FileNotFoundError as e:
                raise NotFoundError(f"{what}: not in {self}") from e
            verifier.finish()

    def read_blob_head(self, digest: Digest, length: int = 512) -> bytes:
        try:
            with open_regular(self.blob_path(digest), f"blob {digest} in {self}",
                              IntegrityError) as f:
                return f.read(length)
        except FileNotFoundError as e:
            raise NotFoundError(f"blob {digest}: not in {self}") from e

    def blob_exists(self, digest: Digest) -> bool:
        """Whether anything is at the blob's name (reading it refuses what is not a file)."""
        return self.blob_path(digest).exists()

    def has_intact_blob(self, digest: Digest, size: int) -> bool:
        """Whether ``blobs/sha256/<hex>`` is a file of ``size`` bytes hashing to ``digest``
        (read streaming); a damaged one is not, and is for the caller to replace."""
        try:
            with open_regular(self.blob_path(digest), "", IntegrityError) as f:
                return (os.fstat(f.fileno()).st_size == size
                        and Digest.of_open_file(f) == digest)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError, IntegrityError):
            return False  # a FIFO or device where the blob belongs is replaced too
        except OSError as e:
            raise LocalIOError.of(e, f"cannot read blob {digest} in {self}") from e

    def remove_stale_temps(self) -> list[Path]:
        """Remove the temp files of writers that are gone (:func:`abandoned`: this host, pid
        gone, untouched for :data:`WRITER_GRACE`; another host's or an older toolfetch's,
        untouched for :data:`LEGACY_TEMP_GRACE`); returns what went."""
        removed: list[Path] = []
        now = time.time()
        for directory in (self.path, self.path / "blobs" / "sha256"):
            try:
                names = [n for n in os.listdir(directory) if n.startswith(".")]
            except OSError:
                continue
            for name in names:
                path = directory / name
                if temp_owner(name) is None and not _legacy_temp(name):
                    continue  # not a temp file of toolfetch's
                try:
                    st = path.lstat()
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode) and abandoned(name, now - st.st_mtime,
                                                         WRITER_GRACE, LEGACY_TEMP_GRACE):
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                        removed.append(path)
        return removed

    # -- writing --------------------------------------------------------------------------
    def init(self) -> None:
        with _writing(self.path):
            (self.path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        self.remove_stale_temps()
        marker = self.path / "oci-layout"
        if not marker.exists():
            self._write(marker, b'{"imageLayoutVersion":"1.0.0"}')
        if not (self.path / "index.json").exists():
            self.write_index([])

    def _write(self, dest: Path, data: bytes) -> None:
        with _writing(dest):
            atomic_write(dest, data, temp=temp_path(dest))

    def put_bytes(self, data: bytes, digest: Digest | None = None) -> Digest:
        """Store ``data`` as a blob; one already there is kept only if it holds these bytes."""
        digest = digest or Digest.of_bytes(data)
        digest.verify_bytes(data, f"blob for {self}")
        dest = self.blob_path(digest)
        try:
            with open_regular(dest, "", IntegrityError) as f:
                intact = f.read(len(data) + 1) == data
        except (OSError, IntegrityError):
            intact = False
        if not intact:
            self._write(dest, data)
        return digest

    def put_file(self, src: Path, digest: Digest) -> None:
        """Copy a verified file in as blob ``digest``, atomically replacing whatever is at
        its name (callers reuse an existing blob only after :meth:`has_intact_blob`)."""
        dest = self.blob_path(digest)
        with _writing(dest), atomic_writer(dest, temp=temp_path(dest)) as out, \
                src.open("rb") as f:
            shutil.copyfileobj(f, out, CHUNK)

    def put_stream(self, digest: Digest, write: Callable[[BinaryIO], None]) -> None:
        """Write a blob through ``write`` (which must verify it), atomically: a file already
        at its name is replaced only once the new one is complete."""
        dest = self.blob_path(digest)
        with _writing(dest), atomic_writer(dest, temp=temp_path(dest)) as out:
            write(out)

    def write_index(self, entries: list[Descriptor]) -> None:
        ordered = sorted(entries, key=lambda d: (d.annotations.get(ANNOTATION_REF_NAME, ""),
                                                  str(d.digest)))
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX,
                 "manifests": [d.to_json() for d in ordered]}
        self._write(self.path / "index.json",
                    (json.dumps(index, indent=2, sort_keys=True) + "\n").encode())

    def tag(self, desc: Descriptor, name: str) -> None:
        """Point ``name`` at ``desc`` in index.json (replacing an older entry of that name)."""
        keep = [d for d in self.entries() if d.annotations.get(ANNOTATION_REF_NAME) != name]
        annotations = dict(desc.annotations)
        annotations[ANNOTATION_REF_NAME] = name
        keep.append(Descriptor(desc.media_type, desc.digest, desc.size, annotations,
                               desc.platform, desc.artifact_type))
        self.write_index(keep)
