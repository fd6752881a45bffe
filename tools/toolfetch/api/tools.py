"""The use cases on a lockfile's tools behind :class:`toolfetch.Client`: locate, fetch (and
``fetch --output``), list, re-check signatures, import DotSlash and rules_multitool entries.

Plain functions of what they need (paths, the cache, a way to make held fetchers), so the
client stays a short list of documented methods; heavy modules load inside them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from toolfetch.api.tool_results import ImportedTools, ListedTool, SignatureCheck, ToolLocation
from toolfetch.core.errors import UsageError
from toolfetch.core.platform import platform_or_host

if TYPE_CHECKING:
    from toolfetch.cache.store import Cache
    from toolfetch.lock.lockfile import Lockfile
    from toolfetch.ops.fetch import Fetcher

    # A fetcher of the lockfile whose trees the client holds until it is closed; the event,
    # if any, is set once its transport is imported (lock.lockfile.validating waits for it).
    FetcherFor = Callable[[Lockfile, threading.Event | None], Fetcher]


def locate(cache: Cache, lockfile_path: Path, tool: str, platform: str | None,
           fetcher: FetcherFor) -> ToolLocation:
    """Where ``tool`` is, fetching it first when its tree is not in the cache."""
    from toolfetch.lock.lockfile import Lockfile, validating
    from toolfetch.ops.plan import Want

    lockfile = Lockfile.load_fast(lockfile_path)
    locked = lockfile.tool(tool)
    key, entry = locked.for_platform(platform_or_host(platform), lockfile_path)
    tree = cache.tree_path(entry.tree)
    found = ToolLocation(tool, key, tree / entry.path, tree, locked.arg0)
    if cache.has_tree(entry.tree) and os.path.lexists(found.executable):
        cache.touch_tree(entry.tree)
        lockfile.record_index(cache.root, validated=False)  # next time: the hit path
        return found
    ready = threading.Event()  # validating() below writes the index after the fetch
    with validating(lockfile_path, cache.root, start=ready) as full:
        fetcher(full, ready).fetch([Want(tool, key, entry)])
    return found


def fetch(cache: Cache, lockfile_path: Path, tools: Iterable[str], platform: str | None,
          all_platforms: bool, output: Path | None, fetcher: FetcherFor
          ) -> tuple[ToolLocation, ...]:
    """Every (tool, platform) asked for, present in the cache, in lockfile order; with
    ``output``, the one tool's tree also materialised there."""
    from toolfetch.lock.lockfile import validating
    from toolfetch.ops.plan import plan

    names = list(tools)
    if all_platforms and platform is not None:
        raise UsageError("fetch: platform and all_platforms exclude each other")
    if output is not None and (all_platforms or len(names) != 1):
        raise UsageError("fetch: output writes one tree: name exactly one tool, for one "
                         "platform")
    ready = threading.Event()
    with validating(lockfile_path, cache.root, start=ready) as lockfile:
        wants = plan(lockfile, names, None if all_platforms else platform_or_host(platform),
                     all_platforms)
        trees = fetcher(lockfile, ready).fetch(wants)
        arg0 = {w.tool: lockfile.tools[w.tool].arg0 for w in wants}
    if output is not None:  # once the schema's verdict is in, as the fetch itself
        from toolfetch.ops.output import materialize

        materialize(trees[wants[0]], output)
    return tuple(ToolLocation(w.tool, w.key, tree / w.entry.path, tree, arg0[w.tool])
                 for w, tree in trees.items())


def list_tools(lockfile_path: Path, cache: Cache) -> tuple[ListedTool, ...]:
    """Every locked tool, by name, with the platforms whose tree this cache holds."""
    from toolfetch.lock.lockfile import Lockfile

    rows = []
    for name, tool in sorted(Lockfile.load(lockfile_path).tools.items()):
        sources = sorted({entry.source for entry in tool.platforms.values()})
        rows.append(ListedTool(
            tool=name, version=tool.fields.get("version"),
            source=sources[0] if len(sources) == 1 else tool.fields.get("ref"),
            sources=tuple(sources), platforms=tuple(sorted(tool.platforms)),
            cached=tuple(k for k, e in sorted(tool.platforms.items())
                         if cache.has_tree(e.tree))))
    return tuple(rows)


def verify_signatures(config_path: Path, lockfile_path: Path, tools: Iterable[str],
                      cache: Cache, offline: bool) -> tuple[SignatureCheck, ...]:
    """Each named (default: every) locked tool's platforms checked against tools.yaml's
    ``verify`` policy again, through the lockfile's mirrors (``offline``: the cache only)."""
    from toolfetch.lock.config import Config
    from toolfetch.lock.lockfile import Lockfile
    from toolfetch.lock.signatures import verify_locked
    from toolfetch.registry.sources import SourceFactory, parse_mirror_map

    lockfile = Lockfile.load(lockfile_path)
    config = Config.load(config_path)
    sources = SourceFactory(parse_mirror_map(lockfile.mirrors, lockfile.base_dir,
                                             where=str(lockfile_path)), offline=offline)
    return tuple(
        SignatureCheck(tool, key, None, None) if record is None
        else SignatureCheck(tool, key, record.signer, str(record.signature))
        for tool, key, record in verify_locked(config, lockfile, list(tools), sources, cache))


def import_tools(read: Callable[[Path], dict[str, dict[str, object]]],
                 files: Iterable[Path], config_path: Path, dry_run: bool) -> ImportedTools:
    """The entries ``read`` finds in ``files`` (a tool named twice is a UsageError), added to
    tools.yaml unless ``dry_run``."""
    from toolfetch.lock.configedit import add_tools

    paths = list(files)
    entries: dict[str, dict[str, object]] = {}
    for f in paths:
        for name, entry in read(f).items():
            if name in entries:
                raise UsageError(f"{f}: tool {name} is given twice")
            entries[name] = entry
    if not entries:
        raise UsageError(f"{', '.join(map(str, paths))}: nothing toolfetch can import "
                         "(the warnings above say why)")
    if not dry_run:
        add_tools(config_path, entries)
    return ImportedTools(config_path, entries, written=not dry_run)
