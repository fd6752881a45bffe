"""Which lockfile, tools.yaml and cache a client (and so every command) works on: one rule.

The command line's ``--lockfile``/``--config``/``--cache-dir`` and the keyword arguments of
:class:`toolfetch.Client` are resolved here, so the two cannot pair a lockfile with a
different tools.yaml (docs/design.md, "The command line").
"""

from __future__ import annotations

import os
from pathlib import Path

from toolfetch.api.arguments import PathArg
from toolfetch.cache.store import Cache
from toolfetch.core.host import CONFIG_NAME, cache_root, default_config, lockfile_beside


def project_files(lockfile: PathArg | None = None,
                  config: PathArg | None = None) -> tuple[Path, Path]:
    """(lockfile, tools.yaml), absolute. Each is used as given. A lockfile not given is the
    one beside tools.yaml, named after it (``ci.yml`` → ``ci.lock.json``); a tools.yaml not
    given is ``tools.yaml`` beside a lockfile given, else the discovered one
    (:func:`toolfetch.core.host.default_config`: ``$TOOLFETCH_CONFIG``, ``lockfiles/`` or
    the repository root)."""
    if lockfile is not None:
        locked = Path(lockfile).absolute()
        return locked, (Path(config).absolute() if config is not None
                        else locked.parent / CONFIG_NAME)
    tools_yaml = Path(config if config is not None else default_config()).absolute()
    return Path(lockfile_beside(str(tools_yaml))).absolute(), tools_yaml


def open_cache(cache_dir: PathArg | None = None) -> Cache:
    """The cache at ``cache_dir``, else ``$TOOLFETCH_CACHE_DIR``, ``$XDG_CACHE_HOME/toolfetch``
    or ``~/.cache/toolfetch`` (:func:`toolfetch.core.host.cache_root`)."""
    return Cache(Path(cache_root(os.fspath(cache_dir) if cache_dir else None)))
