"""Issue 24.11/24.18: `cache gc` and `cache verify` beside a fetch (a cron gc beside CI).

A fetch finishes with what it asked for: a tree is held from the moment it is found present
until the fetch is done, one gc takes between its build and its hold is built again, and the
blobs of a tree being built are held from their check to their unpacking. `cache verify`
takes the entry locks a fetch takes: what a fetch is writing is "in progress", never bad.

The races are provoked at fixed points (gc called from a hook between two steps), so each
test fails the same way every run on the old code; one bounded stress test runs gc in a
thread beside repeated fetches.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tf import assert_error, assert_ok, tf_main

from toolfetch.cache import gc as gc_module
from toolfetch.cache import store as store_module
from toolfetch.cache import unpack as unpack_module
from toolfetch.cache import verify as verify_module
from toolfetch.cache.store import Cache
from toolfetch.cache.verify import INCOMPLETE, drop, verify
from toolfetch.core.digest import Digest
from toolfetch.core.platform import host_platform
from toolfetch.lock.lockfile import Lockfile
from toolfetch.ops.fetch import Fetcher
from toolfetch.ops.plan import plan


@pytest.fixture(autouse=True)
def _no_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLFETCH_GC_GRACE", "0")


def _evict_all(cache: Cache) -> gc_module.GcReport:
    return gc_module.collect(cache, max_size=0, unused_for=None, keep=())


def _once(action: Callable[[], object]) -> Callable[[], None]:
    done: list[bool] = []

    def run() -> None:
        if not done:
            done.append(True)
            action()
    return run


def _fetcher(example: Path, cache: Cache) -> tuple[Fetcher, list[Any]]:
    lockfile = Lockfile.load(example)
    return Fetcher(cache, lockfile), plan(lockfile, None, host_platform(), False)


def test_gc_right_after_a_build_makes_the_fetch_build_again(
        example: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """gc evicting the tree the fetch had just built made it exit 4 ("path … is not in the
    artifact … holds no files. Fix `path` in tools.yaml")."""
    cache = Cache(cache_dir)
    store_tree = Cache.store_tree
    evict = _once(lambda: _evict_all(cache))

    def store_then_gc(self: Cache, *args: Any) -> Path:
        path = store_tree(self, *args)
        evict()
        return path

    monkeypatch.setattr(Cache, "store_tree", store_then_gc)
    r = tf_main("fetch", "--lockfile", example, "--json")
    assert_ok(r)
    assert "is not in the artifact" not in r.stderr


def test_a_tree_a_fetcher_holds_is_not_evicted_until_released(
        example: Path, cache_dir: Path) -> None:
    cache = Cache(cache_dir)
    fetcher, wants = _fetcher(example, cache)
    trees = fetcher.fetch(wants)
    report = _evict_all(cache)
    assert {str(w.entry.tree) for w in wants} <= {str(e.digest) for e in report.kept_in_use}
    assert all((t / w.entry.path).exists() for w, t in trees.items())
    fetcher.release()
    _evict_all(cache)
    assert not any(cache.has_tree(w.entry.tree) for w in wants)


def test_gc_between_a_blob_check_and_its_unpacking_does_not_fail_the_fetch(
        example: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The blob window: gc removed a blob between the fetch's check and its unpacking
    (exit 8, "No such file"); the fetch holds the blobs it is about to unpack."""
    cache = Cache(cache_dir)
    unpack = unpack_module.unpack_recipe
    evict = _once(lambda: _evict_all(cache))

    def gc_then_unpack(*args: Any, **kwargs: Any) -> Any:
        evict()
        return unpack(*args, **kwargs)

    monkeypatch.setattr(unpack_module, "unpack_recipe", gc_then_unpack)
    r = tf_main("fetch", "--lockfile", example)
    assert_ok(r)


def _drop_blobs_before_unpacking(cache: Cache, monkeypatch: pytest.MonkeyPatch,
                                 times: int) -> list[str]:
    """Remove every blob of the recipe about to be unpacked, as another fetch dropping a blob
    it found damaged does (no hold stops that), the first ``times`` unpackings; returns the
    digests it removed."""
    unpack = unpack_module.unpack_recipe
    dropped: list[str] = []

    def drop_then_unpack(steps: Any, *args: Any, **kwargs: Any) -> Any:
        if len(dropped) < times:
            for digest, *_ in steps["layers"]:
                cache.drop_blob(Digest.parse(digest))
            dropped.append(steps["layers"][0][0])
        return unpack(steps, *args, **kwargs)

    monkeypatch.setattr(unpack_module, "unpack_recipe", drop_then_unpack)
    return dropped


def test_a_blob_removed_between_its_check_and_its_unpacking_is_fetched_again(
        example: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Exit 8 ("cannot unpack … No such file") when a blob went after the fetch had checked
    it: the fetch now fetches it again and unpacks afresh, once, with a warning."""
    cache = Cache(cache_dir)
    assert_ok(tf_main("fetch", "--lockfile", example, "hello"))  # its blob, cached before
    cache.drop_tree(Lockfile.load(example).tool("hello").for_platform(
        host_platform(), example)[1].tree)
    dropped = _drop_blobs_before_unpacking(cache, monkeypatch, 1)
    r = tf_main("fetch", "--lockfile", example, "hello")
    assert_ok(r)
    assert len(dropped) == 1 and cache.has_blob(Digest.parse(dropped[0]))
    assert "was removed from the cache while it was unpacked; fetching it again" in r.stderr
    assert_ok(tf_main("cache", "verify"))


def test_a_blob_removed_again_after_its_second_fetch_is_exit_8(
        example: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _drop_blobs_before_unpacking(Cache(cache_dir), monkeypatch, 2)
    r = tf_main("fetch", "--lockfile", example, "hello")
    assert_error(r, 8, "tool hello", "cannot unpack")
    assert not list((cache_dir / "trees").rglob("*.json"))


def test_fetches_beside_a_looping_gc_all_succeed(example: Path, cache_dir: Path) -> None:
    """The issue's reproduction, bounded: gc --max-size 0 (grace 0) in a loop on a thread
    while a fetch of every tool runs 12 times; each fetch ends with every tool present."""
    cache = Cache(cache_dir)
    stop = threading.Event()
    failures: list[BaseException] = []

    def loop() -> None:
        while not stop.is_set():
            try:
                _evict_all(cache)
            except BaseException as e:  # reported by the test, not lost in the thread
                failures.append(e)
                return

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        for _ in range(12):
            fetcher, wants = _fetcher(example, cache)
            trees = fetcher.fetch(wants)
            assert all((t / w.entry.path).exists() for w, t in trees.items())
            fetcher.release()
    finally:
        stop.set()
        thread.join()
    assert not failures


@pytest.fixture
def fetched(example: Path, cache_dir: Path) -> Iterator[tuple[Cache, Any]]:
    """The example fetched; (cache, the key of one of its trees)."""
    cache = Cache(cache_dir)
    fetcher, wants = _fetcher(example, cache)
    fetcher.fetch(wants)
    fetcher.release()
    yield cache, wants[0].entry.tree


def test_verify_leaves_a_tree_being_recorded_alone(fetched: tuple[Cache, Any]) -> None:
    """A tree directory whose record is not written yet, its entry lock held (as store_tree
    holds it from rename to record): verify reported it "incomplete" and --repair deleted it.
    """
    cache, key = fetched
    cache.record_path(key).unlink()
    with cache.entry_lock("tree", key):
        assert verify(cache) == []
        assert drop(cache, [("tree", key, INCOMPLETE)]) == [("tree", key, INCOMPLETE)]
        assert cache.tree_path(key).is_dir()
    assert verify(cache) == [("tree", key, INCOMPLETE)]  # nobody is writing it: left over
    assert drop(cache, verify(cache)) == []
    assert not cache.tree_path(key).exists()


def test_verify_repair_keeps_a_tree_a_fetch_holds(fetched: tuple[Cache, Any]) -> None:
    cache, key = fetched
    release = cache.hold("tree", key)
    try:
        problem = ("tree", key, "whatever verify found")
        assert drop(cache, [problem]) == [problem]
        assert cache.has_tree(key)
    finally:
        release()


def test_a_gc_killed_mid_eviction_leaves_nothing_verify_blames(
        fetched: tuple[Cache, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed while deleting a tree, gc left a record-less tree that verify blamed on "an
    interrupted unpack"; the tree now leaves trees/ in one rename before it is deleted."""
    cache, _ = fetched

    def killed(path: Path) -> None:
        raise KeyboardInterrupt  # as far as the cache can tell, a SIGKILL

    monkeypatch.setattr(store_module, "remove_tree", killed)
    with pytest.raises(KeyboardInterrupt):
        _evict_all(cache)
    monkeypatch.undo()
    assert verify(cache) == []


def _hello(example: Path) -> Any:
    """The key of the example's `hello` tree (a tar layer: its files are not its blob's)."""
    return Lockfile.load(example).tool("hello").for_platform(host_platform(), example)[1].tree


def _damage_a_file(cache: Cache, key: Any) -> None:
    tree = cache.tree_path(key)
    victim = next(p for p in sorted(tree.rglob("*")) if p.is_file() and not p.is_symlink())
    victim.parent.chmod(0o755)
    victim.chmod(0o644)
    victim.write_bytes(b"damaged")
    victim.chmod(0o444)
    victim.parent.chmod(0o555)


def _count_tree_hashes(monkeypatch: pytest.MonkeyPatch, tree: Path,
                       then: Callable[[], object] = lambda: None) -> list[Path]:
    """Count the hashings of ``tree`` (verify's expensive step); ``then`` runs after the
    first one."""
    from toolfetch.cache import trees

    real = trees.tree_digest
    hashed: list[Path] = []

    def counting(root: Path, *args: Any) -> Any:
        result = real(root, *args)
        if root == tree:
            hashed.append(root)
            if len(hashed) == 1:
                then()
        return result

    monkeypatch.setattr(trees, "tree_digest", counting)
    return hashed


def test_verify_hashes_a_bad_tree_once_and_reconfirms_it_cheaply_under_its_lock(
        example: Path, fetched: tuple[Cache, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """verify checked a tree it found bad a second time, fully (hashing every file and
    unpacking its layers again), under its lock; the lock now only re-confirms it."""
    cache, key = fetched[0], _hello(example)
    _damage_a_file(cache, key)
    hashed = _count_tree_hashes(monkeypatch, cache.tree_path(key))
    problems = verify(cache)
    assert [(kind, digest) for kind, digest, _ in problems] == [("tree", key)]
    assert "tree hashes to" in problems[0][2]
    assert len(hashed) == 1


def test_verify_leaves_a_tree_a_fetch_rebuilt_while_it_was_checked_alone(
        example: Path, fetched: tuple[Cache, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """A fetch finding the damaged tree drops and rebuilds it while verify hashes the old
    one: what verify found is not what is there any more, so nothing is reported."""
    cache, key = fetched[0], _hello(example)
    _damage_a_file(cache, key)

    def rebuild() -> None:
        cache.drop_tree(key)  # as a fetch drops a damaged tree, under its entry lock
        fetcher, wants = _fetcher(example, cache)
        fetcher.fetch(wants)
        fetcher.release()

    hashed = _count_tree_hashes(monkeypatch, cache.tree_path(key), rebuild)
    assert verify(cache) == []
    assert len(hashed) == 1 and cache.has_tree(key)
    monkeypatch.undo()
    assert verify(cache) == []


@pytest.mark.parametrize("listing", ["records", "directories"])
def test_verify_reports_nothing_of_trees_gc_evicts_after_it_lists_them(
        fetched: tuple[Cache, Any], monkeypatch: pytest.MonkeyPatch, listing: str) -> None:
    """gc evicting every tree right after verify listed the records (or the tree
    directories): their records gone and their locks with them, verify reported each as
    bad, "unreadable record" (or "incomplete"), and exited 3."""
    cache, _ = fetched
    evict = _once(lambda: _evict_all(cache))
    listed = verify_module.digests_under

    def listed_then_gc(base: Path, suffix: str = "", dirs: bool = False
                       ) -> Iterator[tuple[Digest, Path]]:
        found = list(listed(base, suffix, dirs))
        if base == cache.trees and dirs == (listing == "directories"):
            assert found
            evict()
        return iter(found)

    monkeypatch.setattr(verify_module, "digests_under", listed_then_gc)
    assert verify(cache) == []
    assert not list(listed(cache.trees, ".json"))
