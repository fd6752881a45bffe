"""Fetch orchestration: locked layers → verified blobs → unpacked trees, in parallel.

Nothing here looks up a tag or a manifest: the lockfile pins every layer, so a cold fetch
of a single-layer tool is the token handshake plus one blob GET. Blobs shared by several
tools are fetched once, from the first of their references that serves them (a digest names
its content, so any of them will do). Failures are collected per tool and reported together,
in lockfile order whatever order the tools were asked for in.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from toolfetch.cache.records import TreeRecord
from toolfetch.cache.store import Cache
from toolfetch.core.digest import Digest
from toolfetch.core.errors import (
    IntegrityError,
    LocalIOError,
    NotFoundError,
    ToolfetchError,
    raise_all,
)
from toolfetch.core.fs import remove_tree
from toolfetch.core.progress import Progress
from toolfetch.core.reference import parse_any
from toolfetch.lock.lockfile import LockedLayer, Lockfile
from toolfetch.ops.plan import Want
from toolfetch.registry.sources import BlobSource, SourceFactory, parse_mirror_map

log = logging.getLogger("toolfetch")
K = TypeVar("K")
#: How often a fetch builds a tree taken from under it (gc without grace) before giving up.
REBUILDS = 5
#: Every (want, layer) that pins one blob, in lockfile order.
Pins = list[tuple["Want", LockedLayer]]


class Fetcher:
    def __init__(self, cache: Cache, lockfile: Lockfile, *, offline: bool = False,
                 jobs: int = 8, progress: bool = False,
                 transport_ready: threading.Event | None = None) -> None:
        """``transport_ready`` is set once the fetch has imported what its downloads need
        (requests), before they start: :func:`toolfetch.lock.lockfile.validating` holds the
        schema check back until then."""
        self.cache = cache
        self.transport_ready = transport_ready
        self.lockfile = lockfile
        self.offline = offline
        self.jobs = max(1, jobs)
        self.progress_enabled = progress
        mirrors = parse_mirror_map(lockfile.mirrors, lockfile.base_dir)
        self.sources = SourceFactory(mirrors, offline=offline)
        self.verified: set[Digest] = set()  # blobs this run stored (checked as they streamed)
        self.held: dict[Digest, Callable[[], None]] = {}  # trees in use: their releases

    def fetch(self, wants: list[Want]) -> dict[Want, Path]:
        """Make every wanted tree present; returns tree paths. Raises per-tool errors, also
        for a tree that lacks the tool's ``path`` (NotFoundError naming close matches).

        Each tree is held (:meth:`Cache.hold`) from the moment it is found present until
        :meth:`release` (or the process ends), so ``cache gc`` and ``verify --repair`` leave
        it alone; one taken between its build and its hold is built again, as is a damaged
        one (:meth:`Cache.tree_damage`), with a warning."""
        try:
            return self._fetch(wants)
        except BaseException:
            self.release()
            raise

    def _fetch(self, wants: list[Want]) -> dict[Want, Path]:
        for attempt in range(REBUILDS + 1):
            # Each missing tree with every want of it (two tools of one artifact: one tree),
            # so each is reported if it fails and each one's reference can serve its blobs.
            missing: dict[Digest, list[Want]] = {}
            for w in sorted(wants, key=lambda w: w.order):
                if w.entry.tree in missing:
                    missing[w.entry.tree].append(w)
                elif w.entry.tree not in self.held and not self._hold_sound(w):
                    missing[w.entry.tree] = [w]
            if not missing:
                break
            if attempt == REBUILDS:
                raise LocalIOError(f"{missing[next(iter(missing))][0].what}: its tree was "
                                   f"removed from the cache {REBUILDS} times right after it "
                                   "was built (a `cache gc` without grace?)")
            self.cache.ensure()
            self._fetch_missing(missing)
        trees = {w: self.cache.tree_path(w.entry.tree) for w in wants}
        errors = [e for w in wants if (e := self._path_error(w, trees[w])) is not None]
        raise_all(errors)
        return trees

    def _hold_sound(self, want: Want) -> bool:
        """Hold ``want``'s tree if it is present and sound (checked under the hold); a
        damaged one is removed (under its entry lock, checked again) to be built anew."""
        key = want.entry.tree
        if not self.cache.has_tree(key):
            return False
        release = self.cache.hold("tree", key)
        damage = self.cache.tree_damage(key, want.entry.path)
        if damage is None and self.cache.has_tree(key):
            self.held[key] = release
            self.cache.touch_tree(key)
            return True
        release()
        if damage is not None:
            log.warning("%s: cached tree %s is damaged (%s); building it again", want.what,
                        key.short, damage)
            self.cache.ensure()
            with self.cache.entry_lock("tree", key):
                if self.cache.tree_damage(key, want.entry.path) is not None:
                    self.cache.drop_tree(key)
        return False

    def release(self) -> None:
        """Let gc have the trees this fetcher holds."""
        for release in self.held.values():
            release()
        self.held.clear()

    def fetch_blobs(self, wants: list[Want]) -> None:
        """Make the wanted entries' blobs present, verified, without unpacking anything
        (``publish --from-lockfile`` uploads them as they are). One at a time."""
        self.cache.ensure()
        wants = sorted(wants, key=lambda w: w.order)
        quiet = Progress("", 0, False)
        failed = {d: f for d, pins in self._pins(wants).items()
                  if (f := self._fetch_pinned(pins, quiet)) is not None}
        errors = [failed[layer.digest][w.source_id].context(w.what)
                  for w in wants for layer in w.entry.layers if layer.digest in failed]
        raise_all(errors)

    def _path_error(self, want: Want, tree: Path) -> ToolfetchError | None:
        if os.path.lexists(tree / want.entry.path):
            return None
        return missing_path_error(want.what, want.entry.path, self.cache, want.entry.tree)

    def _pins(self, wants: list[Want]) -> dict[Digest, Pins]:
        """The blobs of ``wants`` not in the cache, each with every want that pins it."""
        blobs: dict[Digest, Pins] = {}
        present: set[Digest] = set()
        for w in wants:
            for layer in w.entry.layers:
                if layer.digest in blobs:
                    blobs[layer.digest].append((w, layer))
                elif layer.digest not in present:
                    if self.cache.has_blob(layer.digest):
                        present.add(layer.digest)
                    else:
                        blobs[layer.digest] = [(w, layer)]
        return blobs

    def _fetch_missing(self, missing: dict[Digest, list[Want]]) -> None:
        wants = sorted((w for group in missing.values() for w in group), key=lambda w: w.order)
        blobs = self._pins(wants)
        if blobs and not self.offline:
            self.sources.prepare()  # requests is imported here, ahead of the schema check
        if self.transport_ready is not None:
            self.transport_ready.set()
        total = sum(pins[0][1].size for pins in blobs.values())
        progress = Progress("fetch", total, self.progress_enabled and total > 0)
        # Downloads and unpacking overlap: a tree is built as soon as its own blobs are in,
        # on a second pool (its tasks wait on download futures, never the other way round),
        # so unpacking CPU fills the time other downloads spend waiting on the network.
        try:
            with ThreadPoolExecutor(self.jobs, thread_name_prefix="fetch") as downloads, \
                    ThreadPoolExecutor(self.jobs, thread_name_prefix="unpack") as builds:
                futures = {d: downloads.submit(self._fetch_pinned, pins, progress)
                           for d, pins in blobs.items()}

                def build_when_ready(want: Want) -> bool:
                    needed = [futures[layer.digest] for layer in want.entry.layers
                              if layer.digest in futures]
                    if any(f.exception() is not None or f.result() is not None
                           for f in needed):
                        return False  # reported below, as the blob's failure
                    self._build_tree(want, blobs)
                    return True

                # one build per tree, by the first of its wants (in lockfile order)
                tree_futures = {key: builds.submit(build_when_ready, group[0])
                                for key, group in missing.items()}
                _failures(futures)  # a bug is raised; the blobs' own failures are results
                blob_errors = {d: failed for d, f in futures.items()
                               if (failed := f.result()) is not None}
                tree_errors = _failures(tree_futures)
        finally:
            progress.close()
        errors: list[ToolfetchError] = []
        for w in wants:  # lockfile order decides the exit code
            if (tree_error := tree_errors.get(w.entry.tree)) is not None:
                builder = missing[w.entry.tree][0]
                errors.append(tree_error if w is builder else tree_error.context(w.what))
            for layer in w.entry.layers:
                if layer.digest in blob_errors:  # each tool with its own source's failure
                    errors.append(blob_errors[layer.digest][w.source_id].context(w.what))
                    break
        raise_all(errors)

    def _fetch_pinned(self, pins: Pins, progress: Progress) -> dict[str, ToolfetchError] | None:
        """Fetch one blob from each distinct source pinning it in turn, until one serves it.

        None once it is in the cache, else every source's failure (by ``Want.source_id``):
        a tool's failure is its own reference's, whichever tool was asked for first."""
        sources: dict[str, tuple[Want, LockedLayer]] = {}
        for want, layer in pins:
            sources.setdefault(want.source_id, (want, layer))
        candidates = list(sources.values())
        failed: dict[str, ToolfetchError] = {}
        for i, (want, layer) in enumerate(candidates):
            try:
                self._fetch_blob(want, layer, progress)
                return None
            except ToolfetchError as e:
                failed[want.source_id] = e
                if i + 1 < len(candidates):
                    log.warning("%s; trying the source of %s, which pins the same blob",
                                e.context(want.what), candidates[i + 1][0].what)
        return failed

    def _fetch_blob(self, want: Want, layer: LockedLayer, progress: Progress) -> None:
        what = f"blob {layer.digest}" + (f" ({layer.title})" if layer.title else "")

        def attempt(source: BlobSource) -> None:
            def write(f: BinaryIO) -> None:
                source.fetch_blob(layer.digest, layer.size, f, what,
                                  progress.reporter(want.tool))

            self.cache.store_blob(layer.digest, write, layer.size)
            self.verified.add(layer.digest)

        if want.entry.is_asset:  # an HTTP release asset: its URLs, in order
            self.sources.try_in_order(self.sources.asset_sources(want.entry.urls, want.tool),
                                      what, attempt)
            return
        ref = parse_any(want.entry.ref, self.lockfile.base_dir)
        self.sources.first_success(ref, what, attempt)

    def _check_cached(self, want: Want, layer: LockedLayer) -> None:
        """Re-hash a blob an earlier run stored before a tree is built from it (one read;
        the unpack then reads the page cache), so no record vouches for bytes damaged since.
        A damaged blob is dropped, to be fetched again; offline that is exit 3 naming it."""
        try:
            with open(self.cache.blob_path(layer.digest), "rb") as f:
                size = os.fstat(f.fileno()).st_size
                actual = Digest.of_open_file(f) if size == layer.size else None
                if actual == layer.digest:
                    self.verified.add(layer.digest)
                    return
                self.cache.drop_damaged_blob(layer.digest, f)
        except FileNotFoundError:
            return  # gc took it meanwhile: fetched again by the caller
        except OSError as e:
            raise LocalIOError.of(e, f"{want.what}: cannot read cached blob {layer.digest}") from e
        found = f"{size} bytes" if actual is None else f"content hashing to {actual}"
        log.warning("%s: cached blob %s is damaged (%s, not %d bytes of that digest); "
                    "fetching it again", want.what, layer.digest, found, layer.size)
        if self.offline:
            raise IntegrityError(f"{want.what}: cached blob {layer.digest} was damaged ({found})"
                                 " and --offline forbids fetching it again")

    def _build_tree(self, want: Want, blobs: Mapping[Digest, Pins]) -> None:
        from toolfetch.cache.trees import tree_digest
        from toolfetch.cache.unpack import unpack_recipe
        from toolfetch.core.treekey import recipe

        steps = recipe(layer.to_json() for layer in want.entry.layers)

        def build(dest: Path) -> TreeRecord:
            known: dict[str, tuple[int, str]] = {}
            vanished = False
            for _ in range(REBUILDS):  # the blobs held from their check to their unpacking
                releases = [self.cache.hold("blob", d) for d in dict.fromkeys(
                    layer.digest for layer in want.entry.layers)]
                try:
                    for layer in want.entry.layers:
                        if layer.digest not in self.verified and self.cache.has_blob(
                                layer.digest):
                            self._check_cached(want, layer)
                    gone = [layer for layer in want.entry.layers
                            if not self.cache.has_blob(layer.digest)]
                    if not gone:
                        try:
                            unpack_recipe(steps, lambda d: self.cache.blob_path(
                                Digest.parse(d)), dest, want.what, known)
                            break
                        except LocalIOError:
                            # A blob removed after its check (another fetch dropping it as
                            # damaged, which no hold stops; gc where holds are no-ops):
                            # fetched again and unpacked afresh, once.
                            gone = [layer for layer in want.entry.layers
                                    if not self.cache.has_blob(layer.digest)]
                            if not gone or vanished:
                                raise
                            vanished = True
                            log.warning("%s: blob %s was removed from the cache while it was "
                                        "unpacked; fetching it again", want.what,
                                        gone[0].digest)
                            remove_tree(dest)  # what it had unpacked: a fresh start
                            dest.mkdir()
                            known.clear()
                finally:
                    for release in releases:
                        release()
                for layer in gone:  # gc took it since it was fetched: fetch it again
                    failed = self._fetch_pinned(blobs.get(layer.digest) or [(want, layer)],
                                                Progress("", 0, False))
                    if failed is not None:
                        raise failed[want.source_id]
            else:
                raise LocalIOError(f"{want.what}: its blobs were removed from the cache "
                                   f"{REBUILDS} times while it was built (a `cache gc` "
                                   "without grace?)")
            digest, files = tree_digest(dest, known)
            # The recipe is what the key is the digest of; the manifest and ref only say who
            # asked first (for people reading the cache), nothing depends on them.
            return TreeRecord(key=str(want.entry.tree), recipe=steps, tree=digest, files=files,
                              layers=tuple(str(layer.digest) for layer in want.entry.layers),
                              manifest=str(want.entry.manifest) if want.entry.manifest
                              else None, ref=want.entry.source)

        self.cache.store_tree(want.entry.tree, build)


def _failures(futures: Mapping[K, Future[Any]]) -> dict[K, ToolfetchError]:
    """The ToolfetchError of each failed future (after all are done); a bug is raised."""
    failed: dict[K, ToolfetchError] = {}
    for key, fut in futures.items():
        exc = fut.exception()
        if isinstance(exc, ToolfetchError):
            failed[key] = exc
        elif exc is not None:
            raise exc
    return failed


def missing_path_error(what: str, path: str, cache: Cache, key: Digest) -> NotFoundError:
    """``path`` is not in the tree: name the closest existing files (exit 4)."""
    import difflib

    try:
        entries = cache.read_record(key).files
    except (OSError, ValueError):
        entries = ()
    files = [f.path for f in entries if f.type in ("file", "symlink")]
    executable = [f.path for f in entries if f.executable]
    close = difflib.get_close_matches(path, files, n=3, cutoff=0.5)
    if not close:
        close = sorted(executable)[:5] or sorted(files)[:5]
    hint = f"; it has: {', '.join(close)}" if close else "; it holds no files"
    return NotFoundError(f"{what}: path {path!r} is not in the artifact (tree {key.short}"
                         f"){hint}. Fix `path` in tools.yaml and run `toolfetch lock`")
