"""Issue 14: one digest gives one tree on every machine, and the cache reports what is on disk.

Each test names the defect it pins down: trees poisoned across lockfiles, trees depending on
which tool asked first, gc reports that disagree with the disk, single-platform images served
to every platform, wrong paths passing with exit 0, local I/O failures reported as internal
errors. Trees and sizes are checked independently (hashlib, os.lstat, du), never by asking
toolfetch.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import ocitest
import pytest
from tf import (
    assert_error,
    assert_ok,
    cache_trees,
    check_cache_layout,
    du_files,
    run_toolfetch,
    script,
    sha256_hex,
    sharded,
    tf_main,
    tree_key,
    write_config,
)

GRACE0 = {"TOOLFETCH_GC_GRACE": "0"}


def snapshot(tree: Path) -> dict[str, tuple[str, int, str]]:
    """Every entry of a tree: (kind, mode, content digest or link target), from the disk."""
    out: dict[str, tuple[str, int, str]] = {}
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            rel = str(path.relative_to(tree))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", 0, os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode), "")
            else:
                out[rel] = ("file", stat.S_IMODE(st.st_mode), sha256_hex(path.read_bytes()))
    return out


def lock(tmp_path: Path, tools: dict[str, Any], name: str = "ws") -> Path:
    work = tmp_path / name
    write_config(work / "tools.yaml", {"tools": tools})
    lockfile = work / "tools.lock.json"
    assert_ok(tf_main("lock", "--lockfile", lockfile))
    return lockfile


def which(lockfile: Path, tool: str, *extra: str) -> dict[str, str]:
    r = tf_main("which", "--lockfile", lockfile, "--json", tool, *extra)
    assert_ok(r)
    out: dict[str, str] = json.loads(r.stdout)
    return out


# ---------------------------------------------------------------- 0. cache poisoning

def test_a_lockfile_cannot_plant_another_tree_under_a_real_tools_manifest(
        registry: ocitest.Registry, unique_repo: str, tmp_path: Path, cache_dir: Path) -> None:
    legit = ocitest.oras_artifact({"tool": script("legit")})
    ocitest.push_artifact(registry, unique_repo, "1", legit)
    trojan = script("trojan")
    ocitest.push_blob(registry, unique_repo, trojan)  # any blob the registry serves
    good = lock(tmp_path, {"tool": {"ref": registry.ref(unique_repo, "1")}}, "good")
    # The hostile lockfile (a pull request's, say) names the real manifest, other bytes.
    hostile = json.loads(good.read_text())
    entry = hostile["tools"]["tool"]["platforms"]["*"]
    assert entry["manifest"] == legit.digest
    entry["layers"][0].update(digest=ocitest.sha256_digest(trojan), size=len(trojan))
    evil = tmp_path / "evil" / "tools.lock.json"
    evil.parent.mkdir()
    evil.write_text(json.dumps(hostile))

    def runs(lockfile: Path) -> str:
        r = run_toolfetch("run", "--lockfile", lockfile, "tool")
        assert r.returncode == 0, r.stderr
        return r.stdout.splitlines()[0]

    for first, second in ((evil, good), (good, evil)):  # in either order, on a fresh cache
        shutil.rmtree(cache_dir, ignore_errors=True)
        for lockfile in (first, second):
            assert_ok(tf_main("fetch", "--lockfile", lockfile))
        assert runs(good) == "legit"
        assert runs(evil) == "trojan"  # the hostile lockfile gets only what it pinned itself
        assert which(good, "tool")["tree"] != which(evil, "tool")["tree"]
        bin_dir = tmp_path / "bin"
        assert_ok(tf_main("bootstrap", "--lockfile", good, "--bin-dir", bin_dir))
        out = subprocess.run([bin_dir / "tool"], capture_output=True, text=True).stdout
        assert out.splitlines()[0] == "legit"
        assert_ok(run_toolfetch("cache", "verify"))
        check_cache_layout(cache_dir)


def test_cache_verify_detects_a_tree_that_does_not_match_its_layers(
        registry: ocitest.Registry, unique_repo: str, tmp_path: Path, cache_dir: Path) -> None:
    """A tree planted under a real key, with a record forged to match the planted files."""
    legit = ocitest.oras_artifact({"t.tar": ocitest.tarbytes({"tool": (script("legit"),
                                                                       0o755)})})
    ocitest.push_artifact(registry, unique_repo, "1", legit)
    good = lock(tmp_path, {"tool": {"ref": registry.ref(unique_repo, "1"), "path": "tool"}})
    tree = Path(which(good, "tool")["tree"])
    tree.chmod(0o755)
    (tree / "tool").chmod(0o755)
    (tree / "tool").write_bytes(script("trojan"))
    (tree / "tool").chmod(0o555)
    tree.chmod(0o555)
    record_path = tree.with_name(tree.name + ".json")
    record = json.loads(record_path.read_text())
    from toolfetch.cache.trees import tree_digest

    record["tree"], files = tree_digest(tree)  # forged to match what is on disk
    record["files"] = [f.to_json() for f in files]
    record_path.write_text(json.dumps(record))
    r = run_toolfetch("cache", "verify", "--json")
    assert r.returncode == 3, r
    bad = json.loads(r.stdout)
    assert [(b["kind"], b["digest"]) for b in bad] == [("tree", f"sha256:{tree.name}")]
    assert "what its layers unpack to" in bad[0]["problem"]
    # a record whose recipe is not the key's is caught as well
    record["recipe"]["layers"][0][2] = "renamed"
    record_path.write_text(json.dumps(record))
    r = run_toolfetch("cache", "verify", "--json")
    assert r.returncode == 3 and "not to the key" in json.loads(r.stdout)[0]["problem"]
    assert_ok(run_toolfetch("cache", "verify", "--repair", "--lockfile", good))
    out = run_toolfetch("run", "--lockfile", good, "tool").stdout
    assert out.splitlines()[0] == "legit"


# ---------------------------------------------------------------- 1. order independence

def _formats() -> dict[str, ocitest.Artifact]:
    zstandard = pytest.importorskip("zstandard")
    members: dict[str, ocitest.TarValue] = {
        "bin/": b"", "bin/one": (script("one"), 0o755), "bin/two": (script("two"), 0o700),
        "bin/alias": ocitest.Symlink("one"), "share/data.txt": (b"data", 0o640)}
    tar = ocitest.tarbytes(members)
    zipped = ocitest.zipbytes({"bin/one": (script("one"), 0o755), "bin/two": (script("two"),
                                                                             0o755),
                               "share/data.txt": b"data"})
    return {
        "raw": ocitest.oras_artifact({"bin/one": script("one"), "bin/two": script("two"),
                                      "share/data.txt": b"data"}),
        "tar": ocitest.oras_artifact({"t.tar": tar}),
        "tar+gzip": ocitest.oras_artifact({"t.tar.gz": ocitest.gzipbytes(tar)}),
        "tar+zstd": ocitest.oras_artifact({"t.tar.zst": zstandard.ZstdCompressor().compress(
            tar)}),
        "zip": ocitest.oras_artifact({"t.zip": zipped}),
        "layers": ocitest.oras_artifact({"a.tar.gz": ocitest.targz({"bin/one": (script(
            "one"), 0o755)}), "bin/two": script("two")}),
    }


@pytest.mark.parametrize("kind", ["raw", "tar", "tar+gzip", "tar+zstd", "zip", "layers"])
def test_a_tree_is_the_same_whichever_tool_asks_first(
        kind: str, registry: ocitest.Registry, unique_repo: str, tmp_path: Path,
        cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    art = _formats()[kind]
    ocitest.push_artifact(registry, unique_repo, "1", art)
    ref = registry.ref(unique_repo, "1")
    lockfile = lock(tmp_path, {"one": {"ref": ref, "path": "bin/one"},
                               "two": {"ref": ref, "path": "bin/two"}})
    seen = []
    for i, order in enumerate((["one", "two"], ["two", "one"], ["one two"])):
        cache = tmp_path / f"cache{i}"
        monkeypatch.setenv("TOOLFETCH_CACHE_DIR", str(cache))
        for tools in order:
            assert_ok(tf_main("fetch", "--lockfile", lockfile, *tools.split()))
        for tool in ("one", "two"):  # every tool of the artifact runs, whoever came first
            r = run_toolfetch("run", "--lockfile", lockfile, tool)
            assert r.returncode == 0 and r.stdout.splitlines()[0] == tool, r.stderr
        (tree,) = cache_trees(cache).values()
        record = json.loads(tree.with_name(tree.name + ".json").read_text())
        seen.append((snapshot(tree), record["tree"]))
        assert_ok(run_toolfetch("cache", "verify"))
    assert seen[0] == seen[1] == seen[2]  # byte-identical, same modes, same tree digest


def test_two_trees_sharing_an_inode_built_at_once(registry: ocitest.Registry,
                                                  unique_repo: str, tmp_path: Path,
                                                  cache_dir: Path) -> None:
    """Raw layers are hardlinks of one blob inode; building trees concurrently never leaves
    one with the other's mode (every raw placement is 0o555)."""
    shared = script("shared") + os.urandom(1 << 16)
    tools = {}
    for i in range(4):  # four artifacts, one shared raw layer, each its own second file
        art = ocitest.oras_artifact({"tool": shared, f"extra{i}": f"extra {i}".encode()})
        ocitest.push_artifact(registry, unique_repo, str(i), art)
        tools[f"t{i}"] = {"ref": registry.ref(unique_repo, str(i)), "path": "tool"}
    lockfile = lock(tmp_path, tools)
    for _ in range(3):
        shutil.rmtree(cache_dir, ignore_errors=True)
        procs = [subprocess.Popen([sys.executable, "-m", "toolfetch", "fetch", "--lockfile",
                                   str(lockfile), f"t{i}"], stderr=subprocess.PIPE, text=True)
                 for i in range(4)]
        for p in procs:
            assert p.wait(timeout=60) == 0, p.stderr.read() if p.stderr else ""
        inodes = set()
        for tree in cache_trees(cache_dir).values():
            st = (tree / "tool").stat()
            inodes.add(st.st_ino)
            assert stat.S_IMODE(st.st_mode) == 0o555
        assert len(cache_trees(cache_dir)) == 4 and len(inodes) == 1  # one inode, four trees
        assert_ok(run_toolfetch("cache", "verify"))


# ---------------------------------------------------------------- 2. gc tells the truth

def du_allocated(root: Path) -> int:
    out = subprocess.run(["du", "-s", "-B1", str(root)], capture_output=True, text=True,
                         check=True).stdout
    return int(out.split()[0])


def close(a: int, b: int) -> bool:
    return abs(a - b) <= max(a, b) * 0.01


def test_gc_frees_what_it_says_with_hardlinked_raw_trees(
        registry: ocitest.Registry, unique_repo: str, tmp_path: Path, cache_dir: Path) -> None:
    big = script("big") + os.urandom(32 << 20)
    art = ocitest.oras_artifact({"big": big})
    ocitest.push_artifact(registry, unique_repo, "1", art)
    small = ocitest.oras_artifact({"small": script("small")})
    ocitest.push_artifact(registry, unique_repo, "2", small)
    lockfile = lock(tmp_path, {"big": {"ref": registry.ref(unique_repo, "1")},
                               "small": {"ref": registry.ref(unique_repo, "2")}})
    assert_ok(tf_main("fetch", "--lockfile", lockfile))
    info = json.loads(run_toolfetch("cache", "info", "--json").stdout)
    on_disk = du_files(cache_dir)
    assert close(info["size"], on_disk) and on_disk < len(big) * 1.01  # the hardlink: once
    assert close(info["allocated"], du_allocated(cache_dir))
    keep = tmp_path / "keep.lock.json"  # small is kept, big is not
    data = json.loads(lockfile.read_text())
    data["tools"] = {"small": data["tools"]["small"]}
    keep.write_text(json.dumps(data))
    r = run_toolfetch("cache", "gc", "--max-size", "1M", "--keep", keep, "--json", env=GRACE0)
    assert_ok(r)
    report = json.loads(r.stdout)
    after = du_files(cache_dir)
    assert after <= (1 << 20)  # at most the limit (the kept tool is a few bytes)
    assert close(report["size_after"], after) or abs(report["size_after"] - after) < 64
    assert close(report["freed"], on_disk - after)
    assert {e["kind"] for e in report["removed"]} == {"blob", "tree"}
    info = json.loads(run_toolfetch("cache", "info", "--json").stdout)
    assert info["size"] == after and info["trees"] == 1
    assert close(info["allocated"], du_allocated(cache_dir))
    human = run_toolfetch("cache", "gc", "--max-size", "1M", "--keep", keep, env=GRACE0)
    assert "freeing 0 B" in human.stdout  # nothing left to free; it says so
    assert which(lockfile, "small")["path"]  # the kept tool is still served


def test_gc_keeps_the_blob_a_kept_raw_tree_links(
        registry: ocitest.Registry, unique_repo: str, tmp_path: Path, cache_dir: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from toolfetch.cache.gc import collect
    from toolfetch.cache.store import Cache
    from toolfetch.core.digest import Digest

    art = ocitest.oras_artifact({"t": script("t") + os.urandom(1 << 20)})
    ocitest.push_artifact(registry, unique_repo, "1", art)
    lockfile = lock(tmp_path, {"t": {"ref": registry.ref(unique_repo, "1")}})
    tree = Path(which(lockfile, "t")["tree"])
    blob_digest = art.layers[0]["digest"]
    layers = json.loads(lockfile.read_text())["tools"]["t"]["platforms"]["*"]["layers"]
    monkeypatch.setenv("TOOLFETCH_GC_GRACE", "0")
    # Keep the tree, not its blob: evicting the blob would free nothing (the tree links its
    # inode) and only cost a download later, so it stays with the tree.
    report = collect(Cache(cache_dir), max_size=0, unused_for=None,
                     keep={Digest.parse(tree_key(layers))})
    assert report.removed == () and report.freed == 0
    assert (tree / "t").stat().st_ino == (sharded(cache_dir, "blobs", blob_digest)).stat().st_ino
    assert report.size_after == du_files(cache_dir)
    # Without the keep, both go together, and their bytes are charged once.
    report = collect(Cache(cache_dir), max_size=0, unused_for=None, keep=set())
    assert [r.entry.kind for r in report.removed] == ["tree", "blob"]
    assert sum(r.freed for r in report.removed) == report.size_before - report.size_after
    assert report.removed[1].freed >= art.layers[0]["size"]
    assert report.size_after == du_files(cache_dir) < 1024


# ---------------------------------------------------------------- 3. single-platform images

def test_a_single_platform_image_is_locked_for_its_platform_only(
        registry: ocitest.Registry, unique_repo: str, tmp_path: Path) -> None:
    layer = ocitest.targz({"bin/t": (script("linux"), 0o755)})
    oci = ocitest.image_artifact("linux/amd64", [layer])
    ocitest.push_artifact(registry, f"{unique_repo}/oci", "1", oci)
    docker = ocitest.image_artifact("linux/arm64/v8", [layer], docker=True)
    ocitest.push_artifact(registry, f"{unique_repo}/docker", "1", docker)
    oras = ocitest.oras_artifact({"any": script("any")})
    ocitest.push_artifact(registry, f"{unique_repo}/oras", "1", oras)
    lockfile = lock(tmp_path, {
        "oci": {"ref": registry.ref(f"{unique_repo}/oci", "1"), "path": "bin/t"},
        "docker": {"ref": registry.ref(f"{unique_repo}/docker", "1"), "path": "bin/t"},
        "oras": {"ref": registry.ref(f"{unique_repo}/oras", "1")}})
    tools = json.loads(lockfile.read_text())["tools"]
    assert list(tools["oci"]["platforms"]) == ["linux/amd64"]
    assert list(tools["docker"]["platforms"]) == ["linux/arm64"]
    assert list(tools["oras"]["platforms"]) == ["*"]  # an artifact's empty config: any platform
    for command in ("fetch", "which"):
        r = tf_main(command, "--lockfile", lockfile, "--platform", "darwin/arm64", "oci")
        assert_error(r, 4, "darwin/arm64", "linux/amd64")
    assert_ok(tf_main("fetch", "--lockfile", lockfile, "--platform", "linux/amd64", "oci"))
    assert which(lockfile, "oras", "--platform", "darwin/arm64")["platform"] == "*"
    # a listed platform the image does not serve is a lock error naming what it offers
    for spec in ({"ref": registry.ref(f"{unique_repo}/oci", "1"), "path": "bin/t",
                  "platforms": ["linux/amd64", "darwin/arm64"]},
                 {"platforms": {"darwin/arm64": {"ref": registry.ref(f"{unique_repo}/oci", "1"),
                                                 "path": "bin/t"}}}):
        write_config(tmp_path / "bad" / "tools.yaml", {"tools": {"oci": spec}})
        r = tf_main("lock", "--lockfile", tmp_path / "bad" / "tools.lock.json")
        assert_error(r, 4, "darwin/arm64", "linux/amd64", "single-platform image")
        assert not (tmp_path / "bad" / "tools.lock.json").exists()


# ---------------------------------------------------------------- 5. a wrong path

def test_a_wrong_path_fails_lock_fetch_and_bootstrap_with_4(
        registry: ocitest.Registry, unique_repo: str, tmp_path: Path) -> None:
    raw = ocitest.oras_artifact({"protoc": script("p"), "protoc-gen": script("g")})
    ocitest.push_artifact(registry, unique_repo, "raw", raw)
    write_config(tmp_path / "tools.yaml", {"tools": {"p": {
        "ref": registry.ref(unique_repo, "raw"), "path": "protc"}}})
    r = tf_main("lock", "--lockfile", tmp_path / "tools.lock.json")
    assert_error(r, 4, "tool p", "'protc'", "protoc")  # raw titles: lock can know
    tar = ocitest.oras_artifact({"p.tar.gz": ocitest.targz({"bin/protoc": (script("p"),
                                                                           0o755)})})
    ocitest.push_artifact(registry, unique_repo, "tar", tar)
    lockfile = lock(tmp_path, {"p": {"ref": registry.ref(unique_repo, "tar"),
                                     "path": "bin/protc"}}, "tar")
    assert_error(tf_main("fetch", "--lockfile", lockfile), 4, "'bin/protc'", "bin/protoc")
    bin_dir = tmp_path / "bin"
    r = tf_main("bootstrap", "--lockfile", lockfile, "--bin-dir", bin_dir)
    assert_error(r, 4, "'bin/protc'", "bin/protoc")
    assert not (bin_dir / "p").exists()  # no launcher for a tool that cannot run


# ---------------------------------------------------------------- 9. local I/O failures

def test_bad_environment_variables_are_usage_errors_naming_them(
        registry: ocitest.Registry, unique_repo: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    art = ocitest.oras_artifact({"t": script("t")})
    ocitest.push_artifact(registry, unique_repo, "1", art)
    lockfile = lock(tmp_path, {"t": {"ref": registry.ref(unique_repo, "1")}})
    monkeypatch.setenv("TOOLFETCH_GC_GRACE", "soon")
    assert_error(run_toolfetch("cache", "gc"), 2, "TOOLFETCH_GC_GRACE", "soon")
    monkeypatch.delenv("TOOLFETCH_GC_GRACE")
    monkeypatch.setenv("TOOLFETCH_MIRRORS", "nonsense")
    assert_error(tf_main("fetch", "--lockfile", lockfile), 2, "TOOLFETCH_MIRRORS", "nonsense")
    monkeypatch.setenv("TOOLFETCH_MIRRORS", f"{registry.host}=http://bad")
    assert_error(tf_main("fetch", "--lockfile", lockfile), 2, "TOOLFETCH_MIRRORS")
    monkeypatch.delenv("TOOLFETCH_MIRRORS")
    assert_ok(tf_main("fetch", "--lockfile", lockfile))
    monkeypatch.setenv("TOOLFETCH_MIRRORS", "nonsense")  # a cached fetch needs no mirror
    assert_ok(tf_main("fetch", "--lockfile", lockfile))
    assert_ok(tf_main("which", "--lockfile", lockfile, "t", "--offline"))


def test_local_io_failures_exit_8_keeping_the_cause(registry: ocitest.Registry,
                                                    unique_repo: str, tmp_path: Path) -> None:
    art = ocitest.oras_artifact({"t": script("t")})
    ocitest.push_artifact(registry, unique_repo, "1", art)
    lockfile = lock(tmp_path, {"t": {"ref": registry.ref(unique_repo, "1")}})
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    r = tf_main("bootstrap", "--lockfile", lockfile, "--bin-dir", not_a_dir / "bin")
    assert_error(r, 8, str(not_a_dir))
    assert "caused by" in r.stderr and "Traceback" not in r.stderr
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine").write_text("keep")
    assert_error(tf_main("fetch", "--lockfile", lockfile, "t", "--output", out), 8, str(out))
    assert (out / "mine").read_text() == "keep" and sorted(os.listdir(out)) == ["mine"]


def test_context_keeps_class_exit_code_and_cause() -> None:
    from toolfetch.core.errors import IntegrityError, MultipleErrors, NotFoundError

    root = OSError("disk on fire")
    try:
        try:
            raise root
        except OSError as e:
            raise IntegrityError("blob sha256:ab: digest mismatch") from e
    except IntegrityError as e:
        wrapped = e.context("tool t (linux/amd64)")
    assert type(wrapped) is IntegrityError and wrapped.exit_code == 3
    assert str(wrapped) == "tool t (linux/amd64): blob sha256:ab: digest mismatch"
    assert wrapped.__cause__ is root
    assert wrapped.context("tool t (linux/amd64)") is wrapped  # no double prefix
    many = MultipleErrors([NotFoundError("a"), IntegrityError("b")]).context("fetch")
    assert isinstance(many, MultipleErrors) and many.exit_code == 4
    assert [str(x) for x in many.errors] == ["fetch: a", "fetch: b"]
