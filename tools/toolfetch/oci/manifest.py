"""OCI/Docker media types, manifests, indexes and platform selection."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from toolfetch.core.digest import Digest
from toolfetch.core.errors import IntegrityError, UsageError
from toolfetch.core.platform import Platform, select_platform

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY_JSON = b"{}"  # the empty config's bytes (image-spec "empty descriptor")
OCI_LAYOUT_VERSION = "1.0.0"
TOOL_ARTIFACT_TYPE = "application/vnd.toolfetch.tool.v1"

OCI_IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_IMAGE_CONFIG = "application/vnd.docker.container.image.v1+json"
IMAGE_CONFIG_TYPES = frozenset({OCI_IMAGE_CONFIG, DOCKER_IMAGE_CONFIG})
MAX_CONFIG_BYTES = 4 * 1024 * 1024

INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
ACCEPT = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST])
MAX_MANIFEST_BYTES = 4 * 1024 * 1024

ANNOTATION_TITLE = "org.opencontainers.image.title"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_UNPACK = "io.deis.oras.content.unpack"


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    platform: Platform | None = None
    artifact_type: str | None = None

    @classmethod
    def parse(cls, obj: Any, what: str) -> Descriptor:
        if not isinstance(obj, dict):
            raise IntegrityError(f"{what}: descriptor is not an object")
        try:
            size = obj["size"]
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise IntegrityError(f"{what}: descriptor size {size!r} is not a size")
            annotations = obj.get("annotations") or {}
            platform = obj.get("platform")
            return cls(
                media_type=str(obj["mediaType"]),
                digest=Digest.parse(str(obj["digest"])),
                size=size,
                annotations={str(k): str(v) for k, v in annotations.items()},
                platform=Platform.from_descriptor(platform) if isinstance(platform, dict) else None,
                artifact_type=obj.get("artifactType"),
            )
        except (KeyError, UsageError, AttributeError) as e:
            raise IntegrityError(f"{what}: malformed descriptor: {e}") from e

    @property
    def title(self) -> str | None:
        return self.annotations.get(ANNOTATION_TITLE)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": str(self.digest),
                               "size": self.size}
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform:
            p: dict[str, str] = {"architecture": self.platform.arch, "os": self.platform.os}
            if self.platform.variant:
                p["variant"] = self.platform.variant
            out["platform"] = p
        return out


@dataclass(frozen=True)
class Manifest:
    """A parsed image manifest or index, with the exact bytes it came from."""

    media_type: str
    digest: Digest
    raw: bytes
    data: Mapping[str, Any]

    @classmethod
    def parse(cls, raw: bytes, media_type: str | None, what: str) -> Manifest:
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError) as e:  # RecursionError: nested past the parser
            raise IntegrityError(f"{what}: manifest is not JSON: {e}") from e
        if not isinstance(data, dict):
            raise IntegrityError(f"{what}: manifest is not a JSON object")
        declared = data.get("mediaType")
        if declared is not None and not isinstance(declared, str):
            raise IntegrityError(f"{what}: mediaType is not a string")
        kind = declared or media_type or ""
        if not kind:  # OCI allows omitting mediaType; infer from shape.
            kind = OCI_INDEX if "manifests" in data else OCI_MANIFEST
        if kind not in INDEX_TYPES and kind not in MANIFEST_TYPES:
            raise UsageError(f"{what}: unsupported manifest media type {kind!r}")
        return cls(kind, Digest.of_bytes(raw), raw, data)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    def manifests(self, what: str) -> list[Descriptor]:
        items = self.data.get("manifests")
        if not isinstance(items, list):
            raise IntegrityError(f"{what}: index has no manifests list")
        return [Descriptor.parse(m, f"{what} manifests[{i}]") for i, m in enumerate(items)]

    def layers(self, what: str) -> list[Descriptor]:
        items = self.data.get("layers")
        if not isinstance(items, list):
            raise IntegrityError(f"{what}: manifest has no layers list")
        return [Descriptor.parse(m, f"{what} layers[{i}]") for i, m in enumerate(items)]

    def config(self, what: str) -> Descriptor | None:
        cfg = self.data.get("config")
        return Descriptor.parse(cfg, f"{what} config") if cfg is not None else None

    def blobs(self, what: str) -> list[Descriptor]:
        """The config and layers of an image manifest (foreign, URL-only layers left out)."""
        config = self.config(what)
        foreign = {str(item.get("digest")) for item in self.data.get("layers") or []
                   if isinstance(item, dict) and item.get("urls")
                   and "foreign" in str(item.get("mediaType"))}
        blobs = ([config] if config is not None else []) + self.layers(what)
        return [d for d in blobs if str(d.digest) not in foreign]

    def subject(self, what: str) -> Descriptor | None:
        sub = self.data.get("subject")
        return Descriptor.parse(sub, f"{what} subject") if sub is not None else None

    def platform_manifests(self, what: str) -> list[Descriptor]:
        """Index entries that name a platform (attestations and the like are skipped)."""
        return [
            d for d in self.manifests(what)
            if d.platform is not None and d.platform.os not in ("", "unknown")
        ]

    def select(self, wanted: Platform, what: str) -> Descriptor:
        candidates = self.platform_manifests(what)
        offered = [d.platform for d in candidates if d.platform is not None]
        return candidates[select_platform(wanted, offered, what)]


def verify_manifest_bytes(raw: bytes, expected: Digest | None, what: str) -> Digest:
    if len(raw) > MAX_MANIFEST_BYTES:
        raise IntegrityError(f"{what}: manifest larger than {MAX_MANIFEST_BYTES} bytes")
    actual = Digest.of_bytes(raw)
    if expected is not None and actual != expected:
        raise IntegrityError(f"{what}: manifest digest mismatch: expected {expected}, got {actual}")
    return actual


def canonical_json(obj: Any) -> bytes:
    """Deterministic JSON for manifests toolfetch writes (sorted keys, compact)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def empty_config() -> Descriptor:
    """The descriptor of the empty config artifacts carry (``{}``, ``OCI_EMPTY``)."""
    return Descriptor(OCI_EMPTY, Digest.of_bytes(EMPTY_JSON), len(EMPTY_JSON))


def artifact_manifest(layers: Sequence[Descriptor], artifact_type: str = TOOL_ARTIFACT_TYPE, *,
                      annotations: Mapping[str, str] | None = None,
                      subject: Descriptor | None = None) -> bytes:
    """An ORAS-style artifact manifest (the empty config; canonical JSON), as ``push``,
    ``publish`` and HTTP-asset artifacts write it: the same inputs, the same digest."""
    manifest: dict[str, Any] = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
        "config": empty_config().to_json(), "layers": [d.to_json() for d in layers],
    }
    if subject is not None:
        manifest["subject"] = subject.to_json()
    if annotations:
        manifest["annotations"] = dict(annotations)
    return canonical_json(manifest)


def artifact_index(manifests: Sequence[Descriptor], artifact_type: str = TOOL_ARTIFACT_TYPE, *,
                   annotations: Mapping[str, str] | None = None) -> bytes:
    """An index of artifact manifests (each with its platform; canonical JSON). The entries
    carry no ``artifactType``: skopeo 1.9 (containers/image) cannot copy such an index with
    digests preserved; the index itself carries it."""
    index: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX,
                             "artifactType": artifact_type,
                             "manifests": [d.to_json() for d in manifests]}
    if annotations:
        index["annotations"] = dict(annotations)
    return canonical_json(index)
