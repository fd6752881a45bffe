"""What the registry methods of :class:`toolfetch.Client` return, besides ``ArtifactInfo``:
frozen values, with the strings a script prints or passes on (digests as ``sha256:…``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolfetch.core.frozen import freeze_fields, thaw


@dataclass(frozen=True)
class ArtifactRef:
    """A manifest or index that a write produced or named: ``reference`` is where it went
    (``push``, ``publish``, ``tag``: the reference given; ``copy``: the destination;
    ``attach``: the subject's; ``publish_from_lockfile``: ``PREFIX/<tool>:<version>``) and
    ``digest`` the ``sha256:…`` of what was written there. ``str()`` is ``reference@digest``,
    a reference that pins it."""

    reference: str
    digest: str

    def __str__(self) -> str:
        return f"{self.reference}@{self.digest}"


@dataclass(frozen=True)
class PullResult:
    """What :meth:`toolfetch.Client.pull_artifact` did in ``output``: ``files`` are the
    artifact's files there (a directory for a layer unpacked), in layer order; ``present``
    those of them that were there already with the very same bytes, left as they were;
    ``written`` the others."""

    reference: str
    output: Path
    files: tuple[Path, ...]
    present: tuple[Path, ...] = ()

    @property
    def written(self) -> tuple[Path, ...]:
        return tuple(p for p in self.files if p not in self.present)


@dataclass(frozen=True)
class Referrer:
    """An artifact that refers to a subject (a signature, an SBOM, …): its manifest's
    ``digest``, ``media_type``, ``size``, ``artifact_type`` and ``annotations``;
    ``descriptor`` is the OCI descriptor as listed (:meth:`to_json`: what ``referrers
    --json`` prints). Both mappings are read-only; the hash leaves them out."""

    digest: str
    media_type: str
    size: int
    artifact_type: str | None
    annotations: Mapping[str, str] = field(hash=False)
    descriptor: Mapping[str, Any] = field(repr=False, compare=False)

    def __post_init__(self) -> None:
        freeze_fields(self, "annotations", "descriptor")

    def to_json(self) -> dict[str, Any]:
        """The descriptor as dicts and lists (``referrers --json`` prints a list of them)."""
        descriptor: dict[str, Any] = thaw(self.descriptor)
        return descriptor


@dataclass(frozen=True)
class LogoutResult:
    """``key`` is the registry's key in the Docker config (its host, or
    ``https://index.docker.io/v1/`` for Docker Hub); ``removed`` whether credentials were
    stored for it."""

    key: str
    removed: bool
