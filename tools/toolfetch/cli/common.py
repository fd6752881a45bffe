"""What the command groups share: the global and ``--lockfile`` options, and turning parsed
options into a cache, a lockfile path, a platform, and the offline and progress switches."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolfetch.cache.store import Cache
from toolfetch.core.host import cache_root, default_lockfile
from toolfetch.core.platform import Platform, host_platform

if TYPE_CHECKING:
    from toolfetch.api.client import Client

Command = Callable[[str, str], argparse.ArgumentParser]  # (name, help) -> its subparser


def add_global_options(p: argparse.ArgumentParser, suppress: bool) -> None:
    d: dict[str, Any] = {"default": argparse.SUPPRESS} if suppress else {}
    p.add_argument("--cache-dir", metavar="DIR", help="cache root (default: $TOOLFETCH_CACHE_DIR, "
                   "$XDG_CACHE_HOME/toolfetch or ~/.cache/toolfetch)", **d)
    p.add_argument("-v", "--verbose", action="count", help="more output", **(
        d if suppress else {"default": 0}))
    p.add_argument("-q", "--quiet", action="store_true", help="only errors", **d)
    p.add_argument("--no-progress", action="store_true", help="no progress bars", **d)


def lockfile_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lockfile", type=Path, metavar="F",
                   help="default: lockfiles/tools.lock.json at the repository root")


def cache_of(args: argparse.Namespace) -> Cache:
    """``--cache-dir``, else the environment's cache (:func:`toolfetch.core.host.cache_root`)."""
    return Cache(Path(cache_root(getattr(args, "cache_dir", None))))


def lockfile_of(args: argparse.Namespace) -> Path:
    """``--lockfile``, else lockfiles/tools.lock.json at the repository root; absolute."""
    given: Path | None = getattr(args, "lockfile", None)
    return (given or Path(default_lockfile())).absolute()


def offline(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "offline", False)) or os.environ.get("TOOLFETCH_OFFLINE") == "1"


def progress(args: argparse.Namespace) -> bool:
    from toolfetch.core.progress import enabled

    return enabled(not getattr(args, "no_progress", False) and not getattr(args, "quiet", False))


def platform_of(value: str | None) -> Platform:
    """``--platform`` as given, else this host's."""
    return Platform.parse(value) if value else host_platform()


def quiet(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "quiet", False))


def client_of(args: argparse.Namespace, *, bars: bool = True) -> Client:
    """The library client these options describe (``--lockfile``, ``--cache-dir``,
    ``--offline``, ``--jobs``, progress bars unless ``bars`` is False)."""
    from toolfetch.api.client import Client

    return Client(lockfile_of(args), cache_dir=cache_of(args).root, offline=offline(args),
                  jobs=getattr(args, "jobs", 8), progress=bars and progress(args))
