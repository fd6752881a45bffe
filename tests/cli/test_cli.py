"""CLI tests: exit codes and ``error: …`` messages without tracebacks, argv/exit-code pass
through of ``run``, default paths, global options, and the hit path's imports."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import ocitest
import pytest
from ocitest import Registry
from tf import (
    HEAVY,
    TRACEBACK,
    assert_error,
    assert_ok,
    host,
    probe_heavy_imports,
    run_toolfetch,
    script,
    tf_main,
    tree_of,
    write_config,
)


@pytest.fixture
def cached(registry: Registry, unique_repo: str, tmp_path: Path,
           cache_dir: Path) -> dict[str, object]:
    """A repository root with lockfiles/{tools.yaml,tools.lock.json}: tool ``t`` (an index
    with the host platform, exits 42) and ``r`` (a raw file); both fetched into the cache."""
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    idx = ocitest.push_tool_index(registry, f"{unique_repo}/t", "1", {
        host(): ocitest.targz({"bin/t": (script("t", 42), 0o755)}),
        "windows/amd64": ocitest.targz({"bin/t": (b"MZ", 0o755)})})
    raw = ocitest.oras_artifact({"r": script("r")})
    ocitest.push_artifact(registry, f"{unique_repo}/r", "1", raw)
    lockfile = root / "lockfiles" / "tools.lock.json"
    write_config(lockfile.parent / "tools.yaml", {"tools": {
        "t": {"ref": idx.ref, "path": "bin/t"},
        "r": {"ref": registry.ref(f"{unique_repo}/r", "1")}}})
    assert_ok(tf_main("lock", "--lockfile", lockfile))
    assert_ok(tf_main("fetch", "--lockfile", lockfile))
    tools = json.loads(lockfile.read_text())["tools"]
    return {"root": root, "lockfile": lockfile,
            "t_tree": tree_of(cache_dir, tools["t"]["platforms"][host()]),
            "r_tree": tree_of(cache_dir, tools["r"]["platforms"]["*"])}


def test_hit_path_imports_no_heavy_module(cached: dict[str, object], cache_dir: Path) -> None:
    lockfile = cached["lockfile"]
    t_tree = cached["t_tree"]
    assert isinstance(t_tree, Path)
    record = t_tree.with_name(t_tree.name + ".json")
    os.utime(record, (1_000_000, 1_000_000))
    files_before = sorted(cache_dir.rglob("*"))
    p, heavy = probe_heavy_imports("which", "--lockfile", lockfile, "t")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[0] == str(cached["t_tree"]) + "/bin/t"
    assert heavy == []
    p, heavy = probe_heavy_imports("run", "--lockfile", lockfile, "r", "--", "x", run=True)
    exec_line = next(ln for ln in p.stdout.splitlines() if ln.startswith("EXEC "))
    exe = str(cached["r_tree"]) + "/r"
    assert json.loads(exec_line[5:]) == [exe, [exe, "x"]]
    assert heavy == []
    # a hit takes no lock and writes nothing; it only touches the record (the LRU clock)
    assert sorted(cache_dir.rglob("*")) == files_before
    assert record.stat().st_mtime > 1_000_000


@pytest.mark.parametrize(("argv", "env"), [
    (["which", "--lockfile", "{lock}", "t", "--offline"], {}),
    (["which", "--offline", "--platform", "{host}", "--lockfile", "{lock}", "t"], {}),
    (["--cache-dir", "{cache}", "which", "t", "--lockfile", "{lock}", "-q"], {}),
    (["which", "--lockfile", "{lock}", "t"], {"TOOLFETCH_OFFLINE": "1"}),
    (["fetch", "--lockfile", "{lock}"], {}),
    (["fetch", "--lockfile", "{lock}", "--offline", "--jobs", "8", "-q", "--no-progress"], {}),
    (["-q", "fetch", "t", "r", "--lockfile", "{lock}", "--platform", "{host}"],
     {"TOOLFETCH_OFFLINE": "1"}),
    (["fetch", "--lockfile", "{lock}", "--cache-dir={cache}", "--json"], {}),
    # the full path (--output materialises, -v logs) reads the schema verdict from the index
    (["fetch", "--lockfile", "{lock}", "t", "--output", "{out}", "--offline"], {}),
    (["fetch", "-v", "--lockfile", "{lock}"], {}),
])
def test_every_cached_spelling_a_build_passes_imports_nothing_heavy(
        cached: dict[str, object], cache_dir: Path, tmp_path: Path, argv: list[str],
        env: dict[str, str]) -> None:
    values = {"{lock}": str(cached["lockfile"]), "{host}": host(), "{cache}": str(cache_dir),
              "{out}": str(tmp_path / "out")}
    args = [values.get(a, a) for a in argv]
    args = [a.replace("{cache}", str(cache_dir)) for a in args]
    p, heavy = probe_heavy_imports(*args, env=env)
    assert p.returncode == 0, p.stderr
    assert heavy == [], args


def test_import_probe_detects_heavy_modules(cached: dict[str, object], tmp_path: Path) -> None:
    """The probe is not vacuous: a cache miss (a fetch into an empty cache) imports requests
    and jsonschema, and lock imports yaml."""
    lockfile = cached["lockfile"]
    p, heavy = probe_heavy_imports("which", "--lockfile", lockfile, "t",
                                   env={"TOOLFETCH_CACHE_DIR": str(tmp_path / "empty")})
    assert p.returncode == 0, p.stderr
    assert {"requests", "jsonschema"} <= {m.split(".")[0] for m in heavy}
    p, heavy = probe_heavy_imports("lock", "--check", "--lockfile", lockfile)
    assert p.returncode == 0, p.stderr
    assert "yaml" in heavy


def test_hit_path_with_unusable_lockfile_exits_2_without_jsonschema(tmp_path: Path) -> None:
    lockfile = tmp_path / "tools.lock.json"
    lockfile.write_text(json.dumps({"version": 1, "tools": {"t": {"platforms": {
        "*": {"ref": "x/y:1", "path": "/etc/passwd", "manifest": "sha256:" + "0" * 64,
              "layers": [{"digest": "sha256:" + "1" * 64, "size": 1, "mediaType": "x",
                          "unpack": "raw", "title": "t"}]}}}}}))
    p, heavy = probe_heavy_imports("which", "--lockfile", lockfile, "t")
    assert p.returncode == 2
    assert "error: " in p.stderr and "$.tools.t.platforms.*.path" in p.stderr
    assert TRACEBACK not in p.stderr
    assert not {m.split(".")[0] for m in heavy} & HEAVY


@pytest.mark.parametrize(("mutate", "where"), [
    (lambda d: d.update(mirrors=["ghcr.io"]), "$.mirrors: "),
    (lambda d: d.update(mirrors={"ghcr.io": ["https://m.local"]}), "$.mirrors.ghcr.io[0]: "),
    (lambda d: d["tools"]["t"]["platforms"].update(linux=d["tools"]["t"]["platforms"]["*"]),
     "$.tools.t.platforms.linux: "),
])
@pytest.mark.parametrize("command", ["fetch", "which"])
def test_a_malformed_lockfile_names_file_and_key_before_touching_the_cache(
        tmp_path: Path, command: str, mutate: Any, where: str) -> None:
    data: dict[str, Any] = {"version": 1, "tools": {"t": {"platforms": {
        "*": {"ref": "x/y:1", "path": "t", "manifest": "sha256:" + "0" * 64,
              "layers": [{"digest": "sha256:" + "1" * 64, "size": 1, "mediaType": "x",
                          "unpack": "raw", "title": "t"}]}}}}}
    mutate(data)
    lockfile = tmp_path / "tools.lock.json"
    lockfile.write_text(json.dumps(data))
    cache = tmp_path / "cache"
    args = [command, "--lockfile", lockfile, "--cache-dir", cache, "--offline"]
    r = run_toolfetch(*args, *(["t"] if command == "which" else []))
    assert_error(r, 2, f"{lockfile}: {where}")
    assert not [p for p in cache.rglob("*") if p.is_file() and "sha256" in p.parts], r.stderr


def test_run_passes_argv_and_exit_code(cached: dict[str, object], tmp_path: Path) -> None:
    lockfile = str(cached["lockfile"])
    # a cold cache: run fetches first, then execs
    r = run_toolfetch("run", "--lockfile", lockfile, "t", "--", "cold",
                      env={"TOOLFETCH_CACHE_DIR": str(tmp_path / "cold")})
    assert r.returncode == 42, r.stderr
    assert r.stdout.splitlines() == ["t", "arg:cold"]
    assert (tmp_path / "cold" / "CACHEDIR.TAG").is_file()
    args = ["--", "-v", "--cache-dir", "/nope", "a  b", "", "--", "ünï"]
    r = run_toolfetch("run", "--lockfile", lockfile, "t", *args)
    assert r.returncode == 42, r.stderr
    assert r.stdout.splitlines() == ["t"] + [f"arg:{a}" for a in args[1:]]
    assert r.stderr == ""
    # without "--" the arguments after TOOL still belong to the tool
    r = run_toolfetch("run", "--lockfile", lockfile, "r", "x", "-q")
    assert r.returncode == 0
    assert r.stdout.splitlines() == ["r", "arg:x", "arg:-q"]


def test_default_lockfile_is_found_from_the_repository_root(
    cached: dict[str, object]
) -> None:
    root = cached["root"]
    assert isinstance(root, Path)
    sub = root / "deep" / "er"
    sub.mkdir(parents=True)
    r = run_toolfetch("which", "r", cwd=sub)
    assert_ok(r)
    assert r.stdout.strip() == str(cached["r_tree"]) + "/r"
    # lock --check finds tools.yaml beside the default lockfile
    assert_ok(run_toolfetch("lock", "--check", cwd=sub))
    # outside any repository: the current directory's lockfiles/
    outside = root.parent / "elsewhere"
    outside.mkdir()
    r = run_toolfetch("which", "r", cwd=outside)
    assert_error(r, 2, str(outside / "lockfiles" / "tools.lock.json"), "not found")


def test_global_options_before_or_after_the_command(cached: dict[str, object],
                                                    tmp_path: Path) -> None:
    lockfile = cached["lockfile"]
    other = tmp_path / "other-cache"
    for argv in (["--cache-dir", other, "fetch", "--lockfile", lockfile, "r"],
                 ["fetch", "--lockfile", lockfile, "r", "--cache-dir", other]):
        r = tf_main(*argv)
        assert_ok(r)
    assert (other / "CACHEDIR.TAG").is_file()
    r = tf_main("which", "r", "--lockfile", lockfile, "--cache-dir", other)
    assert r.stdout.strip().startswith(str(other / "trees" / "sha256"))
    r = tf_main("fetch", "--lockfile", lockfile, "-v", "--cache-dir", tmp_path / "c3")
    assert_ok(r)
    assert "debug: " in r.stderr and "tool t" in r.stderr


@pytest.mark.parametrize(
    ("argv", "code", "needle"),
    [
        (["nosuchcommand"], 2, "invalid choice"),
        (["fetch", "--bogus"], 2, "--bogus"),
        (["fetch", "--jobs", "x"], 2, "--jobs"),
        (["fetch", "--platform", "linux/amd64", "--all-platforms"], 2, "not allowed with"),
        (["which"], 2, "TOOL"),
        (["fetch", "--lockfile", "LOCK", "--platform", "linux"], 2, "malformed platform"),
        (["which", "--lockfile", "MISSING", "t"], 2, "lockfile not found"),
        (["fetch", "--lockfile", "MISSING"], 2, "lockfile not found"),
        (["lock", "--lockfile", "MISSING"], 2, "no such file"),
        (["which", "--lockfile", "LOCK", "nosuch"], 4, "'nosuch'"),
    ],
)
def test_errors_print_error_line_and_no_traceback(
    tmp_path: Path, argv: list[str], code: int, needle: str
) -> None:
    lock = tmp_path / "tools.lock.json"
    lock.write_text('{"version": 1, "tools": {}}\n')
    argv = [a.replace("MISSING", str(tmp_path / "absent" / "tools.lock.json"))
             .replace("LOCK", str(lock)) for a in argv]
    r = run_toolfetch(*argv)
    assert_error(r, code, needle)
    assert r.stdout == ""


def test_python_m_and_console_script_agree() -> None:
    a = run_toolfetch("--version")
    b = subprocess.run(["toolfetch", "--version"], capture_output=True, text=True)
    assert a.returncode == b.returncode == 0
    assert a.stdout == b.stdout and a.stdout.startswith("toolfetch ")


def test_main_called_again_in_one_process_keeps_one_log_handler(
        capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    from toolfetch import cli

    logger = logging.getLogger("toolfetch")
    before = list(logger.handlers)
    try:
        for _ in range(3):
            assert cli.main(["cache", "path"]) == 0
        added = [h for h in logger.handlers if h not in before]
        assert len(added) == 1
    finally:
        for h in [h for h in logger.handlers if h not in before]:
            logger.removeHandler(h)
    assert capsys.readouterr().out.count("\n") == 3


# -- the process exit: console() flushes, then os._exit (no interpreter teardown) -----------


def test_buffered_output_reaches_a_file_before_the_process_ends(
        cached: dict[str, object], tmp_path: Path) -> None:
    # Into a file, stdout is block-buffered: what the command printed is still in the buffer
    # when it returns, so ending with os._exit without a flush would leave the file empty.
    out = tmp_path / "out.txt"
    for args in (["which", "--lockfile", cached["lockfile"], "t"],  # the hit path
                 ["fetch", "--json", "--all-platforms", "--lockfile", cached["lockfile"]]):
        with out.open("w") as f:
            r = run_toolfetch(*args, stdout=f.fileno())
        assert_ok(r)
        text = out.read_text()
        if args[0] == "which":
            assert text == f"{Path(str(cached['t_tree'])) / 'bin' / 't'}\n"
        else:
            entries = {(e["tool"], e["platform"]) for e in json.loads(text)}
            assert entries == {("r", "*"), ("t", host()), ("t", "windows/amd64")}


def test_a_reader_that_left_is_exit_1_without_a_traceback(cached: dict[str, object]) -> None:
    for args in (["which", "--lockfile", cached["lockfile"], "t"],
                 ["fetch", "--json", "--lockfile", cached["lockfile"]]):
        read, write = os.pipe()
        os.close(read)  # the reader is gone before anything is written: EPIPE on the flush
        try:
            r = run_toolfetch(*args, stdout=write)
        finally:
            os.close(write)
        assert r.returncode == 1, r.stderr
        assert TRACEBACK not in r.stderr and "Exception ignored" not in r.stderr, r.stderr


def test_output_to_a_full_disk_is_a_local_io_error(cached: dict[str, object]) -> None:
    with open("/dev/full", "w") as full:
        r = run_toolfetch("which", "--lockfile", cached["lockfile"], "t", stdout=full.fileno())
    assert_error(r, 8, "standard output: No space left on device")


def test_the_exit_code_passes_through_console(cached: dict[str, object], tmp_path: Path) -> None:
    r = run_toolfetch("which", "--lockfile", cached["lockfile"], "nosuch")
    assert_error(r, 4, "nosuch")
    r = run_toolfetch("fetch", "--lockfile", tmp_path / "absent.lock.json")
    assert r.returncode == 2, r.stderr
