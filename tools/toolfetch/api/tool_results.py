"""What the tool and lockfile methods of :class:`toolfetch.Client` return: frozen values,
no formatting (the command line turns them into text)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolfetch.core.frozen import freeze_fields, thaw


@dataclass(frozen=True)
class ToolLocation:
    """Where a locked tool is: its executable, its tree, the lockfile's platform key it was
    taken from (``linux/amd64``, or ``*`` for a tool of every platform) and its ``arg0``
    mode (``executable`` or ``tool``, docs/lockfile.md)."""

    tool: str
    platform: str
    executable: Path
    tree: Path
    arg0: str


@dataclass(frozen=True)
class ListedTool:
    """One locked tool (``toolfetch list``): ``source`` is the one reference or URL all its
    platforms share (else tools.yaml's ``ref`` as locked, else None), ``sources`` every one;
    ``cached``: the platform keys whose tree is in this machine's cache."""

    tool: str
    version: str | None
    source: str | None
    sources: tuple[str, ...]
    platforms: tuple[str, ...]
    cached: tuple[str, ...]


@dataclass(frozen=True)
class SignatureCheck:
    """One locked platform of a tool checked against tools.yaml's ``verify`` policy again
    (``toolfetch verify``): who signed (a cosign key's fingerprint, or a certificate's
    identity and issuer) and the signature's digest; both None for a tool without a policy."""

    tool: str
    platform: str
    signer: str | None
    signature: str | None

    @property
    def has_policy(self) -> bool:
        return self.signer is not None


@dataclass(frozen=True)
class ImportedTools:
    """tools.yaml entries read from DotSlash files or a rules_multitool lockfile (HTTP release
    assets), by tool name, and the tools.yaml they were added to (``written`` False: a dry
    run; nothing was written). Run :meth:`toolfetch.Client.lock` next to pin them.

    ``tools`` is read-only all the way down (mappings, and tuples for lists); it is left out
    of the hash (not of equality), so an ImportedTools is hashable."""

    config: Path
    tools: Mapping[str, Mapping[str, Any]] = field(hash=False)
    written: bool

    def __post_init__(self) -> None:
        freeze_fields(self, "tools")

    def plain_tools(self) -> dict[str, dict[str, Any]]:
        """``tools`` as dicts and lists, as tools.yaml holds them (for ``yaml`` or ``json``)."""
        tools: dict[str, dict[str, Any]] = thaw(self.tools)
        return tools
