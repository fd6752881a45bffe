"""``toolfetch lock`` and ``lock --check``: resolve tools.yaml, compare with the lockfile, write.

The resolving is :class:`toolfetch.lock.resolve.Resolver`'s; this module decides what is
reused from the lockfile being replaced, reports every pin that changes and why
(:mod:`toolfetch.lock.changes`), and writes the lockfile atomically only once everything
resolved (byte-identical output for unchanged inputs).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from toolfetch.cache.store import Cache
from toolfetch.core.errors import NotFoundError, OutOfDateError, ToolfetchError, UnreachableError
from toolfetch.core.reference import rebase_layout_ref
from toolfetch.lock.changes import Change, diff
from toolfetch.lock.config import Config
from toolfetch.lock.lockfile import LockedTool, Lockfile
from toolfetch.lock.resolve import Resolver

log = logging.getLogger("toolfetch")


@dataclass(frozen=True)
class Upgrade:
    """What ``lock --upgrade`` did to a tool with a ``version`` constraint: the reference it
    was locked from (None: it was not locked) and the one it is locked from now."""

    tool: str
    old: str | None
    new: str

    @property
    def moved(self) -> bool:
        return self.old != self.new


@dataclass(frozen=True)
class LockResult:
    """What ``lock`` did: the lockfile, whether its text changed, every pin that changed
    (:mod:`toolfetch.lock.changes`; empty for a first lock of a new lockfile: all added) and,
    with ``upgrade``, each tool with a ``version`` and where it moved (:class:`Upgrade`).

    ``lockfile`` is the :class:`~toolfetch.lock.lockfile.Lockfile` as written, not a copy:
    read it, don't change it. It is left out of equality and the hash, which the other
    fields (all frozen) decide."""

    lockfile: Lockfile = field(compare=False)
    changed: bool
    changes: tuple[Change, ...]
    upgrades: tuple[Upgrade, ...] = ()


def run_lock(config: Config, lockfile_path: Path, tools: list[str], check: bool,
             jobs: int = 8, progress: bool = False, upgrade: bool = False, *,
             cache: Cache | None = None, refresh_assets: bool = False,
             offline: bool = False) -> LockResult:
    """Resolve and (unless ``check``) write; returns what changed, pin by pin.

    ``check`` resolves every tag against its registry (the network is needed: a tag that
    moved upstream is drift too); a registry it cannot reach is exit 6 saying so.

    Tools with a ``version`` keep their locked tag while it satisfies the constraint; with
    ``upgrade`` they move to the highest matching tag (see :mod:`toolfetch.lock.versions`). HTTP
    assets keep their pins unless their entry changed or ``refresh_assets``; assets
    downloaded to pin them go into ``cache``.
    """
    unknown = [t for t in tools if t not in config.tools]
    if unknown:
        raise NotFoundError(f"{config.path}: no tool {', '.join(map(repr, unknown))}; "
                            f"it has: {', '.join(sorted(config.tools))}")
    old, old_text = _previous(lockfile_path, strict=bool(tools))
    resolver = Resolver(config, lockfile_path, jobs, progress, old=old, cache=cache,
                        refresh_assets=refresh_assets, offline=offline)
    names = tools or sorted(config.tools)
    if any(config.tools[n].version for n in names):
        from toolfetch.lock.versions import version_refs

        resolver.ref_overrides = version_refs(config, old, lockfile_path, names, upgrade,
                                              resolver.sources)
    try:
        resolved = resolver.resolve(names)
    except UnreachableError as e:
        if not check:
            raise
        raise e.context("lock --check resolves every tag against its registry, so it cannot "
                        "tell whether the lockfile is current") from e
    if any(config.tools[n].verify for n in names) or any(
            entry.verified for t in resolved.values() for entry in t.platforms.values()):
        from toolfetch.lock.signatures import verify_tools  # docs/signing.md

        resolved = verify_tools(config, lockfile_path, resolved, resolver.sources, cache, old)
    merged: dict[str, LockedTool] = {}
    for name in config.tools:
        if name in resolved:
            merged[name] = resolved[name]
        elif old is not None and name in old.tools:
            merged[name] = old.tools[name]
    mirrors = {
        host: tuple(rebase_layout_ref(m, config.path.parent, lockfile_path.parent)
                    for m in ms)
        for host, ms in config.mirrors.items()
    }
    new = Lockfile(lockfile_path, merged, mirrors)
    text = new.dumps()
    changed = text != old_text
    changes = tuple(diff(old.tools if old is not None else {}, new.tools))
    if check:
        if changed:
            why = "it does not exist" if old_text is None else "; ".join(map(str, changes)) \
                or "its formatting or mirrors differ"
            raise OutOfDateError(f"{lockfile_path} is out of date: {why}; run `toolfetch lock`")
        return LockResult(new, False, ())
    if changed:
        new.write(text)
    return LockResult(new, changed, changes, _upgrades(config, names, old, new) if upgrade
                      else ())


def _previous(lockfile_path: Path, strict: bool) -> tuple[Lockfile | None, str | None]:
    """The lockfile being replaced (its pins, its locked tags) and its text (what the new one
    is compared with), from one read: ``(None, None)`` when there is none. One that does not
    load is replaced whole, ``(None, "")``, unless ``strict`` (tools are named, so the other
    tools' pins must come from it): then its error is raised."""
    if not lockfile_path.exists():
        return None, None
    try:
        old, raw = Lockfile.load_with_bytes(lockfile_path)
    except ToolfetchError as e:
        if strict:
            raise
        log.debug("%s: not reusing its pins (%s)", lockfile_path, e)
        return None, ""
    return old, raw.decode("utf-8", errors="replace")  # not UTF-8: no new text equals it


def _upgrades(config: Config, names: Sequence[str], old: Lockfile | None,
              new: Lockfile) -> tuple[Upgrade, ...]:
    """``lock --upgrade``: each named tool with a ``version`` (an asset's is informational),
    from the ref it was locked from to the one it is locked from now."""
    from toolfetch.lock.versions import locked_refs

    before, after = locked_refs(old), locked_refs(new)
    return tuple(Upgrade(name, before[name][1] if name in before else None, after[name][1])
                 for name in names if config.tools[name].version
                 and not config.tools[name].is_assets and name in after)
