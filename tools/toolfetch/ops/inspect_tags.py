"""``inspect``, ``exists``, ``tags`` and ``referrers``: read-only questions about a registry.

``inspect`` tells apart a container image (a real image config, no ``artifactType``), a WASM
artifact (any ``application/vnd.wasm.*`` artifact, config or layer type), a toolfetch tool
(``application/vnd.toolfetch.tool.v1``) and any other artifact. ``referrers`` asks the OCI 1.1
referrers API and falls back to the ``sha256-<hex>`` tag schema on registries without it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from toolfetch.core.digest import Digest
from toolfetch.core.errors import UsageError
from toolfetch.core.reference import AnyReference, Reference, parse_any
from toolfetch.oci.manifest import (
    DOCKER_MANIFEST,
    IMAGE_CONFIG_TYPES,
    OCI_EMPTY,
    TOOL_ARTIFACT_TYPE,
    Descriptor,
    Manifest,
)
from toolfetch.registry.sources import ContentSource
from toolfetch.registry.targets import open_source

WASM_PREFIX = "application/vnd.wasm."
INSPECT_JOBS = 8


def artifact_type(manifest: Manifest, what: str) -> str | None:
    """``artifactType``, else the config's media type when it is not an image's or empty."""
    declared = manifest.data.get("artifactType")
    if isinstance(declared, str) and declared:
        return declared
    if manifest.is_index:
        return None
    config = manifest.config(what)
    if config is None or config.media_type in IMAGE_CONFIG_TYPES or config.media_type == OCI_EMPTY:
        return None
    return config.media_type


def classify(manifest: Manifest, what: str) -> str:
    """``image``, ``wasm``, ``tool`` or ``artifact`` for an image manifest."""
    config = manifest.config(what)
    types = [artifact_type(manifest, what) or "", config.media_type if config else ""]
    types += [d.media_type for d in manifest.layers(what)]
    if any(t.startswith(WASM_PREFIX) for t in types):
        return "wasm"
    if TOOL_ARTIFACT_TYPE in types[:2]:
        return "tool"
    image_config = config is not None and config.media_type in IMAGE_CONFIG_TYPES
    if manifest.data.get("artifactType") is None and (
        manifest.media_type == DOCKER_MANIFEST or image_config
    ):
        return "image"
    return "artifact"


def _descriptor_json(d: Descriptor) -> dict[str, Any]:
    out = d.to_json()
    if d.title:
        out["title"] = d.title
    return out


def describe_manifest(manifest: Manifest, what: str) -> dict[str, Any]:
    info: dict[str, Any] = {"digest": str(manifest.digest), "mediaType": manifest.media_type,
                            "size": len(manifest.raw)}
    annotations = manifest.data.get("annotations")
    if isinstance(annotations, dict) and annotations:
        info["annotations"] = annotations
    subject = manifest.subject(what) if not manifest.is_index else None
    if subject is not None:
        info["subject"] = subject.to_json()
    atype = artifact_type(manifest, what)
    if atype:
        info["artifactType"] = atype
    if manifest.is_index:
        return info
    config = manifest.config(what)
    if config is not None:
        info["config"] = config.to_json()
    layers = manifest.layers(what)
    info["kind"] = classify(manifest, what)
    info["layers"] = [_descriptor_json(d) for d in layers]
    info["totalSize"] = sum(d.size for d in layers) + (config.size if config else 0)
    return info


def inspect(ref: AnyReference, source: ContentSource) -> dict[str, Any]:
    what = f"inspect {ref}"
    manifest = source.get_manifest(ref.target, ref.digest)
    info = {"reference": str(ref), **describe_manifest(manifest, what)}
    if not manifest.is_index:
        return info
    descs = manifest.manifests(what)
    # Each child once (an index may list one many times), a few at a time.
    unique = list(dict.fromkeys(d.digest for d in descs))
    with ThreadPoolExecutor(INSPECT_JOBS, thread_name_prefix="inspect") as pool:
        fetched = dict(zip(unique, pool.map(lambda d: source.get_manifest(str(d), d), unique),
                           strict=True))
    children = []
    for i, desc in enumerate(descs):
        child_what = f"{what} manifests[{i}]"
        entry: dict[str, Any] = desc.to_json()
        if desc.platform is not None:
            entry["platform"] = str(desc.platform)
        entry.update(describe_manifest(fetched[desc.digest], child_what))
        children.append(entry)
    info["manifests"] = children
    kinds = {c.get("kind", "artifact") for c in children}
    info["kind"] = kinds.pop() if len(kinds) == 1 else ("empty" if not kinds else "mixed")
    info["platforms"] = [c["platform"] for c in children if "platform" in c]
    return info


def list_referrers(source: ContentSource, subject: Digest,
                   artifact_type_filter: str | None = None) -> list[Descriptor]:
    """Referrers of ``subject``: a registry's :meth:`RegistryClient.referrers` (the API, else
    the ``sha256-<hex>`` tag); a layout's ``sha256-<hex>`` tag."""
    from toolfetch.core.errors import NotFoundError
    from toolfetch.registry.client import RegistryClient

    if isinstance(source, RegistryClient):
        return source.referrers(subject, artifact_type_filter)
    try:
        index = source.get_manifest(subject.tag)
    except NotFoundError:
        return []
    entries = index.manifests(f"referrers of {subject}") if index.is_index else []
    if artifact_type_filter:
        entries = [e for e in entries if e.artifact_type == artifact_type_filter]
    return entries


def manifest_digest(ref: AnyReference) -> Digest:
    """``exists``: the digest of what ``ref`` names (NotFoundError when nothing)."""
    return open_source(ref).get_manifest(ref.target, ref.digest).digest


def tags(text: str) -> list[str]:
    """``tags``: every tag of a repository given without tag or digest."""
    ref = parse_any(text)
    if isinstance(ref, Reference) and (ref.digest or ":" in text.rpartition("/")[2]):
        raise UsageError(f"tags: give a repository without tag or digest, not {text}")
    return open_source(ref).list_tags()


def referrers(ref: AnyReference, artifact_type: str | None) -> list[Descriptor]:
    """``referrers``: what refers to the manifest ``ref`` names."""
    source = open_source(ref)
    subject = ref.digest or source.get_manifest(ref.target).digest
    return list_referrers(source, subject, artifact_type)
