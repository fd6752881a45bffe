"""Where signatures are found: the registry (or layout) serving a tool, or a bundle URL.

* cosign key-pair signatures: the manifest tagged ``sha256-<hex>.sig`` in the tool's
  repository, whose simple-signing layers carry payload and signature (cosign's tag scheme).
* Sigstore bundles of OCI tools: the manifest's referrers whose ``artifactType`` is a bundle
  (OCI 1.1 referrers API, else the ``sha256-<hex>`` tag; a layout has only the tag), each a
  manifest whose layer is the bundle.
* Sigstore bundles of HTTP assets: a URL made from the policy's ``bundle`` template.

Everything fetched is small and read capped; it is checked against its digest where a digest
names it, and handed back as bytes with that digest, for the cache and the verifiers.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from toolfetch.core.digest import Digest
from toolfetch.core.errors import IntegrityError, NotFoundError
from toolfetch.lock.cosign import signature_layers
from toolfetch.lock.sigstore_bundles import BUNDLE_MEDIA_TYPE_PREFIX, MAX_BUNDLE_BYTES
from toolfetch.oci.manifest import Descriptor, Manifest
from toolfetch.registry.sources import ContentSource, SourceFactory


@dataclass(frozen=True)
class Blob:
    digest: Digest
    data: bytes


@dataclass(frozen=True)
class CosignSignatures:
    """A ``.sig`` manifest and the payloads of its simple-signing layers."""

    manifest: Manifest
    payloads: tuple[Blob, ...]


def cosign_tag(manifest: Digest) -> str:
    return f"{manifest.tag}.sig"


def _blob(source: ContentSource, desc: Descriptor, what: str) -> Blob:
    buffer = io.BytesIO()
    source.fetch_blob(desc.digest, desc.size, buffer, what)  # verified: digest and size
    return Blob(desc.digest, buffer.getvalue())


def fetch_cosign(source: ContentSource, manifest: Digest, what: str) -> CosignSignatures | None:
    """The signatures of ``manifest`` in ``source``; None when it has no ``.sig`` tag."""
    try:
        sig = source.get_manifest(cosign_tag(manifest))
    except NotFoundError:
        return None
    if sig.is_index:
        raise IntegrityError(f"{what}: {cosign_tag(manifest)} is an index, not a cosign "
                             "signature manifest")
    payloads = tuple(_blob(source, Descriptor("", d, size), f"{what}: signature payload {d}")
                     for d, size, _ in signature_layers(sig, what))
    return CosignSignatures(sig, payloads)


def _referrers(source: ContentSource, subject: Digest, what: str) -> list[Descriptor]:
    from toolfetch.registry.client import RegistryClient

    if isinstance(source, RegistryClient):
        return source.referrers(subject)
    try:  # an OCI layout: the referrers tag schema only
        index = source.get_manifest(subject.tag)
    except NotFoundError:
        return []
    return index.manifests(what) if index.is_index else []


def fetch_referred_bundles(source: ContentSource, subject: Digest, what: str) -> list[Blob]:
    """Every Sigstore bundle attached to ``subject`` as a referrer (each read capped)."""
    bundles = []
    for desc in _referrers(source, subject, what):
        if not (desc.artifact_type or "").startswith(BUNDLE_MEDIA_TYPE_PREFIX):
            continue
        referrer = source.get_manifest(str(desc.digest), desc.digest)
        if referrer.is_index:
            continue
        for layer in referrer.layers(what):  # cosign v3: one layer, the bundle
            if layer.size > MAX_BUNDLE_BYTES:
                raise IntegrityError(f"{what}: bundle {layer.digest} is {layer.size} bytes "
                                     f"(more than {MAX_BUNDLE_BYTES})")
            bundles.append(_blob(source, layer, f"{what}: bundle {layer.digest}"))
    return bundles


class _CappedBuffer(io.BytesIO):
    """A sink that refuses more than ``cap`` bytes: a hostile server cannot fill memory."""

    def __init__(self, cap: int, what: str) -> None:
        super().__init__()
        self.cap = cap
        self.what = what

    def write(self, data: bytes) -> int:  # type: ignore[override]
        if self.tell() + len(data) > self.cap:
            raise IntegrityError(f"{self.what}: more than {self.cap} bytes; not a bundle")
        return super().write(data)


def fetch_bundle_url(sources: SourceFactory, url: str, what: str) -> Blob:
    """The bundle at ``url`` (capped); exit 3 "bundle missing" when the server has none."""
    [(label, source)] = sources.url_sources([url])
    sink = _CappedBuffer(MAX_BUNDLE_BYTES, f"{what}: {label}")
    try:
        pinned = source.pin(sink, f"{what}: bundle {label}")
    except NotFoundError as e:
        raise IntegrityError(f"{what}: bundle missing: {label} ({e.message})") from e
    return Blob(pinned.digest, sink.getvalue())

