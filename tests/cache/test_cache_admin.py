"""Issue 6: `toolfetch cache info | gc | verify | path` on a real cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tf import REPO, assert_error, assert_ok, run_toolfetch, tree_key

from toolfetch.core import tempnames

ROOT = REPO
OLD = time.time() - 10 * 86400


@pytest.fixture
def cache() -> Path:
    return Path(os.environ["TOOLFETCH_CACHE_DIR"])


def _records(cache: Path) -> dict[str, Path]:
    return {p.name[:-5]: p for p in (cache / "trees").rglob("*.json")}


def _blobs(cache: Path) -> dict[str, Path]:
    return {p.name: p for p in (cache / "blobs").rglob("*") if p.is_file()}


def _which(example: Path, tool: str, platform: str | None = None) -> dict[str, str]:
    args = ["which", "--json", tool, "--lockfile", str(example)]
    if platform:
        args += ["--platform", platform]
    r = run_toolfetch(*args)
    assert_ok(r)
    data: dict[str, str] = json.loads(r.stdout)
    return data


def _age(paths: list[Path], when: float) -> None:
    for p in paths:
        os.utime(p, (when, when))


def test_cache_path_and_info(example: Path, cache: Path) -> None:
    r = run_toolfetch("cache", "path")
    assert_ok(r)
    assert r.stdout.strip() == str(cache)
    assert_ok(run_toolfetch("fetch", "--all-platforms", "--lockfile", example))
    r = run_toolfetch("cache", "info", "--json")
    assert_ok(r)
    info = json.loads(r.stdout)
    lock = json.loads(example.read_text())
    manifests = {tree_key(e["layers"]) for t in lock["tools"].values()
                 for e in t["platforms"].values()}
    layers = {layer["digest"] for t in lock["tools"].values() for e in t["platforms"].values()
              for layer in e["layers"]}
    assert info["path"] == str(cache)
    assert info["trees"] == len(manifests) == len(_records(cache))
    assert info["blobs"] == len(layers)
    assert info["blob_size"] == sum(p.stat().st_size for p in _blobs(cache).values())
    assert info["oldest_use"] <= info["newest_use"]
    human = run_toolfetch("cache", "info")
    assert f"trees:      {len(manifests)}" in human.stdout


def test_gc_reclaims_dead_temp_files_and_unheld_locks(example: Path, cache: Path) -> None:
    assert_ok(run_toolfetch("fetch", "--lockfile", example))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    tag = tempnames.host_tag()
    (cache / "tmp" / f".entry.{tag}-{dead.pid}-abc.part").write_bytes(b"partial")
    tree = cache / "tmp" / f".entry.{tag}-{dead.pid}-def.tree" / "t"
    tree.mkdir(parents=True)
    (tree / "f").write_bytes(b"x")
    tree.chmod(0o555)
    for p in (tree.parent, tree.parent.with_name(f".entry.{tag}-{dead.pid}-abc.part")):
        os.utime(p, (OLD, OLD))  # untouched for longer than the grace
    live = cache / "tmp" / f".entry.{tag}-{os.getpid()}-live.part"
    live.write_bytes(b"mine")
    os.utime(live, (OLD, OLD))
    (cache / "locks" / "blob-stale.lock").write_bytes(b"")
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import filelock,sys,time; l=filelock.FileLock(sys.argv[1]); l.acquire(); "
         "print('held', flush=True); time.sleep(60)", str(cache / "locks" / "tree-held.lock")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        r = run_toolfetch("cache", "gc", "--json")
        assert_ok(r)
        report = json.loads(r.stdout)
        assert report["temp_reclaimed"] == 2
        assert report["removed"] == []  # no policy given: entries stay
        assert sorted(p.name for p in (cache / "tmp").iterdir()) == [live.name]
        assert not (cache / "locks" / "blob-stale.lock").exists()
        assert (cache / "locks" / "tree-held.lock").exists()
    finally:
        holder.kill()
        holder.wait()


def test_gc_unused_for_and_keep(example: Path, cache: Path, tmp_path: Path) -> None:
    assert_ok(run_toolfetch("fetch", "--all-platforms", "--lockfile", example))
    hello = _which(example, "hello")
    say = _which(example, "say")
    hello_record = Path(hello["tree"] + ".json")
    # Age everything but say's tree.
    _age([p for p in _records(cache).values() if p != Path(say["tree"] + ".json")], OLD)
    _age(list(_blobs(cache).values()), OLD)
    env = {"TOOLFETCH_GC_GRACE": "0"}
    # A lockfile holding only hello (every platform) is kept.
    keep = tmp_path / "keep.lock.json"
    data = json.loads(example.read_text())
    data["tools"] = {"hello": data["tools"]["hello"]}
    keep.write_text(json.dumps(data))
    dry = run_toolfetch("cache", "gc", "--unused-for", "1d", "--keep", keep, "--dry-run",
                        "--json", env=env)
    assert_ok(dry)
    would = json.loads(dry.stdout)["removed"]
    assert would and hello_record.exists()
    before = set(_records(cache))
    r = run_toolfetch("cache", "gc", "--unused-for", "1d", "--keep", keep, "--json", env=env)
    assert_ok(r)
    removed = {e["digest"].split(":")[1] for e in json.loads(r.stdout)["removed"]}
    assert removed == {e["digest"].split(":")[1] for e in would}
    after = set(_records(cache))
    hello_trees = {tree_key(e["layers"]).split(":")[1]
                   for e in data["tools"]["hello"]["platforms"].values()}
    assert hello_trees <= after  # kept for every platform, though old
    assert Path(say["tree"] + ".json").name[:-5] in after  # recently used
    greet = {tree_key(e["layers"]).split(":")[1] for e in json.loads(example.read_text())
             ["tools"]["greet"]["platforms"].values()}
    assert greet & before and not greet & after  # old and not kept: gone
    for digest in greet:
        assert not (cache / "trees" / "sha256" / digest[:2] / digest[2:4] / digest).exists()
    # What was evicted comes back on demand.
    assert "greetings" in subprocess.run([_which(example, "greet")["path"]],
                                         capture_output=True, text=True).stdout


def test_gc_max_size_evicts_least_recently_used_first(example: Path, cache: Path) -> None:
    assert_ok(run_toolfetch("fetch", "--all-platforms", "--lockfile", example))
    records = _records(cache)
    blobs = _blobs(cache)
    _age(list(blobs.values()), OLD)
    ordered = sorted(records.values())
    for i, rec in enumerate(ordered):  # distinct ages: ordered[0] is the oldest
        _age([rec], OLD + i * 60)
    info = json.loads(run_toolfetch("cache", "info", "--json").stdout)
    budget = info["size"] - 1  # one byte too many: the oldest entries must go, no more
    r = run_toolfetch("cache", "gc", "--max-size", str(budget), "--json",
                      env={"TOOLFETCH_GC_GRACE": "0"})
    assert_ok(r)
    report = json.loads(r.stdout)
    assert report["size_after"] <= budget
    removed = report["removed"]
    assert removed
    oldest_first = [e["digest"] for e in removed]
    # Blobs (older than every tree here) go before any tree.
    kinds = [e["kind"] for e in removed]
    assert kinds == sorted(kinds)  # all "blob" entries precede "tree" entries
    if "tree" in kinds:
        assert oldest_first[kinds.index("tree")].split(":")[1] == ordered[0].name[:-5]
    newest = ordered[-1]
    assert newest.exists()


def test_gc_never_removes_an_entry_a_running_fetch_holds(example: Path, cache: Path) -> None:
    say = _which(example, "say")
    record = Path(say["tree"] + ".json")
    digest = record.name[:-5]
    _age([record, *list(_blobs(cache).values())], OLD)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import filelock,sys,time; l=filelock.FileLock(sys.argv[1]); l.acquire(); "
         "print('held', flush=True); time.sleep(60)",
         str(cache / "locks" / f"tree-{digest}.lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        r = run_toolfetch("cache", "gc", "--unused-for", "0s", "--json",
                          env={"TOOLFETCH_GC_GRACE": "0"})
        assert_ok(r)
        report = json.loads(r.stdout)
        assert f"sha256:{digest}" in report["in_use"]
        assert record.exists() and Path(say["path"]).exists()
    finally:
        holder.kill()
        holder.wait()
    # The grace period protects a tool that was just used, even without a lock.
    _which(example, "say")  # a hit touches the record
    r = run_toolfetch("cache", "gc", "--unused-for", "0s", "--json",
                      env={"TOOLFETCH_GC_GRACE": "3600"})
    assert_ok(r)
    assert record.exists()


def test_gc_rejects_malformed_policies() -> None:
    assert_error(run_toolfetch("cache", "gc", "--max-size", "lots"), 2, "lots")
    assert_error(run_toolfetch("cache", "gc", "--unused-for", "soon"), 2, "soon")


def test_verify_catches_a_tampered_blob_and_repairs_it(example: Path, cache: Path) -> None:
    say = _which(example, "say")
    assert_ok(run_toolfetch("cache", "verify"))
    blob = next(iter(_blobs(cache).values()))
    for p in _blobs(cache).values():
        if p.stat().st_size > 10:
            blob = p
    data = bytearray(blob.read_bytes())
    data[0] ^= 1
    blob.chmod(0o644)
    blob.write_bytes(bytes(data))
    r = run_toolfetch("cache", "verify")
    assert_error(r, 3, f"bad blob sha256:{blob.name}")
    r = run_toolfetch("cache", "verify", "--repair", "--lockfile", example)
    assert_ok(r)
    assert_ok(run_toolfetch("cache", "verify"))
    assert Path(say["path"]).exists()


def test_verify_catches_a_tampered_tree_file(example: Path, cache: Path) -> None:
    hello = _which(example, "hello")
    greeting = Path(hello["tree"]) / "share" / "hello" / "greeting.txt"
    greeting.parent.chmod(0o755)
    greeting.chmod(0o644)
    greeting.write_text("Hacked!\n")
    digest = Path(hello["tree"]).name
    r = run_toolfetch("cache", "verify", "--json")
    assert r.returncode == 3
    bad = json.loads(r.stdout)
    assert [b["digest"] for b in bad] == [f"sha256:{digest}"]
    assert "tree hashes to" in bad[0]["problem"]
    assert_ok(run_toolfetch("cache", "verify", "--repair", "--lockfile", example))
    out = subprocess.run([hello["path"]], capture_output=True, text=True).stdout
    assert "Hello from toolfetch!" in out


def test_verify_reports_an_interrupted_unpack(example: Path, cache: Path) -> None:
    say = _which(example, "say")
    Path(say["tree"] + ".json").unlink()  # as if killed between rename and record
    r = run_toolfetch("cache", "verify")
    assert_error(r, 3, Path(say["tree"]).name, "incomplete")
    # The next fetch redoes it.
    again = _which(example, "say")
    assert Path(again["tree"] + ".json").exists()


def test_gc_drops_lockfile_indexes_and_verdicts_nobody_uses(example: Path, cache: Path,
                                                            tmp_path: Path) -> None:
    """An index whose lockfile is gone goes; a schema verdict goes once unused for 90 days,
    a recent one stays (and is what lets a fresh clone skip the schema)."""
    gone = tmp_path / "gone" / "tools.lock.json"
    gone.parent.mkdir()
    gone.write_bytes(example.read_bytes() + b"\n")  # other bytes: a verdict of its own
    for lockfile in (example, gone):
        assert_ok(run_toolfetch("fetch", "--lockfile", lockfile))
    indexes = sorted(p for p in (cache / "lockfiles").iterdir() if "valid-" not in p.name)
    verdicts = sorted((cache / "lockfiles").glob("valid-*"))
    assert len(indexes) == 2 and len(verdicts) == 2
    gone.unlink()
    old_verdict = verdicts[0]
    _age([old_verdict], time.time() - 91 * 86400)
    r = run_toolfetch("cache", "gc", "--json")
    assert_ok(r)
    left = sorted((cache / "lockfiles").iterdir())
    assert old_verdict not in left and verdicts[1] in left
    assert len([p for p in left if "valid-" not in p.name]) == 1  # the gone lockfile's index
    assert json.loads(r.stdout)["temp_reclaimed"] == 2
