"""What ``get_artifact_info`` returns: an artifact, an image or an index, as typed values.

Built from :func:`toolfetch.ops.inspect_tags.inspect` (the same classification ``toolfetch
inspect`` prints). A WASM artifact also says what kind of WASM it holds, by media type, as
zlayer reports it: ``application/vnd.wasm.component.v1+wasm`` is a component (WASI preview
2); a ``…wasm.module…`` type or ``application/vnd.wasm.content.layer.v1+wasm`` (the
wasm-to-oci layer, a core module) is a module (WASI preview 1). Other ``application/vnd.wasm.*``
types (a config alone) leave :attr:`ArtifactInfo.wasm` None: nothing says which.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from toolfetch.core.frozen import freeze_fields, thaw
from toolfetch.oci.manifest import INDEX_TYPES

WASM_COMPONENT = "application/vnd.wasm.component.v1+wasm"
WASM_CONTENT_LAYER = "application/vnd.wasm.content.layer.v1+wasm"


@dataclass(frozen=True)
class WasmInfo:
    """``kind`` is ``component`` or ``module``; ``wasi`` is ``preview2`` or ``preview1``."""

    kind: str
    wasi: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "wasi": self.wasi}

    @classmethod
    def of(cls, media_types: list[str]) -> WasmInfo | None:
        """From a manifest's media types (artifact type, config, layers); a component wins
        over a module when both appear."""
        if any(t == WASM_COMPONENT or ".wasm.component." in t for t in media_types):
            return cls("component", "preview2")
        if any(t == WASM_CONTENT_LAYER or ".wasm.module" in t for t in media_types):
            return cls("module", "preview1")
        return None


@dataclass(frozen=True)
class LayerInfo:
    """A config or layer descriptor. ``description`` is the descriptor as read, kept for
    what has no field here (``artifactType``, ``platform``); :meth:`to_json` takes the rest
    from the fields."""

    digest: str
    media_type: str
    size: int
    title: str | None = None
    annotations: Mapping[str, str] | None = field(default=None, hash=False)
    description: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        freeze_fields(self, "annotations", "description")

    def to_json(self) -> dict[str, Any]:
        """The descriptor as ``inspect --json`` prints it."""
        out: dict[str, Any] = _extra(self.description, _LAYER_FIELDS)
        out.update(mediaType=self.media_type, digest=self.digest, size=self.size)
        if self.title is not None:
            out["title"] = self.title
        if self.annotations:
            out["annotations"] = thaw(self.annotations)
        return out

    @classmethod
    def of(cls, d: Mapping[str, Any]) -> LayerInfo:
        return cls(d["digest"], d["mediaType"], d["size"], d.get("title"),
                   d.get("annotations") or None, description=d)


_LAYER_FIELDS = {"mediaType", "digest", "size", "title", "annotations"}
_ARTIFACT_FIELDS = {"reference", "digest", "mediaType", "size", "kind", "artifactType",
                    "annotations", "subject", "config", "layers", "totalSize", "wasm",
                    "platform", "manifests", "platforms"}


def _extra(description: Mapping[str, Any], fields: set[str]) -> dict[str, Any]:
    """The keys of ``description`` that no field holds, as plain dicts and lists."""
    return {k: thaw(v) for k, v in description.items() if k not in fields}


@dataclass(frozen=True)
class ArtifactInfo:
    """One manifest or index, as ``toolfetch inspect --json`` describes it.

    ``kind``: ``image``, ``wasm``, ``tool`` or ``artifact`` for a manifest; for an index, its
    manifests' common kind, ``mixed``, or ``empty``. An index has ``manifests`` (each with
    its ``platform``) and ``platforms``; a manifest has ``config``, ``layers`` and
    ``total_size`` (layers plus config). ``reference`` is empty for an index's children.
    ``description`` is the manifest's description as read, kept for what has no field (the
    subject's media type and size); :meth:`to_json` is built from the fields. The mappings
    are read-only and left out of the hash.
    """

    reference: str
    digest: str
    media_type: str
    size: int
    kind: str
    artifact_type: str | None = None
    annotations: Mapping[str, str] | None = field(default=None, hash=False)
    subject: str | None = None  # the digest this manifest refers to
    config: LayerInfo | None = None
    layers: tuple[LayerInfo, ...] = ()
    total_size: int | None = None
    wasm: WasmInfo | None = None
    platform: str | None = None  # an index child's platform
    manifests: tuple[ArtifactInfo, ...] = ()
    platforms: tuple[str, ...] = ()
    description: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        freeze_fields(self, "annotations", "description")

    def to_json(self) -> dict[str, Any]:
        """What ``toolfetch inspect --json`` prints, from the fields (its manifests' too),
        with ``wasm`` (``{"kind": "module", "wasi": "preview1"}``) where known. An index
        lists ``manifests`` and ``platforms``, a manifest ``layers`` and ``totalSize``; an
        index's child that is an index itself (not looked into) has neither."""
        out: dict[str, Any] = _extra(self.description, _ARTIFACT_FIELDS)
        if self.reference:
            out["reference"] = self.reference
        out.update(digest=self.digest, mediaType=self.media_type, size=self.size)
        if self.annotations:
            out["annotations"] = thaw(self.annotations)
        if self.subject is not None:
            out["subject"] = self._subject_json(self.subject)
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.platform is not None:
            out["platform"] = self.platform
        if self.config is not None:
            out["config"] = self.config.to_json()
        if not self.is_index:
            out["kind"] = self.kind
            out["layers"] = [d.to_json() for d in self.layers]
            out["totalSize"] = (self.total_size if self.total_size is not None else
                                sum(d.size for d in self.layers)
                                + (self.config.size if self.config else 0))
        elif self.reference or self.manifests:  # not an index's child index
            out["kind"] = self.kind
            out["manifests"] = [c.to_json() for c in self.manifests]
            out["platforms"] = list(self.platforms)
        if self.wasm is not None:
            out["wasm"] = self.wasm.to_json()
        return out

    def _subject_json(self, digest: str) -> dict[str, Any]:
        """The subject's descriptor as read when it names ``digest``, else its digest."""
        read = self.description.get("subject")
        if isinstance(read, Mapping) and read.get("digest") == digest:
            descriptor: dict[str, Any] = thaw(read)
            return descriptor
        return {"digest": digest}

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @classmethod
    def of(cls, info: Mapping[str, Any]) -> ArtifactInfo:
        """From :func:`toolfetch.ops.inspect_tags.inspect`'s JSON."""
        config = LayerInfo.of(info["config"]) if "config" in info else None
        layers = tuple(LayerInfo.of(d) for d in info.get("layers", ()))
        children = tuple(cls.of(c) for c in info.get("manifests", ()))
        types = [info.get("artifactType") or "", config.media_type if config else ""]
        types += [d.media_type for d in layers]
        wasm = WasmInfo.of(types) if info.get("kind") == "wasm" else None
        if wasm is None and children and info.get("kind") == "wasm":
            found = {c.wasm for c in children}
            wasm = found.pop() if len(found) == 1 else None
        return cls(
            reference=info.get("reference", ""), digest=info["digest"],
            media_type=info["mediaType"], size=info["size"], kind=info.get("kind", "artifact"),
            artifact_type=info.get("artifactType"), annotations=info.get("annotations"),
            subject=(info.get("subject") or {}).get("digest"), config=config, layers=layers,
            total_size=info.get("totalSize"), wasm=wasm, platform=info.get("platform"),
            manifests=children, platforms=tuple(info.get("platforms", ())),
            description=dict(info))
