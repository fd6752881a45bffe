"""``toolfetch.Client``: the library facade (docs/python-api.md).

One client is one set of command-line defaults: a lockfile and its tools.yaml, a cache, the
offline switch, the download parallelism and progress bars, resolved exactly as the CLI
resolves them (:func:`toolfetch.api.paths.project_files`: ``--lockfile``/``--config``, else
the lockfile beside the discovered tools.yaml; ``--cache-dir`` → ``$TOOLFETCH_CACHE_DIR`` →
``$XDG_CACHE_HOME/toolfetch`` → ``~/.cache/toolfetch``; ``--offline`` or
``TOOLFETCH_OFFLINE``; ``--jobs`` at least 1). Methods raise the
:class:`~toolfetch.core.errors.ToolfetchError` subclasses whose ``exit_code`` the CLI exits
with. Heavy modules (requests, jsonschema, yaml) load inside the methods that need them; the
tool use cases are :mod:`toolfetch.api.tools`, their values :mod:`toolfetch.api.tool_results`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from toolfetch.api.arguments import PathArg, items, paths
from toolfetch.api.cache_methods import CacheMethods
from toolfetch.api.paths import open_cache, project_files
from toolfetch.api.registry_methods import RegistryMethods
from toolfetch.api.tool_results import ToolLocation
from toolfetch.core.digest import Digest
from toolfetch.core.errors import UsageError
from toolfetch.core.host import offline_from_environment
from toolfetch.core.platform import host_platform, platform_or_host

if TYPE_CHECKING:
    from datetime import timedelta

    # imported by the methods that use them, not on a which/run miss
    from toolfetch.api.cache_check import CacheCheck
    from toolfetch.api.tool_results import ImportedTools, ListedTool, SignatureCheck
    from toolfetch.cache.gc import GcReport
    from toolfetch.lock.lockfile import Lockfile
    from toolfetch.lock.update import LockResult
    from toolfetch.ops.bootstrap import BootstrapReport
    from toolfetch.ops.export_import import BundleStats
    from toolfetch.ops.fetch import Fetcher

__all__ = ["Client", "ToolLocation", "kept_digests"]


def kept_digests(lockfiles: PathArg | Iterable[PathArg]) -> set[Digest]:
    """Every tree and blob the lockfiles pin, on any platform (``cache gc --keep``)."""
    from toolfetch.lock.lockfile import Lockfile

    keep: set[Digest] = set()
    for path in paths(lockfiles):
        lockfile = Lockfile.load(Path(path).absolute())
        for tool in lockfile.tools.values():
            for entry in tool.platforms.values():
                keep.add(entry.tree)
                keep.update(layer.digest for layer in entry.layers)
    return keep


class Client(RegistryMethods, CacheMethods, AbstractContextManager["Client"]):
    """toolfetch as a library: what the command line does, as typed method calls.

    ``lockfile`` and ``config`` (tools.yaml) pair as the CLI's ``--lockfile`` and
    ``--config`` do (:func:`toolfetch.api.paths.project_files`): the lockfile defaults to
    the one beside tools.yaml, named after it; tools.yaml to ``tools.yaml`` beside a
    lockfile given, else ``$TOOLFETCH_CONFIG``, else the one found in ``lockfiles/`` or at
    the repository root (the nearest parent of the working directory holding ``.git``).
    ``cache_dir``: default as the CLI's ``--cache-dir``. ``offline``: None follows
    ``TOOLFETCH_OFFLINE``; True never touches the network (exit 6 when something is
    missing); False allows it. ``jobs``: parallel downloads (at least 1). ``progress``:
    progress bars on a terminal's stderr.

    Use it as a context manager: the trees :meth:`which` and :meth:`fetch` return stay
    protected from ``cache gc`` and ``cache verify --repair`` (other processes included)
    until the client is closed.
    """

    def __init__(self, lockfile: PathArg | None = None, *, config: PathArg | None = None,
                 cache_dir: PathArg | None = None, offline: bool | None = None, jobs: int = 8,
                 progress: bool = False) -> None:
        from toolfetch.core.progress import enabled

        if jobs < 1:
            raise UsageError(f"jobs: expected a whole number of at least 1, not {jobs}")
        #: the lockfile and tools.yaml (``lock`` reads it), absolute
        self.lockfile, self.config = project_files(lockfile, config)
        self.cache = open_cache(cache_dir)
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

    # -- tools of the lockfile (the use cases are toolfetch.api.tools) --------------------
    def locate(self, tool: str, platform: str | None = None) -> ToolLocation:
        """Where ``tool`` is for ``platform`` (default: this host), fetching it first when
        its tree is not in the cache (``toolfetch which --json``). NotFoundError (exit 4)
        for a tool the lockfile lacks, a platform it is not locked for, or a ``path`` its
        tree lacks."""
        from toolfetch.api.tools import locate

        return locate(self.cache, self.lockfile, tool, platform, self._fetcher)

    def which(self, tool: str, platform: str | None = None) -> Path:
        """The absolute path of ``tool``'s executable (``toolfetch which``), fetched if
        needed."""
        return self.locate(tool, platform).executable

    def fetch(self, tools: str | Iterable[str] = (), platform: str | None = None,
              all_platforms: bool = False) -> dict[str, Path]:
        """Make the tools (default: every tool locked for the platform) present; returns
        each one's executable by tool name, or by ``tool@platform-key`` with
        ``all_platforms``. With no tools named, one locked for other platforms only is
        skipped with a warning (as ``toolfetch fetch``); a named one is NotFoundError."""
        found = self.fetch_tools(tools, platform, all_platforms)
        return {(f"{t.tool}@{t.platform}" if all_platforms else t.tool): t.executable
                for t in found}

    def fetch_tools(self, tools: str | Iterable[str] = (), platform: str | None = None,
                    all_platforms: bool = False, *, output: PathArg | None = None
                    ) -> tuple[ToolLocation, ...]:
        """:meth:`fetch`, returning a :class:`ToolLocation` per (tool, platform) fetched, in
        lockfile order (``toolfetch fetch --json``). With ``output`` (one tool, one
        platform), its tree is also written there by hardlinks or copies, for build
        systems that want real files (``fetch --output``): ``output`` must be absent or
        empty (else LocalIOError, exit 8), and a failure leaves it as it was."""
        from toolfetch.api.tools import fetch

        return fetch(self.cache, self.lockfile, items(tools), platform, all_platforms,
                     Path(output).absolute() if output is not None else None, self._fetcher)

    def list_tools(self) -> tuple[ListedTool, ...]:
        """Every locked tool by name (``toolfetch list``): version, reference or URL,
        platforms, and which of them this cache holds. Reads; never fetches."""
        from toolfetch.api.tools import list_tools

        return list_tools(self.lockfile, self.cache)

    def lock(self, tools: str | Iterable[str] = (), *, check: bool = False, upgrade: bool = False,
             refresh_assets: bool = False) -> LockResult:
        """``toolfetch lock``: resolve tools.yaml (:attr:`config`) into the lockfile, its
        ``mirrors`` included; returns every pin that changed (``LockResult.changes``).
        ``tools``: only these, keeping the others' pins. ``check`` writes nothing and raises
        OutOfDateError (exit 7) on drift. ``upgrade`` moves tools with a ``version``
        constraint to their highest matching tag (``LockResult.upgrades``: each one's old
        and new reference). ``refresh_assets`` downloads HTTP assets again to re-check their
        sha256 (otherwise unchanged entries keep their pins without the network).
        ``offline``: only ``oci-layout:`` references and layout mirrors can be resolved;
        a registry is UnreachableError (exit 6)."""
        from toolfetch.lock.config import Config
        from toolfetch.lock.update import run_lock

        if upgrade and check:
            raise UsageError("lock: upgrade and check exclude each other")
        return run_lock(Config.load(self.config), self.lockfile, items(tools), check,
                        self.jobs, self.progress, upgrade, cache=self.cache,
                        refresh_assets=refresh_assets, offline=self.offline)

    def verify_signatures(self, tools: str | Iterable[str] = ()) -> tuple[SignatureCheck, ...]:
        """``toolfetch verify``: check each named (default: every) locked tool's platforms
        against tools.yaml's ``verify`` policy again, and say who signed. Signatures come
        from the cache, else the registry (never with ``offline``). A lockfile record that is
        missing or differs from the check is OutOfDateError (exit 7)."""
        from toolfetch.api.tools import verify_signatures

        return verify_signatures(self.config, self.lockfile, items(tools), self.cache,
                                 self.offline)

    def import_dotslash(self, files: PathArg | Iterable[PathArg], name: str | None = None, *,
                        dry_run: bool = False) -> ImportedTools:
        """Add a tools.yaml entry (HTTP release assets) per DotSlash file (``toolfetch
        import-dotslash``), named after the file unless ``name`` is given (one file only);
        ``dry_run`` only returns the entries. Run :meth:`lock` next to pin them."""
        from toolfetch.api.tools import import_tools
        from toolfetch.lock.importers import from_dotslash

        files_given = [Path(f) for f in paths(files)]
        if name is not None and len(files_given) != 1:
            raise UsageError("import_dotslash: name names one tool; give one file")
        return import_tools(lambda f: from_dotslash(f, name), files_given, self.config,
                            dry_run)

    def import_multitool(self, files: PathArg | Iterable[PathArg], *,
                         dry_run: bool = False) -> ImportedTools:
        """Add the tools of rules_multitool lockfiles to tools.yaml (``toolfetch
        import-multitool``); ``dry_run`` only returns the entries. Run :meth:`lock` next."""
        from toolfetch.api.tools import import_tools
        from toolfetch.lock.importers import from_multitool

        return import_tools(from_multitool, [Path(f) for f in paths(files)], self.config,
                            dry_run)

    def bootstrap(self, bin_dir: PathArg) -> BootstrapReport:
        """Fetch every tool for this host and write launchers into ``bin_dir``
        (``toolfetch bootstrap``); a tool locked for other platforms only gets a launcher
        that says so when run (exit 4)."""
        from toolfetch.ops.bootstrap import bootstrap

        return bootstrap(self.cache, self.lockfile, Path(bin_dir).absolute(),
                         offline=self.offline, jobs=self.jobs, progress=self.progress)

    def export(self, directory: PathArg, platform: str | None = None,
               all_platforms: bool = False) -> BundleStats:
        """Write what the lockfile needs (this host, ``platform``, or every platform) as an
        OCI image layout, for air-gapped machines (docs/fleets.md); ``offline``, from the
        cache and layout mirrors only."""
        from toolfetch.ops.export_import import export

        if all_platforms and platform is not None:
            raise UsageError("export: platform and all_platforms exclude each other")
        return export(self.lockfile, self.cache, Path(directory).absolute(),
                      None if all_platforms else platform_or_host(platform),
                      progress=self.progress, offline=self.offline)

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
        lockfiles pin, nor entries in use. Each removal names the tools that used it
        (``Removal.tools``, as :meth:`cache_tools`), read before collecting."""
        from datetime import timedelta

        from toolfetch.cache.gc import collect
        from toolfetch.core.sizes import parse_duration, parse_size

        size = parse_size(max_size, "max_size") if isinstance(max_size, str) else max_size
        age = (parse_duration(unused_for, "unused_for") if isinstance(unused_for, str)
               else unused_for.total_seconds() if isinstance(unused_for, timedelta)
               else unused_for)
        kept = kept_digests(keep)
        names = self.cache_tools()
        report = collect(self.cache, max_size=size, unused_for=age, keep=kept, dry_run=dry_run)
        return replace(report, removed=tuple(
            replace(r, tools=names.get(str(r.entry.digest), ())) for r in report.removed))
