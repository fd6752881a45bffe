"""HTTP release assets as OCI artifacts: what ``export`` and ``publish --from-lockfile`` write.

A locked asset becomes an ORAS-style artifact manifest: ``artifactType``
``application/vnd.toolfetch.tool.v1``, the empty config, and the asset as its one layer (the
lockfile's mediaType, its title as ``org.opencontainers.image.title``). A tool's platforms
become an index of those manifests, each entry with its platform. The JSON is canonical
(sorted keys, compact), so one lockfile entry gives the same digests on every machine.

Such a registry or layout then serves the asset's bytes by sha256 to any lockfile that pins
it: name it as a mirror of the asset's host (``mirrors: {github.com: [registry/prefix]}``)
and ``fetch`` finds the blob in ``prefix/<tool>``, which is where ``publish --from-lockfile
[TOOL…] REGISTRY/PREFIX`` puts each tool (tagged with its ``version``, else ``latest``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from toolfetch.cache.store import Cache
from toolfetch.core.digest import Digest
from toolfetch.core.errors import NotFoundError, UsageError
from toolfetch.core.platform import Platform
from toolfetch.core.reference import AnyReference, parse_any, refuse_offline
from toolfetch.lock.lockfile import LockedPlatform, Lockfile
from toolfetch.oci import manifest as oci

log = logging.getLogger("toolfetch")


def asset_manifest(entry: LockedPlatform) -> bytes:
    """The artifact manifest of one locked asset (canonical JSON)."""
    layer = entry.layers[0]
    annotations = {oci.ANNOTATION_TITLE: layer.title} if layer.title else {}
    return oci.artifact_manifest([oci.Descriptor(layer.media_type, layer.digest, layer.size,
                                                 annotations)])


def asset_index(manifests: Sequence[tuple[str, bytes]]) -> bytes:
    """An index of ``(platform key, manifest bytes)``, in key order (canonical JSON)."""
    return oci.artifact_index([
        oci.Descriptor(oci.OCI_MANIFEST, Digest.of_bytes(raw), len(raw), {},
                       Platform.parse(key)) for key, raw in sorted(manifests)])


def asset_tools(lockfile: Lockfile, names: Sequence[str]) -> list[str]:
    """The tools (``names``, else all) that have HTTP asset platforms; others are refused."""
    chosen = list(names) or sorted(t for t, tool in lockfile.tools.items()
                                   if any(e.is_asset for e in tool.platforms.values()))
    for name in chosen:
        tool = lockfile.tool(name)
        if not any(e.is_asset for e in tool.platforms.values()):
            raise UsageError(f"tool {name} in {lockfile.path} has no HTTP asset to publish "
                             "(its platforms come from a registry; use `copy`)")
    if not chosen:
        raise NotFoundError(f"{lockfile.path} locks no HTTP assets")
    return chosen


def publish_from_lockfile(lockfile: Lockfile, names: Sequence[str], prefix: str,
                          cache: Cache, *, offline: bool = False, jobs: int = 8,
                          progress: bool = False) -> dict[str, tuple[AnyReference, Digest]]:
    """Push each asset tool to ``prefix/<tool>:<version or latest>``; returns each tool's
    reference and index digest. The assets come through the cache (fetched first,
    verified, ``jobs`` at a time; ``offline``: only what the cache and layout mirrors
    hold)."""
    from toolfetch.ops.fetch import Fetcher
    from toolfetch.ops.plan import plan
    from toolfetch.registry.targets import open_target

    tools = asset_tools(lockfile, names)
    refs = {name: parse_any(f"{prefix.rstrip('/')}/{name}:"
                            f"{_tag(lockfile.tools[name].fields.get('version') or 'latest')}",
                            lockfile.base_dir) for name in tools}
    if offline:  # before anything is fetched or pushed
        refuse_offline("publish", *refs.values())
    wants = [w for w in plan(lockfile, tools, None, True) if w.entry.is_asset]
    fetcher = Fetcher(cache, lockfile, offline=offline, jobs=jobs, progress=progress)
    fetcher.fetch_blobs(wants)  # the files as they are: nothing to unpack for an upload
    out: dict[str, tuple[AnyReference, Digest]] = {}
    for name in tools:
        ref = refs[name]
        target = open_target(ref, fetcher.sources.transport)  # one transport, one token
        empty = oci.empty_config()
        target.put_blob(empty.digest, empty.size, lambda: _empty_file(cache), ())
        manifests = []
        for w in (w for w in wants if w.tool == name):
            layer = w.entry.layers[0]
            blob = cache.blob_path(layer.digest)
            target.put_blob(layer.digest, layer.size, _provider(blob), ())
            raw = asset_manifest(w.entry)
            target.put_manifest(raw, oci.OCI_MANIFEST, None)
            manifests.append((w.key, raw))
        raw = asset_index(manifests)
        target.put_manifest(raw, oci.OCI_INDEX, ref.tag)
        out[name] = (ref, Digest.of_bytes(raw))
    return out


def _tag(version: str) -> str:
    """A version as a tag: characters a tag cannot hold become ``_``."""
    import re

    tag = re.sub(r"[^\w.-]", "_", version).lstrip(".-") or "latest"
    return tag[:128]


def _provider(path: Path) -> Callable[[], Path]:
    return lambda: path


def _empty_file(cache: Cache) -> Path:
    def write(f: BinaryIO) -> None:
        f.write(oci.EMPTY_JSON)

    return cache.store_blob(oci.empty_config().digest, write)
