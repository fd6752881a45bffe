"""What a ``lock`` changes in the lockfile, pin by pin, and why.

A pin never changes silently: ``lock`` reports every tool and platform it adds, removes or
moves (old → new digest) with the reason, and ``lock --check`` names the same reasons when it
fails. The reason is read off the two lockfiles: the same reference now naming other content
is a tag that moved upstream; another reference, URL, path or declared digest is an edit of
tools.yaml; an HTTP asset at the same URL with other bytes changed on its server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from toolfetch.lock.locked import LockedPlatform, LockedTool


@dataclass(frozen=True)
class Change:
    """One pin that differs: ``old``/``new`` are the manifest (or asset) digests, None when
    the pin was added or removed."""

    tool: str
    platform: str | None  # None: the whole tool
    old: str | None
    new: str | None
    why: str

    @property
    def kind(self) -> str:
        return "added" if self.old is None else "removed" if self.new is None else "changed"

    def __str__(self) -> str:
        where = self.tool if self.platform is None else f"{self.tool} ({self.platform})"
        if self.old is None:
            return f"{where}: added {self.new} ({self.why})"
        if self.new is None:
            return f"{where}: removed, was {self.old} ({self.why})"
        return f"{where}: {self.old} -> {self.new} ({self.why})"


def _why(old: LockedPlatform, new: LockedPlatform) -> str:
    if replace(old, verified=None) == replace(new, verified=None):
        return "only what was verified: tools.yaml's verify policy or the signature changed"
    if old.is_asset != new.is_asset:
        return "tools.yaml changed: the source moved between a registry and a URL"
    if old.is_asset:
        if old.urls != new.urls:
            return "tools.yaml changed: the asset's URLs"
        if old.path != new.path or old.layers[0].unpack != new.layers[0].unpack:
            return "tools.yaml changed: the asset's path or format"
        return f"the asset at {new.urls[0]} now serves other bytes"
    if old.ref != new.ref:
        return f"tools.yaml changed: ref {old.ref} -> {new.ref}"
    if old.manifest != new.manifest:
        tag = new.ref.rpartition(":")[2] if "@" not in new.ref else new.ref
        return f"the tag {tag} of {new.ref} moved upstream"
    return "tools.yaml changed: the path or layers"


def diff(old: Mapping[str, LockedTool], new: Mapping[str, LockedTool]) -> list[Change]:
    """Every pin that differs between two lockfiles' tools, in lockfile order."""
    changes: list[Change] = []
    for name in sorted(set(old) | set(new)):
        if name not in new:
            changes.append(Change(name, None, "locked", None, "not in tools.yaml any more"))
            continue
        if name not in old:
            changes.append(Change(name, None, None, "locked", "new in tools.yaml"))
            continue
        before, after = old[name].platforms, new[name].platforms
        for key in sorted(set(before) | set(after)):
            was, now = before.get(key), after.get(key)
            if was == now:
                continue
            if was is None:
                assert now is not None
                changes.append(Change(name, key, None, str(now.pin), "a platform tools.yaml "
                                      "now asks for, or the index now offers"))
            elif now is None:
                changes.append(Change(name, key, str(was.pin), None, "a platform tools.yaml "
                                      "no longer asks for, or the index no longer offers"))
            else:
                changes.append(Change(name, key, str(was.pin), str(now.pin), _why(was, now)))
        if old[name].fields != new[name].fields and not any(c.tool == name for c in changes):
            changes.append(Change(name, None, "locked", "locked", "tools.yaml changed: the "
                                  "tool's ref, path, version or arg0"))
    return changes
