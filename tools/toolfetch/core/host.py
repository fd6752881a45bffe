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


CONFIG_NAME = "tools.yaml"
CONFIG_DIRS = ("lockfiles", "")  # where discovery looks, relative to the repository root


def default_config() -> str:
    """tools.yaml: ``$TOOLFETCH_CONFIG``, else the first of ``lockfiles/`` and the repository
    root that holds a tools.yaml or a tools.lock.json, else ``lockfiles/tools.yaml``;
    absolute."""
    named = os.environ.get("TOOLFETCH_CONFIG")
    if named:
        return os.path.abspath(os.path.expanduser(named))
    root = repo_root()
    for sub in CONFIG_DIRS:
        directory = os.path.join(root, sub) if sub else root
        if any(os.path.isfile(os.path.join(directory, n))
               for n in (CONFIG_NAME, lockfile_name(CONFIG_NAME))):
            return os.path.join(directory, CONFIG_NAME)
    return os.path.join(root, CONFIG_DIRS[0], CONFIG_NAME)


def lockfile_name(config_name: str) -> str:
    """The lockfile's name beside a tools.yaml: ``tools.yaml`` -> ``tools.lock.json``,
    ``ci.yml`` -> ``ci.lock.json``."""
    stem, dot, ext = config_name.rpartition(".")
    return f"{stem if dot and ext in ('yaml', 'yml') else config_name}.lock.json"


def lockfile_beside(config: str) -> str:
    return os.path.join(os.path.dirname(config), lockfile_name(os.path.basename(config)))


def default_lockfile() -> str:
    """The lockfile beside :func:`default_config`."""
    return lockfile_beside(default_config())


# Boolean environment variables (TOOLFETCH_OFFLINE): these words, any case; empty is unset.
BOOLEAN_WORDS = {"1": True, "true": True, "yes": True, "on": True,
                 "0": False, "false": False, "no": False, "off": False, "": False}


def env_flag(name: str) -> bool | None:
    """A boolean environment variable; None when its value is none of :data:`BOOLEAN_WORDS`
    (the full CLI refuses it with exit 2, the hit path leaves it to the full CLI)."""
    return BOOLEAN_WORDS.get(os.environ.get(name, "").strip().lower())


def offline_from_environment() -> bool:
    """``TOOLFETCH_OFFLINE`` (1/0/true/false/yes/no/on/off, any case; unset is False); any
    other value is a UsageError (exit 2), for the command line and the library alike."""
    flag = env_flag("TOOLFETCH_OFFLINE")
    if flag is None:
        from toolfetch.core.errors import UsageError  # not on the hit path's way

        raise UsageError(f"TOOLFETCH_OFFLINE={os.environ['TOOLFETCH_OFFLINE']!r}: expected one "
                         "of 1, 0, true, false, yes, no, on, off (any case)")
    return flag
