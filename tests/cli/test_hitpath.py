"""The hand-rolled hit path of ``which``/``run`` (toolfetch.hitpath): it serves exactly what the
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
from tf import tree_of

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


@pytest.fixture
def hit(tmp_path: Path, cache_dir: Path) -> tuple[Path, Path]:
    lockfile = _write_lockfile(tmp_path / "tools.lock.json", {HOST: _entry()})
    return lockfile, _cache_tree(cache_dir)


@pytest.fixture(autouse=True)
def _no_stale_log_handlers() -> Iterator[None]:
    """full_main() installs a handler on pytest's captured stderr: take it away again."""
    logger = logging.getLogger("toolfetch")
    before = list(logger.handlers)
    yield
    for handler in [h for h in logger.handlers if h not in before]:
        logger.removeHandler(handler)


def _both(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    """(hit path stdout, full CLI stdout) of the same argv; the hit path must serve it."""
    assert hitpath.try_hit(argv) == 0
    fast = capsys.readouterr().out
    assert full_main(argv) == 0
    return fast, capsys.readouterr().out


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
    ["which", "--lockfile", "{lock}", "t", "--json"],      # options after TOOL: argparse's job
    ["which", "--lockfile", "{lock}"],                     # no TOOL
    ["which", "--lockfile", "{lock}", "t", "u"],           # two tools
    ["which", "--lock", "{lock}", "t"],                    # abbreviations: argparse's job
    ["which", "--lockfile", "{lock}", "--lockfile", "{lock}", "t"],
    ["which", "--lockfile=", "t"],
    ["which", "--lockfile", "{lock}", "--", "t"],
    ["run", "--platform", HOST, "--lockfile", "{lock}", "t"],  # run has no --platform
    ["run", "--lockfile", "{lock}", "--json", "t"],
    ["fetch", "--lockfile", "{lock}", "t"],
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
])
def test_an_uncertain_hit_is_left_to_the_full_cli(case: str, tmp_path: Path,
                                                  cache_dir: Path) -> None:
    lockfile = tmp_path / "tools.lock.json"
    tree = _cache_tree(cache_dir)
    entry = _entry()
    platforms: object = {HOST: entry}
    version = 1
    if case == "no-record":
        tree.with_name(tree.name + ".json").unlink()
    elif case == "no-exe":
        (tree / "bin/t").unlink()
    elif case == "bad-digest":
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
    if case == "missing-file":
        lockfile.unlink()
    assert hitpath.try_hit(["which", "--lockfile", str(lockfile), "t"]) is None


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


def test_which_hit_imports_only_the_hit_path(hit: tuple[Path, Path]) -> None:
    lockfile, tree = hit
    code = ("import sys, json\n"
            "from toolfetch import cli\n"
            "rc = cli.main(json.loads(sys.argv[1]))\n"
            "print('MODULES ' + json.dumps(sorted(m for m in sys.modules "
            "if m.startswith('toolfetch') or m in ('argparse', 'logging', 'pathlib'))))\n"
            "sys.exit(rc)\n")
    p = subprocess.run([sys.executable, "-c", code,
                        json.dumps(["which", "--lockfile", str(lockfile), "t"])],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    out, modules = p.stdout.splitlines()
    assert out == str(tree / "bin/t")
    assert json.loads(modules.split(" ", 1)[1]) == [
        "toolfetch", "toolfetch.cli", "toolfetch.cli.hitpath", "toolfetch.core",
        "toolfetch.core.host", "toolfetch.core.treekey"]
    # a miss goes the full way (argparse, validation, fetch): offline and not cached -> 6
    tree.with_name(tree.name + ".json").unlink()
    p = subprocess.run([sys.executable, "-c", code,
                        json.dumps(["which", "--offline", "--lockfile", str(lockfile), "t"])],
                       capture_output=True, text=True, timeout=60)
    assert "argparse" in p.stdout
    assert p.returncode == 6, p.stderr


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
