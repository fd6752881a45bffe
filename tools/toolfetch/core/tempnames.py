"""Temp files: one naming scheme for every writer (the cache's ``tmp/``, lockfile indexes,
OCI layouts), parsed in one place, and one test of whether their writer is gone.

A temp name says who wrote it: ``.<name>.<host tag>-<pid>-<random><suffix>``, suffix ``.part``
(a file), ``.tree`` (a directory) or ``.tmp``. Whoever cleans up (``cache gc``, every
``export``) removes one only when it is :func:`abandoned`: written on this host by a pid that
is gone, *and* untouched for a grace period, since a writer in another pid namespace (a
container sharing the host name) looks dead from here while it writes.
"""

from __future__ import annotations

import hashlib
import os

SUFFIXES = (".part", ".tree", ".tmp")
# A temp file of another host (a share), or named by an older toolfetch, goes once untouched
# this long: its writer's liveness cannot be asked.
FOREIGN_GRACE = 24 * 3600.0


def host_tag() -> str:
    """Which machine wrote a temp file (a cache or layout may sit on a share)."""
    return hashlib.sha256(os.uname().nodename.encode()).hexdigest()[:8]


def temp_name(name: str, suffix: str = ".part") -> str:
    """A fresh temp name for ``name`` that names its writer (this host, this pid)."""
    return f".{name}.{host_tag()}-{os.getpid()}-{os.urandom(4).hex()}{suffix}"


def temp_owner(name: str) -> tuple[str, int] | None:
    """(host tag, pid) of a name :func:`temp_name` made, else None."""
    suffix = next((s for s in SUFFIXES if name.endswith(s)), None)
    if not name.startswith(".") or suffix is None:
        return None
    parts = name[: -len(suffix)].rpartition(".")[2].split("-")
    if len(parts) != 3 or not parts[1].isdigit() or len(parts[0]) != 8 or len(parts[1]) > 10:
        return None
    return parts[0], int(parts[1])


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists here; True when that cannot be told (someone else's
    process, or a number no process can have), so nothing is removed on a guess."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError, ValueError):
        return True
    return True


def abandoned(name: str, age: float, grace: float, foreign_grace: float) -> bool:
    """Whether the temp file ``name``, untouched for ``age`` seconds, may go: its writer was
    this host's and is gone, and ``age`` is over ``grace``; a name of another host, or not of
    this scheme (an older toolfetch's), once ``age`` is over ``foreign_grace``."""
    owner = temp_owner(name)
    if owner is None or owner[0] != host_tag():
        return age > foreign_grace
    return age >= grace and not pid_alive(owner[1])
