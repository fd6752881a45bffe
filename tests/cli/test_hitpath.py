"""The hand-rolled hit path of ``which``/``run`` (toolfetch.cli.hitpath): it serves exactly what the
full CLI would print, bails out to it on everything else, and imports almost nothing."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tf import probe_heavy_imports, tree_of

from toolfetch.cli import hitpath
from toolfetch.cli.app import full_main
from toolfetch.core import host
from toolfetch.core.digest import Digest

HOST = host.host_key()
MANIFEST = Digest.of_bytes(b"hit path manifest")
LAYER = Digest.of_bytes(b"layer")


def _entry(manifest: Digest = MANIFEST, path: str = "bin/t") -> dict[str, object]:
    return {"ref": "example.com/t:1", "path": path, "manifest": str(manifest),
            "layers": [{"digest": str(LAYER), "size": 5, "mediaType": "application/x-tar",
                        "unpack": "tar"}]}


def _write_lockfile(path: Path, platforms: dict[str, dict[str, object]]) -> Path:
    path.write_text(json.dumps({"version": 1, "tools": {"t": {
        "ref": "example.com/t:1", "path": "bin/t", "platforms": platforms}}}, indent=2) + "\n")
    return path


def _cache_tree(cache: Path, exe: str = "bin/t") -> Path:
    tree = tree_of(cache, _entry())  # keyed by the recipe of the entry's layers
    h = tree.name
    (tree / exe).parent.mkdir(parents=True)
    (tree / exe).write_text("#!/bin/sh\necho hit \"$@\"\n")
    (tree / exe).chmod(0o755)
    tree.with_name(h + ".json").write_text("{}")
    return tree


def _prime(lockfile: Path, *extra: str) -> None:
    """One full-path run: it writes the lockfile index the hit path reads (its result, an
    error for a lockfile it refuses, does not matter here)."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        full_main(["which", "--lockfile", str(lockfile), *extra, "t"])


@pytest.fixture
def hit(tmp_path: Path, cache_dir: Path) -> tuple[Path, Path]:
    lockfile = _write_lockfile(tmp_path / "tools.lock.json", {HOST: _entry()})
    tree = _cache_tree(cache_dir)
    _prime(lockfile)
    return lockfile, tree


@pytest.fixture(autouse=True)
def _no_stale_log_handlers() -> Iterator[None]:
    """full_main() installs a handler on pytest's captured stderr: take it away again."""
    logger = logging.getLogger("toolfetch")
    before = list(logger.handlers)
    yield
    for handler in [h for h in logger.handlers if h not in before]:
        logger.removeHandler(handler)


def _both(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    """(hit path stdout, full CLI stdout) of the same argv; the hit path must serve it once
    the full path has run (and written the lockfile index)."""
    assert full_main(argv) == 0
    full = capsys.readouterr().out
    assert hitpath.try_hit(argv) == 0
    return capsys.readouterr().out, full


@pytest.mark.parametrize("extra", [
    [], ["--json"], ["--platform", HOST], ["--offline"], ["-q"], ["--no-progress"],
])
def test_which_prints_what_the_full_cli_prints(
    hit: tuple[Path, Path], extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    lockfile, tree = hit
    fast, full = _both(["which", "--lockfile", str(lockfile), *extra, "t"], capsys)
    assert fast == full
    if "--json" in extra:
        assert json.loads(fast) == {"tool": "t", "platform": HOST, "path": str(tree / "bin/t"),
                                    "tree": str(tree)}
    else:
        assert fast == f"{tree / 'bin/t'}\n"


def test_global_options_anywhere_and_equals_spellings(
    hit: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lockfile, _ = hit
    other = tmp_path / "other-cache"
    tree = _cache_tree(other)
    for argv in (["--cache-dir", str(other), "which", f"--lockfile={lockfile}", "t"],
                 ["which", f"--cache-dir={other}", "--lockfile", str(lockfile), "t"]):
        fast, full = _both(argv, capsys)
        assert fast == full == f"{tree / 'bin/t'}\n"


def test_a_single_manifest_tool_serves_every_platform(
    tmp_path: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lockfile = _write_lockfile(tmp_path / "tools.lock.json", {"*": _entry()})
    tree = _cache_tree(cache_dir)
    fast, full = _both(["which", "--json", "--lockfile", str(lockfile), "t"], capsys)
    assert fast == full
    assert json.loads(fast)["platform"] == "*"
    assert json.loads(fast)["path"] == str(tree / "bin/t")


def test_the_hit_touches_the_record(hit: tuple[Path, Path],
                                    capsys: pytest.CaptureFixture[str]) -> None:
    lockfile, tree = hit
    record = tree.with_name(tree.name + ".json")
    os.utime(record, (1_000_000, 1_000_000))
    assert hitpath.try_hit(["which", "--lockfile", str(lockfile), "t"]) == 0
    assert record.stat().st_mtime > 1_000_000


@pytest.mark.parametrize("argv", [
    ["which", "-v", "--lockfile", "{lock}", "t"],          # verbose wants the full path's logs
    ["--verbose", "which", "--lockfile", "{lock}", "t"],
    ["which", "--lockfile", "{lock}"],                     # no TOOL
    ["which", "--lockfile", "{lock}", "t", "u"],           # two tools
    ["which", "--lock", "{lock}", "t"],                    # abbreviations: argparse's job
    ["which", "--lockfile", "{lock}", "--lockfile", "{lock}", "t"],
    ["which", "--lockfile=", "t"],
    ["which", "--lockfile", "{lock}", "--", "t"],
    ["run", "--platform", HOST, "--lockfile", "{lock}", "t"],  # run has no --platform
    ["run", "--lockfile", "{lock}", "--json", "t"],
    ["fetch", "--lockfile", "{lock}", "t"],                # the index is not schema-checked
    ["which", "--lockfile", "-x", "t"],                    # a value that looks like an option
    ["--cache-dir"],
    [],
    ["which", "--lockfile", "{lock}", "nope"],             # unknown tool: the full path says so
    ["which", "--platform", "Linux/AMD64", "--lockfile", "{lock}", "t"],  # spelling to normalise
])
def test_everything_else_is_left_to_the_full_cli(hit: tuple[Path, Path],
                                                 argv: list[str]) -> None:
    lockfile, _ = hit
    assert hitpath.try_hit([a.replace("{lock}", str(lockfile)) for a in argv]) is None


@pytest.mark.parametrize("case", [
    "no-record", "no-exe", "bad-digest", "bad-layer", "absolute-path", "dotdot-path", "dot-path",
    "double-slash", "version-2", "not-json", "platforms-list", "variant-only", "missing-file",
    "changed", "no-index", "other-version",
])
def test_an_uncertain_hit_is_left_to_the_full_cli(case: str, tmp_path: Path,
                                                  cache_dir: Path) -> None:
    lockfile = tmp_path / "tools.lock.json"
    tree = _cache_tree(cache_dir)
    entry = _entry()
    platforms: object = {HOST: entry}
    version = 1
    if case == "bad-digest":
        entry["manifest"] = "sha256:../../../../etc"
    elif case == "bad-layer":  # the full path refuses it (exit 2), so the hit path must not serve
        entry["layers"][0]["size"] = "5"  # type: ignore[index]
    elif case in ("absolute-path", "dotdot-path", "dot-path", "double-slash"):
        entry["path"] = {"absolute-path": str(tree / "bin/t"), "dotdot-path": "bin/../bin/t",
                         "dot-path": "./bin/t", "double-slash": "bin//t"}[case]
    elif case == "version-2":
        version = 2
    elif case == "platforms-list":
        platforms = [entry]
    elif case == "variant-only":  # only a variant spelling is locked: matching is needed
        platforms = {HOST + "/v8": entry, "*": entry}
    lockfile.write_text(json.dumps({"version": version, "tools": {"t": {"platforms": platforms}}}))
    if case == "not-json":
        lockfile.write_text("{ not json")
    if case != "no-index":
        _prime(lockfile)  # the full path writes an index where it could read the lockfile
    if case == "no-record":
        tree.with_name(tree.name + ".json").unlink()
    elif case == "no-exe":
        (tree / "bin/t").unlink()
    elif case == "missing-file":
        lockfile.unlink()
    elif case == "changed":  # any change to the lockfile makes its index stale
        lockfile.write_text(lockfile.read_text() + " ")
    elif case == "other-version":
        (index,) = (cache_dir / "lockfiles").iterdir()
        index.write_text(index.read_text().replace("toolfetch=", "toolfetch=9", 1))
    assert hitpath.try_hit(["which", "--lockfile", str(lockfile), "t"]) is None


@pytest.mark.parametrize("argv", [
    ["which", "--lockfile", "{lock}", "t", "--offline"],   # options after TOOL, as argparse
    ["which", "t", "--lockfile", "{lock}", "--json"],
    ["which", "--offline", "t", "--lockfile={lock}", "-q"],
    ["-q", "which", "--platform", HOST, "t", "--lockfile", "{lock}", "--no-progress"],
])
def test_every_spelling_a_build_passes_is_served(hit: tuple[Path, Path], argv: list[str],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    lockfile, _ = hit
    fast, full = _both([a.replace("{lock}", str(lockfile)) for a in argv], capsys)
    assert fast == full


@pytest.fixture
def fetched(tmp_path: Path, cache_dir: Path) -> tuple[Path, Path]:
    """A lockfile whose tools are cached and whose full `fetch` has run (it validated the
    lockfile against its schema and wrote the index)."""
    lockfile = _write_lockfile(tmp_path / "tools.lock.json", {HOST: _entry()})
    tree = _cache_tree(cache_dir)
    assert full_main(["fetch", "--lockfile", str(lockfile)]) == 0
    return lockfile, tree


@pytest.mark.parametrize("extra", [
    [], ["t"], ["t", "t"], ["--all-platforms"], ["--platform", HOST], ["--offline"],
    ["--jobs", "8", "-q", "--no-progress"], ["--json"], ["--json", "--all-platforms"],
])
def test_fetch_of_cached_tools_is_served(fetched: tuple[Path, Path], extra: list[str],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    lockfile, tree = fetched
    capsys.readouterr()
    record = tree.with_name(tree.name + ".json")
    os.utime(record, (1_000_000, 1_000_000))
    fast, full = _both(["fetch", "--lockfile", str(lockfile), *extra], capsys)
    assert fast == full
    assert record.stat().st_mtime > 1_000_000  # both touched the tool's record
    if "--json" in extra:
        assert json.loads(fast)[0]["path"] == str(tree / "bin/t")


@pytest.mark.parametrize("extra", [
    ["-v"], ["--output", "out", "t"], ["nope"], ["--platform", "linux/s390x", "t"],
    ["--jobs", "x"], ["--platform", HOST, "--all-platforms"], ["t", "--offline", "t"],
])
def test_fetch_hits_left_to_the_full_cli(fetched: tuple[Path, Path], extra: list[str]) -> None:
    lockfile, _ = fetched
    assert hitpath.try_hit(["fetch", "--lockfile", str(lockfile), *extra]) is None


def test_fetch_is_served_only_after_the_schema_passed(tmp_path: Path, cache_dir: Path,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    lockfile = _write_lockfile(tmp_path / "tools.lock.json", {HOST: _entry()})
    tree = _cache_tree(cache_dir)
    _prime(lockfile)  # which: hand checks only, as the full `which` does
    argv = ["fetch", "--lockfile", str(lockfile)]
    assert hitpath.try_hit(argv) is None
    assert full_main(argv) == 0  # validates, writes a validated index
    assert hitpath.try_hit(argv) == 0
    (tree / "bin/t").unlink()  # the index never outlives what is on disk
    assert hitpath.try_hit(argv) is None
    # a lockfile only the schema refuses is refused by the full path, so never served
    data = json.loads(lockfile.read_text())
    data["comment"] = "not in the schema"
    lockfile.write_text(json.dumps(data))
    _cache_tree(cache_dir / "again")
    assert full_main(["--cache-dir", str(cache_dir / "again"), *argv]) == 2
    assert hitpath.try_hit(["--cache-dir", str(cache_dir / "again"), *argv]) is None


def test_run_execs_with_argv_passed_through(hit: tuple[Path, Path], tmp_path: Path) -> None:
    lockfile, tree = hit
    code = ("import sys, os, json\n"
            "from toolfetch import cli\n"
            "def fake(path, args):\n"
            "    print('EXEC ' + json.dumps([path, args]))\n"
            "    print('MODULES ' + json.dumps(sorted(sys.modules)))\n"
            "    sys.stdout.flush(); os._exit(0)\n"
            "os.execv = fake\n"
            "sys.exit(cli.main(json.loads(sys.argv[1])))\n")
    for args, passed in ((["--", "-v", "a b"], ["-v", "a b"]), (["x", "--", "y"], ["x", "--", "y"]),
                         ([], [])):
        p = subprocess.run([sys.executable, "-c", code,
                            json.dumps(["run", "--lockfile", str(lockfile), "t", *args])],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        lines = dict(line.split(" ", 1) for line in p.stdout.splitlines())
        exe = str(tree / "bin/t")
        assert json.loads(lines["EXEC"]) == [exe, [exe, *passed]]
        modules = set(json.loads(lines["MODULES"]))
        # the hit path proper: not even argparse, logging or pathlib were imported
        assert not modules & {"argparse", "logging", "pathlib", "typing", "dataclasses"}


MODULES_PROBE = ("import sys\n"
                 "from toolfetch import cli\n"
                 "rc = cli.main(sys.argv[1:])\n"
                 "print('MODULES ' + ' '.join(sorted(m for m in sys.modules "
                 "if m.startswith('toolfetch') or m in ('argparse', 'logging', 'pathlib', "
                 "'json', 're', 'typing', 'dataclasses'))))\n"
                 "sys.exit(rc)\n")
HIT_MODULES = ["toolfetch", "toolfetch.cli", "toolfetch.cli.hitpath", "toolfetch.core",
               "toolfetch.core.host", "toolfetch.core.lockindex", "toolfetch.core.treekey",
               "toolfetch.core.version"]


def test_which_hit_imports_only_the_hit_path(hit: tuple[Path, Path]) -> None:
    lockfile, tree = hit
    p = subprocess.run([sys.executable, "-c", MODULES_PROBE, "which", "--lockfile",
                        str(lockfile), "t"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    out, modules = p.stdout.splitlines()
    assert out == str(tree / "bin/t")
    # nothing but the hit path: no argparse, logging or pathlib, and no json (nor re)
    assert modules.split()[1:] == HIT_MODULES
    # a miss goes the full way (argparse, validation, fetch): offline and not cached -> 6
    tree.with_name(tree.name + ".json").unlink()
    p = subprocess.run([sys.executable, "-c", MODULES_PROBE, "which", "--offline",
                        "--lockfile", str(lockfile), "t"], capture_output=True, text=True,
                       timeout=60)
    assert "argparse" in p.stdout
    assert p.returncode == 6, p.stderr


def test_fetch_hit_imports_only_the_hit_path(fetched: tuple[Path, Path]) -> None:
    lockfile, _ = fetched
    for extra in ([], ["--offline", "--all-platforms", "--jobs", "4"]):
        p = subprocess.run([sys.executable, "-c", MODULES_PROBE, "fetch", "--lockfile",
                            str(lockfile), *extra], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert p.stdout.split()[1:] == HIT_MODULES


def _other_entry(salt: str, path: str) -> dict[str, object]:
    """An entry with a tree of its own (another layer), cached by :func:`_cache_entry`."""
    entry = _entry(path=path)
    entry["layers"] = [{"digest": str(Digest.of_bytes(salt.encode())), "size": 5,
                        "mediaType": "application/x-tar", "unpack": "tar"}]
    return entry


def _cache_entry(cache: Path, entry: dict[str, object]) -> Path:
    tree = tree_of(cache, entry)
    exe = tree / str(entry["path"])
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    tree.with_name(tree.name + ".json").write_text("{}")
    return tree


def _evict(tree: Path) -> None:
    """As gc evicts a tree: the record first, then the tree."""
    import shutil

    tree.with_name(tree.name + ".json").unlink()
    shutil.rmtree(tree)


@pytest.mark.parametrize(("name", "path"), [
    ("u\n", "bin/u"),      # the schema's `$` lets a trailing newline through
    ("u", "bin/\tu"),      # a tab in a file name is legal everywhere
    ("u", "bin/u\n"),
    ("u", "bin/u\r"),      # text mode would read it as a line break
])
def test_fetch_never_vouches_for_a_tool_the_index_cannot_hold(
        name: str, path: str, tmp_path: Path, cache_dir: Path) -> None:
    """The index leaves out what it cannot write on a line; a whole-lockfile `fetch` must then
    go to the full path, not say everything is cached while that tool's tree is gone."""
    lockfile = tmp_path / "tools.lock.json"
    weird = _other_entry("weird", path)
    lockfile.write_text(json.dumps({"version": 1, "tools": {
        "t": {"platforms": {HOST: _entry()}}, name: {"platforms": {HOST: weird}}}}))
    _cache_tree(cache_dir)
    weird_tree = _cache_entry(cache_dir, weird)
    argv = ["fetch", "--lockfile", str(lockfile)]
    assert full_main(argv) == 0  # validated, index written
    assert hitpath.try_hit(["which", "--lockfile", str(lockfile), "t"]) == 0  # t still hits
    _evict(weird_tree)
    for extra in ([], ["--all-platforms"], ["--offline"]):
        assert hitpath.try_hit([*argv, *extra]) is None
    # end to end: the full path runs and says the tree is missing (offline: exit 6)
    p, _ = probe_heavy_imports(*argv, "--offline")
    assert p.returncode == 6, p.stderr
    assert name.strip() in p.stderr


def test_a_tool_with_an_entry_the_index_cannot_hold_is_left_to_the_full_path(
        tmp_path: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Leaving out only the unwritable entry would leave the index with a tool whose own
    entry it lacks: the hit path must not serve that tool at all."""
    lockfile = tmp_path / "tools.lock.json"
    own = _other_entry("own", "bin/\tt")
    other = "linux/s390x" if HOST != "linux/s390x" else "linux/amd64"
    lockfile.write_text(json.dumps({"version": 1, "tools": {"t": {"platforms": {
        HOST: own, other: _entry()}}}}))
    _cache_tree(cache_dir)
    own_tree = _cache_entry(cache_dir, own)
    argv = ["which", "--lockfile", str(lockfile), "t"]
    assert full_main(argv) == 0
    assert capsys.readouterr().out == f"{own_tree / str(own['path'])}\n"
    assert hitpath.try_hit(argv) is None
    assert hitpath.try_hit(["fetch", "--all-platforms", *argv[1:]]) is None


def test_fetch_of_many_tools_and_platforms_stays_on_the_hit_path(
        tmp_path: Path, cache_dir: Path) -> None:
    """The completeness check costs the ordinary lockfile nothing: no heavy import, exit 0;
    and a tool evicted since is noticed."""
    lockfile = tmp_path / "tools.lock.json"
    other = "linux/s390x" if HOST != "linux/s390x" else "linux/amd64"
    entries = {"t": {HOST: _entry(), other: _other_entry("t-other", "bin/t")},
               "u": {HOST: _other_entry("u", "bin/u")}, "v": {"*": _other_entry("v", "v")}}
    lockfile.write_text(json.dumps({"version": 1, "tools": {
        n: {"platforms": ps} for n, ps in entries.items()}}))
    _cache_tree(cache_dir)
    trees = [_cache_entry(cache_dir, e) for ps in entries.values() for k, e in ps.items()
             if e is not entries["t"][HOST]]
    argv = ["fetch", "--lockfile", str(lockfile)]
    assert full_main([*argv, "--all-platforms"]) == 0
    for extra in ([], ["--all-platforms"], ["u", "v"]):
        p, heavy = probe_heavy_imports(*argv, *extra)
        assert p.returncode == 0, p.stderr
        assert heavy == []
        assert hitpath.try_hit([*argv, *extra]) == 0
    _evict(trees[0])  # t's other platform: only --all-platforms needs it
    assert hitpath.try_hit(argv) == 0
    assert hitpath.try_hit([*argv, "--all-platforms"]) is None


def test_host_key_cache_root_and_repo_root(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    monkeypatch.setattr(host, "machine", lambda: "aarch64")
    monkeypatch.setattr(host.sys, "platform", "darwin")
    assert host.host_key() == "darwin/arm64"
    monkeypatch.setattr(host, "machine", lambda: "armv7l")
    monkeypatch.setattr(host.sys, "platform", "linux")
    assert host.host_key() == "linux/arm/v7"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TOOLFETCH_CACHE_DIR", "rel/../c")
    assert host.cache_root() == str(tmp_path / "c")
    assert host.cache_root("~/x") == str(Path.home() / "x")
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    (tmp_path / "repo" / "a" / "b").mkdir(parents=True)
    assert host.repo_root(str(tmp_path / "repo" / "a" / "b")) == str(tmp_path / "repo")
    assert host.repo_root(str(tmp_path)) == str(tmp_path)


SCHEMA_PROBE = ("import sys\n"
                "from toolfetch import cli\n"
                "rc = cli.main(sys.argv[1:])\n"
                "print('JSONSCHEMA', 'jsonschema' in sys.modules)\n"
                "sys.exit(rc)\n")


def _schema_imported(*argv: str) -> bool:
    p = subprocess.run([sys.executable, "-c", SCHEMA_PROBE, *argv], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout.splitlines()[-1] == "JSONSCHEMA True"


def test_a_fresh_checkout_of_a_validated_lockfile_skips_the_schema(
        fetched: tuple[Path, Path], tmp_path: Path, cache_dir: Path) -> None:
    """The verdict is kept by content: a new clone (another path, inode and mtime) with the
    same cache does not import jsonschema; different bytes are validated again."""
    lockfile, _ = fetched
    clone = tmp_path / "clone" / "tools.lock.json"
    clone.parent.mkdir()
    clone.write_bytes(lockfile.read_bytes())
    assert _schema_imported("fetch", "--lockfile", str(clone)) is False
    verdicts = list((cache_dir / "lockfiles").glob("valid-*"))
    assert len(verdicts) == 1 and verdicts[0].stat().st_size == 0
    # the clone now has its own stat index: the next fetch is a hit
    assert hitpath.try_hit(["fetch", "--lockfile", str(clone)]) == 0
    # same tools, other bytes (reformatted): the schema runs again, and its verdict is kept
    clone.write_text(json.dumps(json.loads(clone.read_text())))
    assert _schema_imported("fetch", "--lockfile", str(clone)) is True
    assert len(list((cache_dir / "lockfiles").glob("valid-*"))) == 2


def test_a_lockfile_the_schema_refuses_gets_no_verdict(tmp_path: Path,
                                                       cache_dir: Path) -> None:
    lockfile = _write_lockfile(tmp_path / "tools.lock.json", {HOST: _entry()})
    _cache_tree(cache_dir)
    data = json.loads(lockfile.read_text())
    data["comment"] = "not in the schema"
    lockfile.write_text(json.dumps(data))
    assert full_main(["fetch", "--lockfile", str(lockfile)]) == 2
    assert list((cache_dir / "lockfiles").glob("valid-*")) == []
    assert full_main(["fetch", "--lockfile", str(lockfile)]) == 2  # and stays refused
