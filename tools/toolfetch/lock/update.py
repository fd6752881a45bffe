"""``toolfetch lock`` and ``lock --check``: resolve tools.yaml, compare with the lockfile, write.

The resolving is :class:`toolfetch.lock.resolve.Resolver`'s; this module decides what is
reused from the lockfile being replaced, reports every pin that changes and why
(:mod:`toolfetch.lock.changes`), and writes the lockfile atomically only once everything
resolved (byte-identical output for unchanged inputs).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
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
class LockResult:
    """What ``lock`` did: the lockfile, whether its text changed, and every pin that changed
    (:mod:`toolfetch.lock.changes`; empty for a first lock of a new lockfile: all added)."""

    lockfile: Lockfile
    changed: bool
    changes: tuple[Change, ...]


def run_lock(config: Config, lockfile_path: Path, tools: list[str], check: bool,
             jobs: int = 8, progress: bool = False, upgrade: bool = False, *,
             cache: Cache | None = None, refresh_assets: bool = False) -> LockResult:
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
    old: Lockfile | None = None
    old_text = None
    if lockfile_path.exists():
        try:
            old_text = lockfile_path.read_text(encoding="utf-8")
        except (OSError, ValueError):
            old_text = None  # replaced whole; Lockfile.load below says why if it must
        old = Lockfile.load(lockfile_path) if tools else _previous(lockfile_path)
    resolver = Resolver(config, lockfile_path, jobs, progress, old=old, cache=cache,
                        refresh_assets=refresh_assets)
    names = tools or sorted(config.tools)
    if any(config.tools[n].version for n in names):
        from toolfetch.lock.versions import version_refs

        resolver.ref_overrides = version_refs(config, lockfile_path, names, upgrade,
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
    changed = new.dumps() != old_text
    changes = tuple(diff(old.tools if old is not None else {}, new.tools))
    if check:
        if changed:
            why = "it does not exist" if old_text is None else "; ".join(map(str, changes)) \
                or "its formatting or mirrors differ"
            raise OutOfDateError(f"{lockfile_path} is out of date: {why}; run `toolfetch lock`")
        return LockResult(new, False, ())
    if changed:
        new.write()
    return LockResult(new, changed, changes)


def _previous(lockfile_path: Path) -> Lockfile | None:
    """The lockfile being replaced, for its asset pins; one that no longer loads has none."""
    try:
        return Lockfile.load(lockfile_path)
    except ToolfetchError as e:
        log.debug("%s: not reusing its pins (%s)", lockfile_path, e)
        return None


def upgrade_refs(config: Config, lockfile_path: Path, tools: Sequence[str],
                 cache: Cache | None = None, *, jobs: int = 8, progress: bool = False,
                 refresh_assets: bool = False) -> dict[str, tuple[str | None, str]]:
    """``lock --upgrade [TOOL…]``: relock with the highest matching tags.

    Returns ``{tool: (old_ref, new_ref)}`` for the tools that have a ``version``.
    """
    from toolfetch.lock.versions import locked_refs

    names = list(tools) or sorted(config.tools)
    before = locked_refs(lockfile_path)
    run_lock(config, lockfile_path, list(tools), check=False, jobs=jobs, progress=progress,
             upgrade=True, cache=cache, refresh_assets=refresh_assets)
    after = locked_refs(lockfile_path)
    return {name: (before[name][1] if name in before else None, after[name][1])
            for name in names if name in config.tools and config.tools[name].version
            and not config.tools[name].is_assets and name in after}
