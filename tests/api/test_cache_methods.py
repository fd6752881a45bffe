"""``Client.cache_info`` and ``Client.cache_tools`` as a CI script uses them: how big the cache
is and which locked tools its entries belong to."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import ocitest
import pytest
from ocitest import Registry
from tf import cache_blobs, cache_trees, script, tf_main, write_config

import toolfetch


def test_cache_info_names_the_tools_of_each_tree(registry: Registry, unique_repo: str,
                                                 tmp_path: Path, cache_dir: Path) -> None:
    client = toolfetch.Client(tmp_path / "tools.lock.json")
    empty = client.cache_info()
    assert (empty.path, empty.blobs, empty.trees, empty.tools) == (cache_dir, 0, 0, ())
    assert empty.oldest_use is None and empty.newest_use is None

    art = ocitest.oras_artifact({"fmt": script("fmt")})
    ocitest.push_artifact(registry, unique_repo, "1", art)
    write_config(tmp_path / "tools.yaml", {"tools": {"fmt": {
        "ref": registry.ref(unique_repo, "1")}}})
    with client:
        client.lock()
        exe = client.which("fmt")
    info = client.cache_info()
    [tree] = cache_trees(cache_dir)
    assert info.blobs == len(cache_blobs(cache_dir)) >= 1 and info.trees == 1
    assert info.tools == (toolfetch.CachedTree(tree, ("fmt *",)),)  # * : every platform
    assert exe.is_relative_to(cache_dir)
    assert info.size >= info.blob_size > 0 and info.newest_use is not None
    # `cache info --json` prints these figures, in this shape (a literal: to_json() is what
    # the command prints, so comparing with it could not catch a change of either)
    printed = json.loads(tf_main("cache", "info", "--json").stdout)
    assert sorted(printed) == ["allocated", "blob_size", "blobs", "newest_use", "oldest_use",
                               "other_size", "path", "size", "tools", "tree_size", "trees"]
    assert printed["path"] == str(cache_dir)
    assert (printed["blobs"], printed["trees"]) == (info.blobs, 1)
    assert printed["tools"] == [{"tree": tree, "tools": ["fmt *"]}]
    assert all(isinstance(printed[k], int) for k in (
        "size", "allocated", "blob_size", "tree_size", "other_size"))
    assert isinstance(printed["newest_use"], str) and isinstance(printed["oldest_use"], str)

    names = client.cache_tools()
    layer = art.layers[0]["digest"]
    assert names[tree] == names[layer] == ("fmt *",)


def test_clear_cache_names_the_tools_of_what_it_removes_in_a_frozen_report(
        registry: Registry, unique_repo: str, tmp_path: Path, cache_dir: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """One call gives what `cache gc` prints: the tools of each removal (the CLI used to call
    cache_tools() first, in an order a Python user had to know)."""
    monkeypatch.setenv("TOOLFETCH_GC_GRACE", "0")
    art = ocitest.oras_artifact({"fmt": script("fmt")})
    ocitest.push_artifact(registry, unique_repo, "1", art)
    write_config(tmp_path / "tools.yaml", {"tools": {"fmt": {
        "ref": registry.ref(unique_repo, "1")}}})
    lockfile = tmp_path / "tools.lock.json"
    with toolfetch.Client(lockfile) as client:
        client.lock()
        client.which("fmt")
    report = toolfetch.Client(lockfile).clear_cache(max_size=0)
    assert sorted((r.entry.kind, r.tools) for r in report.removed) == [
        ("blob", ("fmt *",)), ("tree", ("fmt *",))]
    assert isinstance(report.removed, tuple) and isinstance(report.kept_in_use, tuple)
    assert hash(report) == hash(dataclasses.replace(report))
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.size_after = 0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.removed[0].freed = 0  # type: ignore[misc]
    with pytest.raises(TypeError):
        report.removed[0].entry.inodes[(0, 0)] = 1  # type: ignore[index]
