"""What ``verify_cache`` found and did: bad entries, those left alone, what was re-fetched."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CacheProblem:
    """One bad entry: ``kind`` is ``blob``, ``tree`` or ``index`` (a lockfile index),
    ``digest`` its ``sha256:…``, ``why`` what is wrong with it. Fields only: the command line
    words it (``cache verify``)."""

    kind: str
    digest: str
    why: str


@dataclass(frozen=True)
class CacheCheck:
    """The result of :meth:`toolfetch.Client.verify_cache`.

    ``problems``: every bad entry found. After a repair, ``kept`` are those left alone (in
    use by another process meanwhile), ``dropped`` how many were removed, and ``refetched``
    the lockfile whose tools for this host were fetched again (None: no repair, or no
    lockfile there).
    """

    cache: Path
    problems: tuple[CacheProblem, ...]
    repaired: bool = False
    kept: tuple[CacheProblem, ...] = ()
    refetched: Path | None = None

    @property
    def intact(self) -> bool:
        return not self.problems

    @property
    def dropped(self) -> int:
        return len(self.problems) - len(self.kept) if self.repaired else 0
