"""Where registry workflows read from and write to: registries and OCI image layouts alike.

:func:`open_source` gives a :class:`ContentSource` (read) and :func:`open_target` a
:class:`Target` (write) for ``host/repo[:tag|@digest]`` and ``oci-layout:DIR[:tag|@digest]``
references, so push, copy, tag and attach work the same in either direction.
Referrers (``subject``) are indexed by the registry when it answers ``OCI-Subject``, else under
the fallback tag ``sha256-<hex>`` of the subject (OCI distribution-spec 1.1 tag schema).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from toolfetch.core.digest import Digest
from toolfetch.core.errors import NotFoundError
from toolfetch.core.progress import ByteReport
from toolfetch.core.reference import AnyReference, LayoutReference, Reference
from toolfetch.oci.layout import LayoutSource
from toolfetch.oci.manifest import OCI_INDEX, Descriptor, canonical_json
from toolfetch.registry.sources import ContentSource

if TYPE_CHECKING:
    from toolfetch.registry.transport import Transport
    from toolfetch.registry.upload import Uploader, UploadStats

Provide = Callable[[], Path]


class Target(Protocol):
    """A writable place for manifests and blobs."""

    source: ContentSource

    def put_blob(self, digest: Digest, size: int, provide: Provide,
                 mount_from: Sequence[str] = (), progress: ByteReport | None = None) -> str:
        """Make the blob present; ``progress`` hears of all ``size`` bytes, sent or not."""
        ...

    def put_manifest(self, raw: bytes, media_type: str, tag: str | None) -> bool:
        """Store (and tag); True when the store indexes ``subject`` referrers itself."""
        ...


def open_source(ref: AnyReference, transport: Transport | None = None) -> ContentSource:
    if isinstance(ref, LayoutReference):
        layout = LayoutSource(ref.path)
        layout.check()
        return layout
    from toolfetch.registry.client import RegistryClient
    from toolfetch.registry.transport import Transport

    return RegistryClient(transport or Transport(), ref.api_host, ref.repository)


def open_target(ref: AnyReference, transport: Transport | None = None,
                stats: UploadStats | None = None) -> Target:
    if isinstance(ref, LayoutReference):
        return LayoutTarget(LayoutSource(ref.path))
    from toolfetch.registry.client import RegistryClient
    from toolfetch.registry.transport import Transport
    from toolfetch.registry.upload import Uploader

    client = RegistryClient(transport or Transport(), ref.api_host, ref.repository)
    return RegistryTarget(Uploader(client, stats=stats))


class RegistryTarget:
    def __init__(self, uploader: Uploader) -> None:
        self.uploader = uploader
        self.source: ContentSource = uploader.client

    def __str__(self) -> str:
        return str(self.uploader)

    def put_blob(self, digest: Digest, size: int, provide: Provide,
                 mount_from: Sequence[str] = (), progress: ByteReport | None = None) -> str:
        sent = 0

        def count(n: int) -> None:
            nonlocal sent
            sent += n
            if progress:
                progress(n)

        outcome = self.uploader.upload(digest, size, provide, mount_from, count)
        if progress and sent < size:
            progress(size - sent)  # skipped or mounted: nothing to send, done all the same
        return outcome

    def put_manifest(self, raw: bytes, media_type: str, tag: str | None) -> bool:
        return self.uploader.put_manifest(raw, media_type, tag).subject_ack


class LayoutTarget:
    def __init__(self, layout: LayoutSource) -> None:
        self.layout = layout
        self.source: ContentSource = layout
        self._ready = False

    def __str__(self) -> str:
        return str(self.layout)

    def _init(self) -> None:
        if not self._ready:
            self.layout.init()
            self._ready = True

    def put_blob(self, digest: Digest, size: int, provide: Provide,
                 mount_from: Sequence[str] = (), progress: ByteReport | None = None) -> str:
        self._init()
        outcome = "skipped"
        if not self.layout.has_intact_blob(digest, size):  # a damaged one is replaced
            self.layout.put_file(provide(), digest)
            outcome = "uploaded"
        if progress:
            progress(size)
        return outcome

    def put_manifest(self, raw: bytes, media_type: str, tag: str | None) -> bool:
        self._init()
        digest = self.layout.put_bytes(raw)
        if tag is not None:
            self.layout.tag(Descriptor(media_type, digest, len(raw)), tag)
        return False


def add_referrer(target: Target, subject: Digest, referrer: Descriptor) -> None:
    """Add ``referrer`` to the fallback index tagged ``sha256-<subject hex>``."""
    tag = subject.tag
    try:
        existing = target.source.get_manifest(tag)
        entries = list(existing.data.get("manifests") or []) if existing.is_index else []
    except NotFoundError:
        entries = []
    if any(e.get("digest") == str(referrer.digest) for e in entries if isinstance(e, dict)):
        return
    entries.append(referrer.to_json())
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    target.put_manifest(canonical_json(index), OCI_INDEX, tag)


@dataclass
class BlobSpool:
    """Verified local copies of blobs from a source, made on demand in a temp directory."""

    source: ContentSource
    directory: Path

    @classmethod
    def create(cls, source: ContentSource) -> tuple[BlobSpool, tempfile.TemporaryDirectory[str]]:
        tmp = tempfile.TemporaryDirectory(prefix="toolfetch-")
        return cls(source, Path(tmp.name)), tmp

    def provider(self, digest: Digest, size: int, what: str) -> Provide:
        def provide() -> Path:
            path = self.directory / digest.hex
            if not path.exists():
                part = path.with_suffix(".part")
                with part.open("wb") as f:
                    self.source.fetch_blob(digest, size, f, what)
                part.replace(path)
            return path
        return provide


def same_registry(a: AnyReference, b: AnyReference) -> bool:
    return isinstance(a, Reference) and isinstance(b, Reference) and a.api_host == b.api_host
