"""The facade's results are values a script can keep: frozen, yet ``pickle``,
``copy.deepcopy`` and ``dataclasses.asdict`` take them (a multiprocessing pool, a result
cache, a JSON report), and what came from a registry or layout — annotations of any shape,
however deep — never makes ``inspect`` fail."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import pickle
import time
from pathlib import Path
from typing import Any

import pytest
from tf import REPO, tf_main

import toolfetch
from toolfetch.core.frozen import FrozenDict, freeze, thaw

DOTSLASH = REPO / "tests" / "data" / "realworld" / "dotslash"


def _round_trips(value: Any) -> None:
    assert pickle.loads(pickle.dumps(value)) == value
    assert copy.deepcopy(value) == value
    assert isinstance(dataclasses.asdict(value), dict)


def _client(tmp_path: Path) -> toolfetch.Client:
    return toolfetch.Client(tmp_path / "tools.lock.json", cache_dir=tmp_path / "cache")


def _pushed(client: toolfetch.Client, tmp_path: Path, annotations: dict[str, Any]) -> str:
    tool = tmp_path / "tool"
    tool.write_bytes(b"#!/bin/sh\n")
    ref = f"oci-layout:{tmp_path / 'layout'}:1"
    client.push(ref, [tool], annotations=annotations)
    return ref


def test_artifact_info_referrers_and_imports_pickle_copy_and_asdict(tmp_path: Path) -> None:
    client = _client(tmp_path)
    ref = _pushed(client, tmp_path, {"org.example.k": "v"})
    info = client.get_artifact_info(ref)
    _round_trips(info)
    _round_trips(info.layers[0])
    assert hash(pickle.loads(pickle.dumps(info))) == hash(info)

    note = tmp_path / "sbom.json"
    note.write_text("{}")
    client.attach(ref, [note], artifact_type="application/spdx+json",
                  annotations={"org.example.n": "1"})
    [referrer] = client.referrers(ref)
    _round_trips(referrer)
    assert json.loads(json.dumps(dataclasses.asdict(referrer)["annotations"])) == {
        "org.example.n": "1"}

    dotslash = next(p for p in sorted(DOTSLASH.rglob("*")) if p.is_file())
    imported = client.import_dotslash(dotslash, dry_run=True)
    _round_trips(imported)
    with pytest.raises(TypeError):
        imported.tools[next(iter(imported.tools))]["platforms"] = {}  # type: ignore[index]


def test_a_gc_report_pickles_and_copies(tmp_path: Path) -> None:
    client = _client(tmp_path)
    data = b"x" * 100  # one old blob in the cache, for gc to remove
    hexdigest = hashlib.sha256(data).hexdigest()
    path = tmp_path / "cache" / "blobs" / "sha256" / hexdigest[:2] / hexdigest[2:4] / hexdigest
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    old = time.time() - 90 * 86400
    os.utime(path, (old, old))
    report = client.clear_cache(max_size=0, dry_run=True)
    assert [str(r.entry.digest) for r in report.removed] == [f"sha256:{hexdigest}"]
    _round_trips(report)
    assert hash(copy.deepcopy(report)) == hash(report)


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


def test_hostile_annotations_of_any_shape_and_depth_are_printed_not_fatal(
        tmp_path: Path) -> None:
    """A manifest's annotations are strings by the spec; a layout may hold anything JSON
    can. ``inspect`` (text and JSON) and ``get_artifact_info`` print what was read."""
    client = _client(tmp_path)
    annotations = {"nested": {"b": "c"}, "list": ["x", 1], "deep": _nested(900)}
    ref = _pushed(client, tmp_path, annotations)
    info = client.get_artifact_info(ref)
    assert thaw(info.annotations) == annotations
    assert info.to_json()["annotations"] == annotations
    r = tf_main("inspect", "--json", ref)
    assert r.returncode == 0, r
    assert json.loads(r.stdout)["annotations"] == annotations
    r = tf_main("inspect", ref)
    assert r.returncode == 0, r
    assert "Annotation:    list=['x', 1]" in r.stdout
    assert "Annotation:    nested={'b': 'c'}" in r.stdout


def test_frozen_dict_refuses_every_change_and_freeze_is_not_recursive() -> None:
    frozen = freeze({"a": [1, {"b": 2}], "deep": _nested(5000)})
    assert isinstance(frozen, FrozenDict) and frozen["a"] == (1, FrozenDict(b=2))
    for change in (lambda d: d.__setitem__("x", 1), lambda d: d.__delitem__("a"),
                   lambda d: d.update(x=1), lambda d: d.pop("a"), lambda d: d.popitem(),
                   lambda d: d.setdefault("x", 1), lambda d: d.clear(),
                   lambda d: d.__ior__({"x": 1})):
        with pytest.raises(TypeError):
            change(frozen)
    assert set(frozen) == {"a", "deep"}
    assert thaw(frozen)["a"] == [1, {"b": 2}]
    assert json.dumps(frozen["a"]) == '[1, {"b": 2}]'
    assert pickle.loads(pickle.dumps(frozen["a"])) == frozen["a"]
