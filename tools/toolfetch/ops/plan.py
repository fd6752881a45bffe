"""What a fetch is asked for: the (tool, platform) entries of a lockfile, in lockfile order."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from toolfetch.core.errors import NotFoundError, ToolfetchError, raise_all
from toolfetch.core.lockindex import unavailable_warning
from toolfetch.core.platform import Platform
from toolfetch.lock.lockfile import LockedPlatform, Lockfile

log = logging.getLogger("toolfetch")


@dataclass(frozen=True)
class Want:
    """One tool on one platform, as the lockfile pins it."""

    tool: str
    key: str
    entry: LockedPlatform

    @property
    def what(self) -> str:
        return f"tool {self.tool} ({self.key})"

    @property
    def order(self) -> tuple[str, str]:
        """Lockfile order (its tools and platforms are sorted): what decides the exit code."""
        return self.tool, self.key

    @property
    def source_id(self) -> str:
        """Where its blobs come from: the reference, or (an asset) its URLs and the tool,
        which names its mirrors' repositories."""
        if self.entry.is_asset:
            return "\0".join(("asset", self.tool, *self.entry.urls))
        return self.entry.ref


def plan(lockfile: Lockfile, tools: Iterable[str] | None, platform: Platform | None,
         all_platforms: bool) -> list[Want]:
    """:func:`plan_skipping`'s wants."""
    return plan_skipping(lockfile, tools, platform, all_platforms)[0]


def plan_skipping(lockfile: Lockfile, tools: Iterable[str] | None, platform: Platform | None,
                  all_platforms: bool) -> tuple[list[Want], dict[str, NotFoundError]]:
    """The (tool, platform) pairs to fetch, in lockfile order. Unknown tools raise.

    With no tools named (``fetch``, ``bootstrap``, ``export`` of a whole lockfile), a tool
    locked for other platforms only is skipped with a warning naming it, ``platform`` and
    the platforms it has (:func:`unavailable`), as DotSlash and rules_multitool fail only
    when such a tool is run; a tool named is NotFoundError (exit 4) saying the same.

    The order of ``tools`` is not kept (nor are duplicates): which error comes first, so the
    exit code, must not depend on how the command line happened to list them.

    Returns the wants and the tools skipped, each with the error naming it would give
    (``bootstrap`` writes a launcher that says so)."""
    names = sorted(set(tools)) if tools else sorted(lockfile.tools)
    skipped = {} if tools or all_platforms or platform is None else unavailable(lockfile,
                                                                                platform)
    for name in skipped:
        log.warning("%s", unavailable_warning(name, str(platform),
                                              lockfile.tools[name].platforms))
    wants: list[Want] = []
    errors: list[ToolfetchError] = []
    for name in names:
        if name in skipped:
            continue
        try:
            tool = lockfile.tool(name)
            if all_platforms:
                wants.extend(Want(name, k, e) for k, e in sorted(tool.platforms.items()))
            else:
                assert platform is not None
                key, entry = tool.for_platform(platform, lockfile.path)
                wants.append(Want(name, key, entry))
        except ToolfetchError as e:
            errors.append(e)
    raise_all(errors)
    return wants, skipped


def unavailable(lockfile: Lockfile, platform: Platform) -> dict[str, NotFoundError]:
    """The tools of ``lockfile`` with no entry usable on ``platform`` (no exact or variant
    match, no ``"*"``), each with the error naming it would give (exit 4), in order."""
    missing: dict[str, NotFoundError] = {}
    for name in sorted(lockfile.tools):
        try:
            lockfile.tools[name].for_platform(platform, lockfile.path)
        except NotFoundError as e:
            missing[name] = e
    return missing
