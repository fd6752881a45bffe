"""What this machine is and where things are on it: ``os`` and ``sys`` only.

The host platform (``uname`` mapped to OCI names), the cache root, the repository root and
the default lockfile. The hit path and the full CLI both take them from here, so they cannot
drift; :mod:`toolfetch.core.platform` builds :class:`Platform` values from :func:`host_parts`.
"""

from __future__ import annotations

import os
import sys

# uname machine -> OCI (arch, variant).
MACHINE_TO_ARCH: dict[str, tuple[str, str]] = {
    "x86_64": ("amd64", ""),
    "amd64": ("amd64", ""),
    "aarch64": ("arm64", ""),
    "arm64": ("arm64", ""),
    "armv8l": ("arm", "v8"),  # a 32-bit userland on an ARMv8 CPU
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "i386": ("386", ""),
    "i686": ("386", ""),
    "x86": ("386", ""),  # Windows' PROCESSOR_ARCHITECTURE
    "ppc64le": ("ppc64le", ""),
    "s390x": ("s390x", ""),
    "riscv64": ("riscv64", ""),
}
SYS_TO_OS = {"linux": "linux", "darwin": "darwin", "win32": "windows", "cygwin": "windows"}



def machine() -> str:
    """``uname -m``, lower-cased (Windows: the processor architecture variables)."""
    if hasattr(os, "uname"):
        return os.uname().machine.lower()
    return (os.environ.get("PROCESSOR_ARCHITEW6432")
            or os.environ.get("PROCESSOR_ARCHITECTURE", "")).lower()


def host_parts() -> tuple[str, str, str]:
    """(os, arch, variant) of this process, in OCI spelling."""
    name = machine()
    arch, variant = MACHINE_TO_ARCH.get(name, (name, ""))
    return host_os(), arch, variant


def host_os() -> str:
    """``sys.platform`` in OCI spelling; a version in it (``freebsd14``) is not part of it."""
    name = SYS_TO_OS.get(sys.platform)
    return name if name is not None else sys.platform.rstrip("0123456789")


def host_key() -> str:
    return "/".join(p for p in host_parts() if p)


def cache_root(cli_value: str | None = None) -> str:
    """``--cache-dir``, else ``$TOOLFETCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/toolfetch``,
    else ``~/.cache/toolfetch``; absolute."""
    chosen = cli_value or os.environ.get("TOOLFETCH_CACHE_DIR")
    if not chosen:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = xdg if xdg else os.path.join(os.path.expanduser("~"), ".cache")
        chosen = os.path.join(base, "toolfetch")
    return os.path.abspath(os.path.expanduser(chosen))


def repo_root(start: str | None = None) -> str:
    """The nearest parent holding ``.git``, else the starting directory."""
    here = os.path.abspath(start or os.getcwd())
    candidate = here
    while True:
        if os.path.exists(os.path.join(candidate, ".git")):
            return candidate
        parent = os.path.dirname(candidate)
        if parent == candidate:
            return here
        candidate = parent


def default_lockfile() -> str:
    return os.path.join(repo_root(), "lockfiles", "tools.lock.json")
