"""The values a lockfile holds: a tool, its platforms, their layers (frozen dataclasses).

:mod:`toolfetch.lock.lockfile` reads and writes them; everything downstream of the lockfile
(fetch, the tree key, export, the shims' equivalents) works from these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from toolfetch.core.digest import Digest
from toolfetch.core.errors import NotFoundError
from toolfetch.core.platform import Platform, select_platform, spelling_hint
from toolfetch.lock.verified import Verified

ANY_PLATFORM = "*"
FIELDS = ("ref", "path", "version", "arg0")  # a tool's own fields, copied from tools.yaml
ARG0_MODES = ("tool", "executable")


@dataclass(frozen=True)
class LockedLayer:
    digest: Digest
    size: int
    media_type: str
    title: str | None
    unpack: str

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"digest": str(self.digest), "mediaType": self.media_type,
                               "size": self.size, "unpack": self.unpack}
        if self.title is not None:
            out["title"] = self.title
        return out


@dataclass(frozen=True)
class LockedPlatform:
    """One platform of a tool: from a registry (``ref``, ``manifest``) or an HTTP release
    asset (``urls``, tried in order; one layer, the file itself; ``ref`` is empty)."""

    ref: str
    path: str
    manifest: Digest | None
    index: Digest | None
    layers: tuple[LockedLayer, ...]
    urls: tuple[str, ...] = ()
    blake3: str | None = None  # an asset's declared BLAKE3 digest (hex), checked by lock
    verified: Verified | None = None  # the signature lock checked (lock.signatures)

    @property
    def is_asset(self) -> bool:
        return bool(self.urls)

    @property
    def source(self) -> str:
        """Where it comes from, for messages: the ref, or the first URL."""
        return self.ref or self.urls[0]

    @property
    def pin(self) -> Digest:
        """What it pins: the manifest's digest, or an HTTP asset's sha256."""
        return self.manifest if self.manifest is not None else self.layers[0].digest

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"layers": [layer.to_json() for layer in self.layers],
                               "path": self.path}
        if self.verified is not None:
            out["verified"] = self.verified.to_json()
        if self.urls:
            out["urls"] = list(self.urls)
            if self.blake3 is not None:
                out["blake3"] = self.blake3
            return out
        out.update(manifest=str(self.manifest), ref=self.ref)
        if self.index is not None:
            out["index"] = str(self.index)
        return out

    @cached_property
    def tree(self) -> Digest:
        """The key of this entry's tree in the cache (see :mod:`toolfetch.core.treekey`)."""
        from toolfetch.core.treekey import tree_key

        return Digest.parse(tree_key(layer.to_json() for layer in self.layers))


@dataclass(frozen=True)
class LockedTool:
    name: str
    fields: Mapping[str, str]  # ref / path / version / arg0 as written in tools.yaml
    platforms: Mapping[str, LockedPlatform]

    @property
    def arg0(self) -> str:
        """What the tool gets as argv[0] (docs/design.md, "arg0"): ``tool`` or
        ``executable`` (the default)."""
        return self.fields.get("arg0", "executable")

    def for_platform(self, wanted: Platform, lockfile: Path) -> tuple[str, LockedPlatform]:
        for key in (str(wanted), wanted.key):  # as written, then as lock writes it
            if key in self.platforms:
                return key, self.platforms[key]
        specific = [k for k in self.platforms if k != ANY_PLATFORM]
        offered = [Platform.parse(k) for k in specific]
        if any(wanted.accepts(p) for p in offered):
            chosen = specific[select_platform(wanted, offered, f"tool {self.name}")]
            return chosen, self.platforms[chosen]
        if ANY_PLATFORM in self.platforms:
            return ANY_PLATFORM, self.platforms[ANY_PLATFORM]
        raise NotFoundError(f"tool {self.name} is not locked for platform {wanted} in {lockfile}; "
                            f"locked platforms: {', '.join(sorted(self.platforms))}"
                            f"{spelling_hint(str(wanted))}")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.fields)
        out["platforms"] = {k: v.to_json() for k, v in sorted(self.platforms.items())}
        return out
