"""What a fetch is asked for: the (tool, platform) entries of a lockfile, in lockfile order."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from toolfetch.core.errors import MultipleErrors, ToolfetchError
from toolfetch.core.platform import Platform
from toolfetch.lock.lockfile import LockedPlatform, Lockfile


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
    """The (tool, platform) pairs to fetch, in lockfile order. Unknown tools raise.

    The order of ``tools`` is not kept (nor are duplicates): which error comes first, so the
    exit code, must not depend on how the command line happened to list them."""
    names = sorted(set(tools)) if tools else sorted(lockfile.tools)
    wants: list[Want] = []
    errors: list[ToolfetchError] = []
    for name in names:
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
    if errors:
        raise errors[0] if len(errors) == 1 else MultipleErrors(errors)
    return wants
