"""``toolfetch.Client``: the library facade (docs/python-api.md).

One client is one set of command-line defaults: a lockfile, a cache, the offline switch, the
download parallelism and progress bars, resolved exactly as the CLI resolves them
(``--lockfile`` → the lockfile beside tools.yaml, as
:func:`toolfetch.core.host.default_config` finds it; ``--cache-dir`` →
``$TOOLFETCH_CACHE_DIR`` → ``$XDG_CACHE_HOME/toolfetch`` → ``~/.cache/toolfetch``;
``--offline`` or ``TOOLFETCH_OFFLINE``; ``--jobs`` at least 1). Methods raise the
:class:`~toolfetch.core.errors.ToolfetchError` subclasses whose ``exit_code`` the CLI exits
with. Heavy modules (requests, jsonschema, yaml) load inside the methods that need them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from toolfetch.api.cache_methods import CacheMethods
from toolfetch.api.registry_methods import PathArg, RegistryMethods
from toolfetch.cache.store import Cache
from toolfetch.core.digest import Digest
from toolfetch.core.errors import UsageError
from toolfetch.core.host import (
    CONFIG_NAME,
    cache_root,
    default_config,
    default_lockfile,
    offline_from_environment,
)
from toolfetch.core.platform import host_platform, platform_or_host

if TYPE_CHECKING:
    from datetime import timedelta

    # imported by the methods that use them, not on a which/run miss
    from toolfetch.api.cache_check import CacheCheck
    from toolfetch.cache.gc import GcReport
    from toolfetch.lock.lockfile import Lockfile
    from toolfetch.lock.update import LockResult
    from toolfetch.ops.bootstrap import BootstrapReport
    from toolfetch.ops.export_import import BundleStats
    from toolfetch.ops.fetch import Fetcher



@dataclass(frozen=True)
class ToolLocation:
    """Where a locked tool is: its executable, its tree, the lockfile's platform key it was
    taken from (``linux/amd64``, or ``*`` for a tool of every platform) and its ``arg0``
    mode (``executable`` or ``tool``, docs/lockfile.md)."""

    tool: str
    platform: str
    executable: Path
    tree: Path
    arg0: str


def kept_digests(lockfiles: Iterable[PathArg]) -> set[Digest]:
    """Every tree and blob the lockfiles pin, on any platform (``cache gc --keep``)."""
    from toolfetch.lock.lockfile import Lockfile

    keep: set[Digest] = set()
    for path in lockfiles:
        lockfile = Lockfile.load(Path(path).absolute())
        for tool in lockfile.tools.values():
            for entry in tool.platforms.values():
                keep.add(entry.tree)
                keep.update(layer.digest for layer in entry.layers)
    return keep


class Client(RegistryMethods, CacheMethods, AbstractContextManager["Client"]):
    """toolfetch as a library: what the command line does, as typed method calls.

    ``lockfile``: default the one beside tools.yaml, which is ``$TOOLFETCH_CONFIG``, else
    found in ``lockfiles/`` or at the repository root (the nearest parent of the working
    directory holding ``.git``), as the CLI finds it. ``cache_dir``: default as the CLI's
    ``--cache-dir``. ``offline``: None follows ``TOOLFETCH_OFFLINE``; True never touches the
    network (exit 6 when something is missing); False allows it. ``jobs``: parallel
    downloads (at least 1). ``progress``: progress bars on a terminal's stderr.

    Use it as a context manager: the trees :meth:`which` and :meth:`fetch` return stay
    protected from ``cache gc`` and ``cache verify --repair`` (other processes included)
    until the client is closed.
    """

    def __init__(self, lockfile: PathArg | None = None, *, cache_dir: PathArg | None = None,
                 offline: bool | None = None, jobs: int = 8, progress: bool = False) -> None:
        from toolfetch.core.progress import enabled

        if jobs < 1:
            raise UsageError(f"jobs: expected a whole number of at least 1, not {jobs}")
        self.lockfile = Path(lockfile if lockfile is not None else default_lockfile()).absolute()
        #: tools.yaml, as ``lock`` finds it: beside the lockfile given, else discovered
        self.config = (self.lockfile.parent / CONFIG_NAME if lockfile is not None
                       else Path(default_config()))
        self.cache = Cache(Path(cache_root(os.fspath(cache_dir) if cache_dir else None)))
        self.offline = offline if offline is not None else offline_from_environment()
        self.jobs = jobs
        self.progress = enabled(progress)
        self._held: list[Fetcher] = []

    @property
    def cache_dir(self) -> Path:
        return self.cache.root

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Let gc have the trees this client's fetches hold."""
        while self._held:
            self._held.pop().release()

    def _fetcher(self, lockfile: Lockfile, ready: threading.Event | None = None) -> Fetcher:
        """A fetcher whose trees stay held until :meth:`close`."""
        from toolfetch.ops.fetch import Fetcher

        fetcher = Fetcher(self.cache, lockfile, offline=self.offline, jobs=self.jobs,
                          progress=self.progress, transport_ready=ready)
        self._held.append(fetcher)
        return fetcher

    # -- tools of the lockfile -----------------------------------------------------------
    def locate(self, tool: str, platform: str | None = None) -> ToolLocation:
        """Where ``tool`` is for ``platform`` (default: this host), fetching it first when
        its tree is not in the cache. NotFoundError (exit 4) for a tool the lockfile lacks,
        a platform it is not locked for, or a ``path`` its tree lacks."""
        from toolfetch.lock.lockfile import Lockfile, validating
        from toolfetch.ops.plan import Want

        lockfile = Lockfile.load_fast(self.lockfile)
        locked = lockfile.tool(tool)
        key, entry = locked.for_platform(platform_or_host(platform), self.lockfile)
        tree = self.cache.tree_path(entry.tree)
        found = ToolLocation(tool, key, tree / entry.path, tree, locked.arg0)
        if self.cache.has_tree(entry.tree) and os.path.lexists(found.executable):
            self.cache.touch_tree(entry.tree)
            lockfile.record_index(self.cache.root, validated=False)  # next time: the hit path
            return found
        ready = threading.Event()  # validating() below writes the index after the fetch
        with validating(self.lockfile, self.cache.root, start=ready) as full:
            self._fetcher(full, ready).fetch([Want(tool, key, entry)])
        return found

    def which(self, tool: str, platform: str | None = None) -> Path:
        """The absolute path of ``tool``'s executable (``toolfetch which``), fetched if
        needed."""
        return self.locate(tool, platform).executable

    def fetch(self, tools: Iterable[str] = (), platform: str | None = None,
              all_platforms: bool = False) -> dict[str, Path]:
        """Make the tools (default: every tool locked for the platform) present; returns
        each one's executable by tool name, or by ``tool@platform-key`` with
        ``all_platforms``. With no tools named, one locked for other platforms only is
        skipped with a warning (as ``toolfetch fetch``); a named one is NotFoundError."""
        from toolfetch.lock.lockfile import validating
        from toolfetch.ops.plan import plan

        if all_platforms and platform is not None:
            raise UsageError("fetch: platform and all_platforms exclude each other")
        ready = threading.Event()
        with validating(self.lockfile, self.cache.root, start=ready) as lockfile:
            wants = plan(lockfile, list(tools), None if all_platforms else
                         platform_or_host(platform), all_platforms)
            trees = self._fetcher(lockfile, ready).fetch(wants)
        return {(f"{w.tool}@{w.key}" if all_platforms else w.tool): tree / w.entry.path
                for w, tree in trees.items()}

    def lock(self, tools: Iterable[str] = (), *, check: bool = False, upgrade: bool = False,
             refresh_assets: bool = False, config: PathArg | None = None) -> LockResult:
        """``toolfetch lock``: resolve tools.yaml (``config``, default :attr:`config`) into
        the lockfile; returns every pin that changed (``LockResult.changes``).
        ``check`` writes nothing and raises OutOfDateError (exit 7) on drift; ``upgrade``
        moves tools with a ``version`` constraint to their highest matching tag."""
        from toolfetch.lock.config import Config
        from toolfetch.lock.update import run_lock

        if upgrade and check:
            raise UsageError("lock: upgrade and check exclude each other")
        path = Path(config) if config is not None else self.config
        return run_lock(Config.load(path.absolute()), self.lockfile, list(tools), check,
                        self.jobs, self.progress, upgrade, cache=self.cache,
                        refresh_assets=refresh_assets)

    def bootstrap(self, bin_dir: PathArg) -> BootstrapReport:
        """Fetch every tool for this host and write launchers into ``bin_dir``."""
        from toolfetch.ops.bootstrap import bootstrap

        return bootstrap(self.cache, self.lockfile, Path(bin_dir).absolute(),
                         offline=self.offline, jobs=self.jobs, progress=self.progress)

    def export(self, directory: PathArg, platform: str | None = None,
               all_platforms: bool = False) -> BundleStats:
        """Write what the lockfile needs (this host, ``platform``, or every platform) as an
        OCI image layout, for air-gapped machines (docs/fleets.md)."""
        from toolfetch.ops.export_import import export

        if all_platforms and platform is not None:
            raise UsageError("export: platform and all_platforms exclude each other")
        return export(self.lockfile, self.cache, Path(directory).absolute(),
                      None if all_platforms else platform_or_host(platform),
                      progress=self.progress)

    def import_layout(self, directory: PathArg) -> BundleStats:
        """Put the blobs of an exported OCI image layout into the cache."""
        from toolfetch.ops.export_import import import_layout

        return import_layout(Path(directory).absolute(), self.cache, progress=self.progress)

    # -- the cache -----------------------------------------------------------------------
    def verify_cache(self, repair: bool = False) -> CacheCheck:
        """Re-hash every blob, tree and lockfile index (``cache verify``). Bad entries are
        reported, not raised; with ``repair`` they are then dropped and the lockfile's tools
        for this host fetched again (:meth:`repair_cache`)."""
        from toolfetch.api.cache_check import CacheCheck, CacheProblem
        from toolfetch.cache.verify import verify
        from toolfetch.lock.indexcheck import verify_indexes

        bad = verify(self.cache) + verify_indexes(self.cache.root)
        check = CacheCheck(self.cache.root,
                           tuple(CacheProblem(kind, str(d), why) for kind, d, why in bad))
        return self.repair_cache(check) if repair and bad else check

    def repair_cache(self, check: CacheCheck) -> CacheCheck:
        """Drop ``check``'s bad entries (each under its lock; those in use are kept), then,
        if the lockfile exists, fetch its tools for this host again."""
        from toolfetch.api.cache_check import CacheProblem
        from toolfetch.cache.verify import drop
        from toolfetch.lock.lockfile import Lockfile
        from toolfetch.ops.plan import plan

        kept = drop(self.cache, [(p.kind, Digest.parse(p.digest), p.why)
                                 for p in check.problems])
        refetched = None
        if self.lockfile.exists():
            lockfile = Lockfile.load(self.lockfile)
            fetcher = self._fetcher(lockfile)
            fetcher.fetch(plan(lockfile, None, host_platform(), False))
            fetcher.release()
            refetched = self.lockfile
        return replace(check, repaired=True, refetched=refetched,
                       kept=tuple(CacheProblem(k, str(d), why) for k, d, why in kept))

    def clear_cache(self, max_size: int | str | None = None,
                    unused_for: float | str | timedelta | None = None,
                    keep: Iterable[PathArg] = (), *, dry_run: bool = False) -> GcReport:
        """``cache gc``: reclaim dead temp files and locks, then evict least-recently-used
        entries until under ``max_size`` (bytes, or ``"500M"``) and those unused for
        ``unused_for`` (seconds, a timedelta, or ``"30d"``); never what the ``keep``
        lockfiles pin, nor entries in use."""
        from datetime import timedelta

        from toolfetch.cache.gc import collect
        from toolfetch.core.sizes import parse_duration, parse_size

        size = parse_size(max_size, "max_size") if isinstance(max_size, str) else max_size
        age = (parse_duration(unused_for, "unused_for") if isinstance(unused_for, str)
               else unused_for.total_seconds() if isinstance(unused_for, timedelta)
               else unused_for)
        return collect(self.cache, max_size=size, unused_for=age, keep=kept_digests(keep),
                       dry_run=dry_run)
