"""Integration tests of ``toolfetch fetch`` / ``which`` / ``run`` against a real registry.

The cache is checked independently: every blob is re-hashed and must be named by its own
digest, trees sit at trees/sha256/ab/cd/<key hex> (the digest of their recipe, recomputed by
the tests) with a .json record beside them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ocitest
import pytest
from ocitest import Registry
from tf import (
    Pushed,
    assert_error,
    assert_ok,
    cache_blobs,
    cache_trees,
    check_cache_layout,
    host,
    other_platform,
    probe_heavy_imports,
    push_kinds,
    run_toolfetch,
    script,
    sharded,
    tf_main,
    tmp_entries,
    tools_config,
    tree_key,
    write_config,
)

MakeRegistry = Callable[..., Registry]


class Workspace:
    def __init__(self, root: Path) -> None:
        self.config = root / "tools.yaml"
        self.lockfile = root / "tools.lock.json"

    def lock(self, data: dict[str, Any]) -> None:
        write_config(self.config, data)
        assert_ok(tf_main("lock", "--lockfile", self.lockfile))

    def tf(self, command: str, *args: str | Path) -> Any:
        return tf_main(command, "--lockfile", self.lockfile, *args)

    def data(self) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self.lockfile.read_text())
        return out

    def key(self, tool: str, platform: str) -> str:
        """The tree key of a locked tool's platform entry."""
        return tree_key(self.data()["tools"][tool]["platforms"][platform]["layers"])

    def tree(self, cache: Path, tool: str, platform: str) -> Path:
        return sharded(cache, "trees", self.key(tool, platform))


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "ws")


def key_for(p: Pushed, platform: str) -> str:
    return platform if p.index else "*"


def test_lock_fetch_which_run_every_kind(registry: Registry, unique_repo: str, ws: Workspace,
                                         cache_dir: Path) -> None:
    pushed = push_kinds(registry, unique_repo)
    ws.lock(tools_config(pushed))
    r = ws.tf("fetch")
    assert_ok(r)
    assert r.stdout == "" and r.stderr == ""  # nothing on success without -v

    # the cache layout (docs/design.md), checked independently
    check_cache_layout(cache_dir)
    lock = ws.data()
    want_layers = {ly["digest"] for t in lock["tools"].values()
                   for k, e in t["platforms"].items() if k in (host(), "*")
                   for ly in e["layers"]}
    assert set(cache_blobs(cache_dir)) == want_layers  # exactly the host's layers
    want_trees = {ws.key(n, key_for(pushed[n], host())) for n in pushed}
    assert set(cache_trees(cache_dir)) == want_trees

    for name, p in pushed.items():
        key = key_for(p, host())
        r = ws.tf("which", name)
        assert_ok(r)
        exe = Path(r.stdout.strip())
        assert exe == ws.tree(cache_dir, name, key) / p.path
        assert exe.read_bytes() == p.executables[key]
        assert os.access(exe, os.X_OK)
        # run: argv and the exit code pass through (a real exec)
        rr = run_toolfetch("run", "--lockfile", ws.lockfile, name, "--", "a b", "--flag", "")
        assert rr.returncode == p.exit_code, rr.stderr
        assert rr.stdout.splitlines() == [p.expect(key), "arg:a b", "arg:--flag", "arg:"]
    # the Docker tool's other files and the zip's directory came along
    idx_tree = ws.tree(cache_dir, "idx", host())
    assert (idx_tree / "share" / "readme.txt").read_text() == f"readme {host()}"


def test_second_fetch_and_hits_with_registry_stopped(make_registry: MakeRegistry,
                                                     ws: Workspace, cache_dir: Path) -> None:
    reg = make_registry()
    pushed = push_kinds(reg, "acme")
    del pushed["dock"], pushed["zip"]  # keep it quick: index, raw and tar
    ws.lock(tools_config(pushed))
    assert_ok(ws.tf("fetch"))
    before = {d: p.stat().st_ino for d, p in cache_blobs(cache_dir).items()}
    reg.stop()
    assert not ocitest.port_is_open("127.0.0.1", reg.port)
    r = ws.tf("fetch")
    assert_ok(r)
    assert {d: p.stat().st_ino for d, p in cache_blobs(cache_dir).items()} == before
    assert_ok(ws.tf("fetch", "--offline"))
    r = ws.tf("which", "idx")
    assert_ok(r)
    assert Path(r.stdout.strip()).read_bytes() == pushed["idx"].executables[host()]
    rr = run_toolfetch("run", "--lockfile", ws.lockfile, "raw", "--", "x")
    assert rr.returncode == 12 and rr.stdout.splitlines() == ["raw-*", "arg:x"]
    # a tree lost from the cache is rebuilt from its cached blob, still without a registry
    from toolfetch.cache.store import Cache
    from toolfetch.core.digest import Digest

    Cache(cache_dir).drop_tree(Digest.parse(ws.key("tar", "*")))
    assert ws.key("tar", "*") not in cache_trees(cache_dir)
    assert_ok(ws.tf("fetch", "tar"))
    assert ws.key("tar", "*") in cache_trees(cache_dir)
    # a platform not yet cached needs the registry: unreachable → 6
    r = ws.tf("fetch", "--platform", other_platform(), "idx")
    assert_error(r, 6, "127.0.0.1")
    check_cache_layout(cache_dir)


def test_offline_with_empty_cache(registry: Registry, unique_repo: str, ws: Workspace,
                                  cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    art = ocitest.oras_artifact({"t": script("t")})
    ocitest.push_artifact(registry, unique_repo, "1", art)
    ws.lock({"tools": {"t": {"ref": registry.ref(unique_repo, "1")}}})
    assert_error(ws.tf("fetch", "--offline"), 6, "offline", "tool t")
    assert_error(ws.tf("which", "--offline", "t"), 6, "offline")
    monkeypatch.setenv("TOOLFETCH_OFFLINE", "1")
    assert_error(ws.tf("fetch"), 6, "offline")
    assert cache_blobs(cache_dir) == {} and cache_trees(cache_dir) == {}
    monkeypatch.delenv("TOOLFETCH_OFFLINE")
    assert_ok(ws.tf("fetch"))
    assert_ok(ws.tf("fetch", "--offline"))


def test_corrupted_blob_and_several_failures(make_registry: MakeRegistry, tmp_path: Path,
                                             cache_dir: Path) -> None:
    reg = make_registry()
    arts = {}
    for name in ("corrupt", "gone", "good"):
        arts[name] = ocitest.oras_artifact({name: script(name) + b"#" * 64})
        ocitest.push_artifact(reg, f"acme/{name}", "1", arts[name])
    # lock first (locking reads the head of plain-file layers), then damage the registry
    ws = Workspace(tmp_path / "one")
    ws.lock({"tools": {"corrupt": {"ref": reg.ref("acme/corrupt", "1")}}})
    orders = (("corrupt", "gone", 3), ("gone", "corrupt", 4))
    multi = {}
    for first, second, _ in orders:
        names = {first: f"a-{first}", second: f"b-{second}", "good": "c-good"}
        multi[first] = w = Workspace(tmp_path / first)
        w.lock({"tools": {names[n]: {"ref": reg.ref(f"acme/{n}", "1")}
                          for n in ("corrupt", "gone", "good")}})
    bad = arts["corrupt"].layers[0]["digest"]
    gone = arts["gone"].layers[0]["digest"]
    ocitest.corrupt_blob(reg, bad)  # same size, one byte flipped, served under the old digest
    assert len(ocitest.get_blob(reg, "acme/corrupt", bad)) == arts["corrupt"].layers[0]["size"]
    ocitest.delete_blob_file(reg, gone)

    for command in (("fetch",), ("which", "corrupt")):
        r = ws.tf(*command)
        assert_error(r, 3, bad, "corrupt")
        # nothing left in the cache: no blob, no tree, nothing in tmp/
        assert cache_blobs(cache_dir) == {}
        assert cache_trees(cache_dir) == {}
        assert not list((cache_dir / "trees").rglob("*.json"))
        assert tmp_entries(cache_dir) == []
    rr = run_toolfetch("run", "--lockfile", ws.lockfile, "corrupt")
    assert_error(rr, 3, bad)

    # several failing tools: all reported, exit code of the first in lockfile order
    for first, second, code in orders:
        r = multi[first].tf("fetch")
        assert_error(r, code, f"a-{first}", f"b-{second}", bad, gone)
        assert r.stderr.count("error: ") == 2
        # the good tool was fetched all the same
        assert set(cache_trees(cache_dir)) == {multi[first].key("c-good", "*")}
    check_cache_layout(cache_dir)


def test_missing_tool_and_platform(registry: Registry, unique_repo: str,
                                   ws: Workspace) -> None:
    idx = ocitest.push_tool_index(registry, unique_repo, "1", {
        "linux/amd64": {"t": script("a")}, "darwin/arm64": {"t": script("b")}})
    ws.lock({"tools": {"t": {"ref": idx.ref, "path": "t"}, "u": {"ref": idx.ref, "path": "t"}}})
    assert_error(ws.tf("fetch", "nosuch"), 4, "'nosuch'", "t, u")
    assert_error(ws.tf("which", "nosuch"), 4, "'nosuch'", "t, u")
    r = ws.tf("fetch", "--platform", "windows/amd64", "t")
    assert_error(r, 4, "windows/amd64", "darwin/arm64, linux/amd64")
    assert_error(ws.tf("which", "--platform", "linux/arm/v7", "t"), 4, "linux/arm/v7")
    # both tools named and missing the platform: both reported
    r = ws.tf("fetch", "--platform", "windows/amd64", "u", "t")
    assert r.stderr.count("error: ") == 2 and "tool t " in r.stderr and "tool u " in r.stderr
    # none named: both skipped, each with a warning (issue 23.3)
    r = ws.tf("fetch", "--platform", "windows/amd64")
    assert_ok(r)
    assert r.stderr.count("warning: tool t is not available for windows/amd64") == 1
    assert r.stderr.count("warning: tool u is not available for windows/amd64") == 1


def test_all_platforms_and_output(registry: Registry, unique_repo: str, ws: Workspace,
                                  cache_dir: Path, tmp_path: Path) -> None:
    plats = ["linux/amd64", "linux/arm64", "darwin/arm64"]
    idx = ocitest.push_tool_index(registry, unique_repo, "1", {
        p: ocitest.targz({"bin/t": (script(p), 0o755), "lib/data": p.encode()}) for p in plats})
    raw = ocitest.oras_artifact({"r": script("r")})
    ocitest.push_artifact(registry, unique_repo, "raw", raw)
    ws.lock({"tools": {"t": {"ref": idx.ref, "path": "bin/t"},
                       "r": {"ref": registry.ref(unique_repo, "raw")}}})
    assert_ok(ws.tf("fetch", "--all-platforms"))
    assert set(cache_trees(cache_dir)) == {*(ws.key("t", p) for p in plats), ws.key("r", "*")}
    check_cache_layout(cache_dir)

    out = tmp_path / "out"
    r = ws.tf("fetch", "t", "--platform", "linux/arm64", "--output", out)
    assert_ok(r)
    tree = ws.tree(cache_dir, "t", "linux/arm64")
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == ["bin/t", "lib/data"]
    for rel in files:
        assert (out / rel).read_bytes() == (tree / rel).read_bytes()
        assert (out / rel).stat().st_ino == (tree / rel).stat().st_ino  # hardlinked
    assert (out / "bin" / "t").read_bytes() == script("linux/arm64")
    assert_error(ws.tf("fetch", "t", "r", "--output", tmp_path / "o2"), 2, "--output")
    assert_error(ws.tf("fetch", "t", "--platform", "linux/arm64", "--output", out), 8,
                 "not an empty directory")


def test_single_manifest_serves_any_platform(registry: Registry, unique_repo: str,
                                             ws: Workspace, cache_dir: Path) -> None:
    art = ocitest.oras_artifact({"any": script("any")})
    ocitest.push_artifact(registry, unique_repo, "1", art)
    ws.lock({"platforms": ["linux/amd64", "darwin/arm64"],
             "tools": {"any": {"ref": registry.ref(unique_repo, "1")}}})
    assert list(ws.data()["tools"]["any"]["platforms"]) == ["*"]
    paths = set()
    for plat in ("windows/amd64", "linux/arm64", "darwin/arm64", "linux/arm/v7"):
        r = ws.tf("which", "--platform", plat, "any", "--json")
        assert_ok(r)
        out = json.loads(r.stdout)
        assert out["platform"] == "*"
        paths.add(out["path"])
    assert paths == {str(ws.tree(cache_dir, "any", "*") / "any")}
    assert len(cache_trees(cache_dir)) == 1


def test_malformed_lockfile(ws: Workspace) -> None:
    ws.lockfile.parent.mkdir(parents=True)
    ws.lockfile.write_text(json.dumps({"version": 1, "tools": {"t": {"platforms": {
        "linux/amd64": {"ref": "x/y:1", "path": "t", "manifest": "sha256:00", "layers": []}}}}}))
    r = ws.tf("fetch")
    assert_error(r, 2, str(ws.lockfile), "$.tools.t.platforms.linux/amd64")
    r = ws.tf("which", "t", "--platform", "linux/amd64")
    assert_error(r, 2, str(ws.lockfile), "$.tools.t.platforms.linux/amd64")


def test_a_lockfile_only_the_schema_refuses_fails_the_fetch_with_2(
        registry: Registry, unique_repo: str, ws: Workspace, cache_dir: Path) -> None:
    """The schema runs beside the download; its verdict still decides the exit code, and no
    tree of a refused lockfile is made."""
    art = ocitest.oras_artifact({"any": script("any")})
    ocitest.push_artifact(registry, unique_repo, "1", art)
    ws.lock({"tools": {"any": {"ref": registry.ref(unique_repo, "1")}}})
    data = ws.data()
    data["tools"]["any"]["platforms"]["*"]["layers"][0]["unpack"] = "rar"
    data["tools"]["any"]["comment"] = "not in the schema"
    ws.lockfile.write_text(json.dumps(data))
    for command in (["fetch"], ["which", "any"], ["run", "any"]):
        r = ws.tf(*command)
        assert_error(r, 2, str(ws.lockfile), "$.tools.any")
    assert cache_trees(cache_dir) == {}


def test_a_cold_fetch_imports_requests_before_the_schema_check(
        registry: Registry, unique_repo: str, ws: Workspace, cache_dir: Path) -> None:
    """With a fresh cache the schema is checked beside the download, but only once the
    download's transport is imported: both imports hold the GIL, and jsonschema's first would
    delay the first byte (docs/performance.md)."""
    art = ocitest.oras_artifact({"any": script("any")})
    ocitest.push_artifact(registry, unique_repo, "1", art)
    ws.lock({"tools": {"any": {"ref": registry.ref(unique_repo, "1")}}})
    if cache_dir.exists():  # a fresh cache: no index, no verdict
        import shutil

        shutil.rmtree(cache_dir)
    p, heavy = probe_heavy_imports("fetch", "--lockfile", ws.lockfile)
    assert p.returncode == 0, p.stderr
    assert list(dict.fromkeys(m.split(".")[0] for m in heavy)) == ["requests", "jsonschema"]


def test_concurrent_fetches_share_the_cache(registry: Registry, unique_repo: str,
                                            ws: Workspace, cache_dir: Path) -> None:
    import subprocess
    import sys

    big = os.urandom(1 << 20)
    idx = ocitest.push_tool_index(registry, unique_repo, "1", {
        host(): ocitest.targz({"bin/t": (script("t"), 0o755), "data": big})})
    ws.lock({"tools": {"t": {"ref": idx.ref, "path": "bin/t"}}})
    procs = [subprocess.Popen([sys.executable, "-m", "toolfetch", "fetch", "--lockfile",
                               str(ws.lockfile)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    assert set(cache_trees(cache_dir)) == {ws.key("t", host())}
    check_cache_layout(cache_dir)
    tree = ws.tree(cache_dir, "t", host())
    assert (tree / "data").read_bytes() == big


def test_every_unpack_format_and_symlinks(registry: Registry, unique_repo: str,
                                          ws: Workspace, cache_dir: Path,
                                          tmp_path: Path) -> None:
    zstandard = pytest.importorskip("zstandard")
    exe = script("fmt")
    members: dict[str, ocitest.TarValue] = {
        "bin/": (b"", 0o755), "bin/t": (exe, 0o755), "bin/alias": ocitest.Symlink("t"),
        "doc.txt": (b"doc", 0o600)}
    tar = ocitest.tarbytes(members)
    layers = {
        "tar": ("t.tar", tar, ocitest.OCI_LAYER_TAR),
        "tar+gzip": ("t.tar.gz", ocitest.gzipbytes(tar), ocitest.OCI_LAYER_TAR_GZIP),
        "tar+zstd": ("t.tar.zst", zstandard.ZstdCompressor().compress(tar),
                     ocitest.OCI_LAYER_TAR_ZSTD),
        "zip": ("t.zip", ocitest.zipbytes({"bin/t": (exe, 0o755), "doc.txt": b"doc"}),
                ocitest.ZIP),
    }
    tools = {}
    for fmt, (title, data, mt) in layers.items():
        tag = fmt.replace("+", "-")
        art = ocitest.oras_artifact({title: data}, layer_media_type=mt)
        ocitest.push_artifact(registry, unique_repo, tag, art)
        tools[tag] = {"ref": registry.ref(unique_repo, tag), "path": "bin/t"}
    ws.lock({"tools": tools})
    assert [t["platforms"]["*"]["layers"][0]["unpack"]
            for t in ws.data()["tools"].values()] == sorted(layers)
    assert_ok(ws.tf("fetch"))
    check_cache_layout(cache_dir)
    for tag in tools:
        r = ws.tf("which", tag)
        assert_ok(r)
        path = Path(r.stdout.strip())
        assert path.read_bytes() == exe and os.access(path, os.X_OK)
        doc = path.parent.parent / "doc.txt"
        assert doc.read_bytes() == b"doc"
        assert doc.stat().st_mode & 0o777 == 0o444  # only the executable bit is kept
        if tag != "zip":
            assert os.readlink(path.parent / "alias") == "t"
    out = tmp_path / "out"
    assert_ok(ws.tf("fetch", "tar-gzip", "--output", out))
    assert os.readlink(out / "bin" / "alias") == "t"
    assert (out / "bin" / "alias").read_bytes() == exe


def test_wrong_path_fails_fetch_which_and_run_with_4(registry: Registry, unique_repo: str,
                                                     ws: Workspace, cache_dir: Path) -> None:
    art = ocitest.oras_artifact({"t.tar.gz": ocitest.targz({
        "bin/tool": (script("t"), 0o755), "bin/tool-helper": (script("h"), 0o755),
        "share/doc.txt": b"doc"})})
    ocitest.push_artifact(registry, unique_repo, "1", art)
    ws.lock({"tools": {"t": {"ref": registry.ref(unique_repo, "1"), "path": "bin/tol"}}})
    for _ in range(2):  # the first fetch unpacks, the second finds the tree cached: same error
        r = ws.tf("fetch")
        assert_error(r, 4, "tool t (*)", "'bin/tol'", "bin/tool", "tools.yaml")
        assert "share/doc.txt" not in r.stderr  # closest matches, not a listing
    assert len(cache_trees(cache_dir)) == 1  # the tree is right; only the path is wrong
    assert_error(ws.tf("which", "t"), 4, "'bin/tol'", "bin/tool")
    assert_error(run_toolfetch("run", "--lockfile", ws.lockfile, "t"), 4, "'bin/tol'")


def test_unsafe_archive_exit_3_leaves_no_tree(registry: Registry, unique_repo: str,
                                              ws: Workspace, cache_dir: Path) -> None:
    evil = ocitest.targz({"bin/t": (script("t"), 0o755), "../escape": b"x"})
    art = ocitest.oras_artifact({"t.tar.gz": evil})
    ocitest.push_artifact(registry, unique_repo, "1", art)
    ws.lock({"tools": {"t": {"ref": registry.ref(unique_repo, "1"), "path": "bin/t"}}})
    r = ws.tf("fetch")
    assert_error(r, 3, "../escape")
    assert cache_trees(cache_dir) == {}
    assert not list((cache_dir / "trees").rglob("*.json"))
    assert tmp_entries(cache_dir) == []
    assert not (cache_dir / "trees" / "escape").exists()
    assert not list(cache_dir.rglob("escape"))
    # the blob itself was verified: it may stay, named by its digest
    assert set(cache_blobs(cache_dir)) <= {art.layers[0]["digest"]}
    check_cache_layout(cache_dir)


def _shared_blob_tools(make_registry: MakeRegistry, ws: Workspace) -> tuple[
        Registry, Registry, bytes, str]:
    """Tools a (registry A) and b (registry B) lock the same artifact, so one tree and one
    blob; c (registry A) shares that blob in a tree of its own. Locked, not yet damaged."""
    reg_a, reg_b = make_registry(), make_registry()
    shared = script("shared") + b"#" * 64
    art = ocitest.oras_artifact({"t": shared})
    for reg in (reg_a, reg_b):
        ocitest.push_artifact(reg, "acme/t", "1", art)
    ocitest.push_artifact(reg_a, "acme/u", "1",
                          ocitest.oras_artifact({"t": shared, "extra": b"extra"}))
    ws.lock({"tools": {"a": {"ref": reg_a.ref("acme/t", "1"), "path": "t"},
                       "b": {"ref": reg_b.ref("acme/t", "1"), "path": "t"},
                       "c": {"ref": reg_a.ref("acme/u", "1"), "path": "t"}}})
    assert ws.key("a", "*") == ws.key("b", "*") != ws.key("c", "*")
    return reg_a, reg_b, shared, art.layers[0]["digest"]


def _fresh_cache(cache_dir: Path) -> None:
    import shutil

    if cache_dir.exists():
        for p in cache_dir.rglob("*"):  # trees are read-only
            if p.is_dir() and not p.is_symlink():
                p.chmod(0o755)
        shutil.rmtree(cache_dir)


@pytest.mark.parametrize("broken", ["A", "B"])
def test_a_shared_blob_comes_from_any_ref_that_pins_it(
        make_registry: MakeRegistry, ws: Workspace, cache_dir: Path, broken: str) -> None:
    """A blob gone from one tool's repository is fetched from another requested tool's that
    pins the same digest: the outcome does not depend on the order of the tools."""
    import itertools

    reg_a, reg_b, shared, digest = _shared_blob_tools(make_registry, ws)
    ocitest.delete_blob_file(reg_a if broken == "A" else reg_b, digest)
    stderrs = set()
    for order in [*itertools.permutations("abc"), ()]:
        _fresh_cache(cache_dir)
        r = ws.tf("fetch", *order)
        assert_ok(r)
        stderrs.add(r.stderr)
        for name in "abc":
            r = ws.tf("which", "--offline", name)
            assert_ok(r)
            assert Path(r.stdout.strip()).read_bytes() == shared
        check_cache_layout(cache_dir)
    assert len(stderrs) == 1, stderrs
    # alone, a tool whose own repository lacks the blob has nowhere else to get it from
    _fresh_cache(cache_dir)
    alone = "b" if broken == "B" else "a"
    r = ws.tf("fetch", alone)
    assert_error(r, 4, f"tool {alone} (*)", digest)
    assert r.stderr.count("error: ") == 1


def test_a_shared_blob_failing_everywhere_fails_every_tool(
        make_registry: MakeRegistry, ws: Workspace, cache_dir: Path) -> None:
    """Each tool is reported with its own repository's failure, whatever the order."""
    import itertools

    reg_a, reg_b, _, digest = _shared_blob_tools(make_registry, ws)
    ocitest.corrupt_blob(reg_a, digest)  # a and c: integrity (3); b: not found (4)
    ocitest.delete_blob_file(reg_b, digest)
    stderrs = set()
    for order in [*itertools.permutations("abc"), ()]:
        _fresh_cache(cache_dir)
        r = ws.tf("fetch", *order)
        assert_error(r, 3, "tool a (*)", "tool b (*)", "tool c (*)", digest)
        assert r.stderr.count("error: ") == 3
        assert cache_trees(cache_dir) == {}
        stderrs.add(r.stderr)
    assert len(stderrs) == 1, stderrs
    err = {line.split(":", 2)[1].strip(): line for line in next(iter(stderrs)).splitlines()
           if line.startswith("error: ")}
    assert set(err) == {"tool a (*)", "tool b (*)", "tool c (*)"}
    assert "no source served verified content" in err["tool a (*)"]
    assert "not found" in err["tool b (*)"] and "verified" not in err["tool b (*)"]


def test_the_order_of_tool_arguments_does_not_matter(make_registry: MakeRegistry,
                                                     ws: Workspace, cache_dir: Path) -> None:
    reg = make_registry()
    arts = {}
    for name in ("corrupt", "gone"):
        arts[name] = ocitest.oras_artifact({name: script(name) + b"#" * 64})
        ocitest.push_artifact(reg, f"acme/{name}", "1", arts[name])
    ws.lock({"tools": {n: {"ref": reg.ref(f"acme/{n}", "1")} for n in arts}})
    ocitest.corrupt_blob(reg, arts["corrupt"].layers[0]["digest"])
    ocitest.delete_blob_file(reg, arts["gone"].layers[0]["digest"])
    runs = [ws.tf("fetch", *args) for args in (("gone", "corrupt"), ("corrupt", "gone"),
                                               ("gone", "corrupt", "gone"))]
    for r in runs:
        assert_error(r, 3, "tool corrupt (*)", "tool gone (*)")
        assert r.stderr.count("error: ") == 2
    assert len({r.stderr for r in runs}) == 1
    # unknown tools too: the same first error and message whatever the order
    r1, r2 = ws.tf("fetch", "nosuch2", "nosuch1"), ws.tf("fetch", "nosuch1", "nosuch2")
    assert_error(r1, 4, "'nosuch1'", "'nosuch2'")
    assert r1.stderr == r2.stderr
