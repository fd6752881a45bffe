"""``Client.cache_info`` and ``Client.cache_tools`` as a CI script uses them: how big the cache
is and which locked tools its entries belong to."""

from __future__ import annotations

import json
from pathlib import Path

import ocitest
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
    # the same figures `cache info --json` prints
    assert json.loads(tf_main("cache", "info", "--json").stdout) == info.to_json()

    names = client.cache_tools()
    layer = art.layers[0]["digest"]
    assert names[tree] == names[layer] == ("fmt *",)
