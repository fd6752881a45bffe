"""What the command groups share: the global and ``--lockfile`` options, and turning parsed
options into the offline and progress switches and the library client they describe."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolfetch.core.host import offline_from_environment

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


def config_arg(p: argparse.ArgumentParser) -> None:
    """``--config F`` of the commands that read tools.yaml (api.paths.project_files' rule)."""
    p.add_argument("--config", type=Path, metavar="F",
                   help="tools.yaml (default: tools.yaml beside --lockfile when that is given, "
                   "else $TOOLFETCH_CONFIG, else lockfiles/tools.yaml or tools.yaml at the "
                   "repository root)")


def lockfile_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lockfile", type=Path, metavar="F",
                   help="the lockfile (default: tools.lock.json beside tools.yaml, which is "
                   "$TOOLFETCH_CONFIG, else found in lockfiles/ or at the repository root)")


def positive_int(text: str) -> int:
    """argparse ``type`` of ``--jobs``: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1 or not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {text!r}")
    return value


def jobs_arg(p: argparse.ArgumentParser, default: int, what: str = "parallel downloads") -> None:
    """``--jobs N`` of every command that has one: N >= 1, its default in the help."""
    p.add_argument("--jobs", type=positive_int, default=default, metavar="N",
                   help=f"{what} (at least 1; default {default})")


def json_arg(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--json", action="store_true", help=f"print {what} as JSON (default: text)")


def offline_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--offline", action="store_true", help="never touch the network; exit 6 if "
                   "something is not cached (also TOOLFETCH_OFFLINE=1)")


def platform_arg(p: Any, what: str = "the platform to use") -> None:
    """``--platform OS/ARCH`` on ``p``, a parser or a mutually exclusive group of one."""
    p.add_argument("--platform", metavar="OS/ARCH", help=f"{what}, e.g. linux/arm64 "
                   "(default: this host)")


def offline(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "offline", False)) or offline_from_environment()


def progress(args: argparse.Namespace) -> bool:
    from toolfetch.core.progress import enabled

    return enabled(not getattr(args, "no_progress", False) and not getattr(args, "quiet", False))


def quiet(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "quiet", False))


def client_of(args: argparse.Namespace, *, bars: bool = True) -> Client:
    """The library client these options describe (``--lockfile``, ``--config``,
    ``--cache-dir``, ``--offline``, ``--jobs``, progress bars unless ``bars`` is False)."""
    from toolfetch.api.client import Client

    return Client(getattr(args, "lockfile", None), config=getattr(args, "config", None),
                  cache_dir=getattr(args, "cache_dir", None), offline=offline(args),
                  jobs=getattr(args, "jobs", 8), progress=bars and progress(args))
