"""The registry half of :class:`toolfetch.Client`: what works on references rather than on
the lockfile's tools (``pull``, ``list_tags``, ``get_artifact_info``, under the names an
ORAS-style client uses). A mixin so each half of the facade stays one module."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from toolfetch.core.errors import NotFoundError
from toolfetch.core.platform import Platform

if TYPE_CHECKING:
    from toolfetch.api.artifacts import ArtifactInfo
    from toolfetch.cache.store import Cache

PathArg = str | os.PathLike[str]


class RegistryMethods:
    """Methods on references (``host/repo:tag``, ``…@sha256:…``, ``oci-layout:DIR:tag``);
    the settings they use are the client's."""

    cache: Cache
    offline: bool
    jobs: int
    progress: bool

    def pull(self, ref: str, output: PathArg, platform: str | None = None) -> list[Path]:
        """Write an artifact's titled layers into ``output`` (``toolfetch pull -o``); an
        index is resolved for ``platform`` (default: this host). Never replaces a file
        (UsageError); NotFoundError when no layer has a title."""
        from toolfetch.core.reference import parse_any
        from toolfetch.ops.copy_pull import pull

        parsed = parse_any(ref)
        written = pull(parsed, Path(output).absolute(),
                       Platform.parse(platform) if platform else None, progress=self.progress)
        if not written:
            raise NotFoundError(f"pull {parsed}: no layer has a title; nothing to write")
        return written

    def list_tags(self, repository: str) -> list[str]:
        """Every tag of ``repository`` (``registry/name`` or ``oci-layout:DIR``, no tag)."""
        from toolfetch.ops.inspect_tags import tags

        return tags(repository)

    def get_artifact_info(self, ref: str) -> ArtifactInfo:
        """What ``ref`` names (``toolfetch inspect``): kind, layers, platforms, WASM kind."""
        from toolfetch.core.reference import parse_any
        from toolfetch.ops.inspect_tags import inspect
        from toolfetch.registry.targets import open_source

        parsed = parse_any(ref)
        from toolfetch.api.artifacts import ArtifactInfo

        return ArtifactInfo.of(inspect(parsed, open_source(parsed)))
