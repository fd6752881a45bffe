"""A tree's record is one typed value (cache/records.py), written and read through it, whose
JSON is the one earlier toolfetch releases wrote: their caches are read as they are, and
what this one writes reads back in them."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from tf import assert_ok, gc_report, run_toolfetch, sharded, tf_main

from toolfetch.cache.records import TreeFile, TreeRecord
from toolfetch.cache.store import Cache
from toolfetch.core.digest import Digest
from toolfetch.core.fs import make_writable

# The example's `hello` tree record, byte for byte as toolfetch wrote it before the record
# had a type (commit 4ec6dc5, `fetch --all-platforms` of lockfiles/tools.lock.json).
OLD_HELLO = (
    b'{"files":[{"path":"bin","type":"dir"},{"digest":"sha256:fdd56b2960722124a4e6080240301f4'
    b'6bd26fdcf3796cbeff74147d4ef855f9b","mode":365,"path":"bin/hello","size":245,"type":"file"'
    b'},{"path":"share","type":"dir"},{"path":"share/hello","type":"dir"},{"digest":"sha256:c0'
    b'8931bc6ddc58de74e515a9a70491d10f05a21b489ba5801f20aa264bc8eccc","mode":292,"path":"share'
    b'/hello/greeting.txt","size":22,"type":"file"}],"key":"sha256:6240d30b5d04005b729dd7900b2'
    b'6a123824f6ae82c3702c2f867df2dab1efa8a","layers":["sha256:900f536cb7682cc3da5d5060a621a4'
    b'a580fb3a2e3082eb80d8f6f5b0a809b14d"],"manifest":"sha256:834a75c2a84cc36d670fc71b6cd4312c'
    b'dd6672e892ff1a330af103fd0ab6edec","recipe":{"layers":[["sha256:900f536cb7682cc3da5d5060a'
    b'621a4a580fb3a2e3082eb80d8f6f5b0a809b14d","tar+gzip",null,false]],"rules":3},"ref":"oci-l'
    b'ayout:registry:hello-1.0","tree":"sha256:95c5cf58ff4ae80de92fde07b2a18b1250c64ada4f4963a'
    b'6d64add68f24196b9"}'
)
HELLO_KEY = "sha256:6240d30b5d04005b729dd7900b26a123824f6ae82c3702c2f867df2dab1efa8a"


def test_an_old_record_reads_into_the_type_and_writes_back_byte_for_byte() -> None:
    record = TreeRecord.loads(OLD_HELLO)
    assert record.key == HELLO_KEY and record.ref == "oci-layout:registry:hello-1.0"
    assert record.layers == (
        "sha256:900f536cb7682cc3da5d5060a621a4a580fb3a2e3082eb80d8f6f5b0a809b14d",)
    exe = record.file("bin/hello")
    assert exe is not None and exe.type == "file" and exe.mode == 0o555 and exe.executable
    assert record.file("bin") == TreeFile("bin", "dir") and record.file("nope") is None
    assert record.dumps() == OLD_HELLO


def test_a_fetch_writes_the_records_earlier_releases_wrote(example: Path,
                                                          cache_dir: Path) -> None:
    assert_ok(tf_main("fetch", "--all-platforms", "--lockfile", example))
    record = sharded(cache_dir, "trees", HELLO_KEY).with_name(HELLO_KEY[7:] + ".json")
    assert record.read_bytes() == OLD_HELLO


def test_records_without_optional_fields_or_with_unknown_ones_are_read(
        example: Path, cache_dir: Path) -> None:
    """An older or newer toolfetch's record (no `layers`, `manifest`, `ref`; fields this one
    does not know) is a hit, passes verify, and gc still charges the tree's blob to it."""
    r = tf_main("which", "--json", "hello", "--lockfile", example)
    assert_ok(r)
    tree = Path(json.loads(r.stdout)["tree"])
    path = tree.with_name(tree.name + ".json")
    data = json.loads(path.read_bytes())
    layers = data.pop("layers")
    del data["manifest"], data["ref"]
    data["written_by"] = "toolfetch 9.9"
    data["files"][0]["xattrs"] = {}
    path.write_text(json.dumps(data, indent=1))
    record = Cache(cache_dir).read_record(Digest.parse(data["key"]))
    assert record.layers == tuple(layers) and record.manifest is None and record.ref is None
    assert_ok(tf_main("cache", "verify"))
    assert_ok(tf_main("which", "hello", "--lockfile", example))
    # the blob counts as used as recently as the tree built from it (its layers, taken from
    # the recipe): a gc of what was unused for an hour keeps it, however old its own mtime
    blob = sharded(cache_dir, "blobs", layers[0])
    past = time.time() - 7200
    os.utime(blob, (past, past))
    report = gc_report("--unused-for", "1h")
    assert report["removed"] == [] and blob.is_file(), report


@pytest.mark.parametrize("damage", [
    lambda d: d.update(files={"bin": "dir"}),
    lambda d: d["files"][1].update(mode="365"),
    lambda d: d["files"][1].update(mode=True),
    lambda d: d["files"][1].update(type="device"),
    lambda d: d["files"][1].pop("digest"),
    lambda d: d.update(recipe=[]),
    lambda d: d.update(layers=[1]),
    lambda d: d.update(ref=7),
    lambda d: d["files"][1].update(type=[]),
    lambda d: d["files"][1].update(type={}),
    lambda d: d["files"][1].update(type=None),
    lambda d: d["files"].append(1),
    lambda d: d["files"].append([{"type": "file"}]),
    lambda d: d["files"][1].update(path=_nested(500)),
    lambda d: d["files"][1].update(mode=-1),
    lambda d: d["files"][1].update(mode=10**30),
    lambda d: d["files"][1].update(size=-245),
    lambda d: d["files"][1].update(size="245"),
], ids=["files-not-a-list", "mode-a-string", "mode-a-bool", "unknown-type", "no-digest",
        "recipe-not-an-object", "layer-not-a-string", "ref-not-a-string", "type-a-list",
        "type-an-object", "type-null", "entry-a-number", "entry-a-list", "path-nested-deep",
        "mode-negative", "mode-past-07777", "size-negative", "size-a-string"])
def test_a_malformed_record_is_a_value_error_and_verify_calls_it_unreadable(
        example: Path, cache_dir: Path, damage: object) -> None:
    data = json.loads(OLD_HELLO)
    assert callable(damage)
    damage(data)
    text = json.dumps(data)
    with pytest.raises(ValueError):
        TreeRecord.loads(text.encode())
    assert_ok(tf_main("fetch", "--all-platforms", "--lockfile", example))
    path = sharded(cache_dir, "trees", HELLO_KEY).with_name(HELLO_KEY[7:] + ".json")
    path.write_text(text)
    r = tf_main("cache", "verify")
    assert r.returncode == 3, r
    assert f"bad tree {HELLO_KEY}: unreadable record" in r.stderr


def _nested(depth: int) -> object:
    value: object = "bin/hello"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("kind", [[], {}], ids=["a-list", "an-object"])
def test_an_entry_typed_by_a_list_or_an_object_is_a_malformed_record_everywhere(
        example: Path, cache_dir: Path, kind: object) -> None:
    """Such a `type` is unhashable: looked up as it was, it escaped as a TypeError (exit 1,
    internal error) from `cache info`, `cache gc` and a fetch finding the tree damaged,
    instead of the record being malformed: not charged to its blobs, and rebuilt."""
    r = tf_main("which", "--json", "hello", "--lockfile", example)
    assert_ok(r)
    tree, exe = (Path(json.loads(r.stdout)[name]) for name in ("tree", "path"))
    path = tree.with_name(tree.name + ".json")
    sound = path.read_bytes()
    data = json.loads(sound)
    next(f for f in data["files"] if f["type"] == "file")["type"] = kind
    path.write_text(json.dumps(data))
    assert_ok(tf_main("cache", "info"))
    assert_ok(tf_main("cache", "info", "--json"))
    assert_ok(tf_main("cache", "gc", "--dry-run", "--max-size", "0"))
    assert path.is_file()
    make_writable(tree)  # damaged: a fetch reads the record to tell it from a wrong `path`
    exe.unlink()
    r = run_toolfetch("which", "hello", "--lockfile", example)
    assert_ok(r)
    assert "damaged" in r.stderr and "building it again" in r.stderr, r.stderr
    assert r.stdout == f"{exe}\n" and os.access(exe, os.X_OK)
    assert path.read_bytes() == sound


def test_a_record_nested_past_the_parsers_depth_is_malformed() -> None:
    with pytest.raises(ValueError):
        TreeRecord.loads(b"[" * 100_000 + b"]" * 100_000)


@pytest.mark.parametrize("damage", [
    lambda d: d.update(ref=7),
    lambda d: d["files"][1].update(type=[]),
], ids=["ref-a-number", "type-a-list"])
def test_gc_evicts_a_tree_whose_record_is_malformed(
        example: Path, cache_dir: Path, damage: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """A record that is JSON but not a record's (a newer toolfetch's, a damaged one) still
    names a tree gc can evict: it was skipped, so `--max-size 0` kept it for ever."""
    assert_ok(tf_main("fetch", "--all-platforms", "--lockfile", example))
    tree = sharded(cache_dir, "trees", HELLO_KEY)
    path = tree.with_name(HELLO_KEY[7:] + ".json")
    data = json.loads(OLD_HELLO)
    assert callable(damage)
    damage(data)
    path.write_text(json.dumps(data))
    info = json.loads(tf_main("cache", "info", "--json").stdout)
    assert info["trees"] >= 1
    monkeypatch.setenv("TOOLFETCH_GC_GRACE", "0")
    dry = gc_report("--dry-run", "--max-size", "0")
    assert ("tree", HELLO_KEY) in [(r["kind"], r["digest"]) for r in dry["removed"]], dry
    report = gc_report("--max-size", "0")
    assert HELLO_KEY in [r["digest"] for r in report["removed"]], report
    assert not path.exists() and not tree.exists()
