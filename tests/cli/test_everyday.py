"""Everyday commands: the command list, ``list``, ``completion``, success summaries, and tool
names beside digests in ``cache info`` and ``cache gc``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tf import assert_ok, host, run_toolfetch, tf_main


def test_plain_toolfetch_lists_the_commands_and_exits_2() -> None:
    r = run_toolfetch()
    assert r.returncode == 2
    for command in ("lock", "fetch", "list", "completion", "cache", "copy"):
        assert f"\n    {command} " in r.stderr, r.stderr
    assert "error: give a COMMAND" in r.stderr and r.stdout == ""


def test_help_shows_a_commands_help_or_the_list() -> None:
    r = run_toolfetch("help", "cache", "gc")
    assert r.returncode == 0 and r.stdout.startswith("usage: toolfetch cache gc ")
    assert "examples:" in r.stdout
    r = run_toolfetch("help")
    assert r.returncode == 0 and "\n    completion " in r.stdout
    assert run_toolfetch("help", "frobnicate").returncode == 2


def test_list_shows_tools_versions_sources_platforms_and_what_is_cached(
        example: Path) -> None:
    before = json.loads(tf_main("list", "--json", "--lockfile", example).stdout)
    assert [t["tool"] for t in before] == ["greet", "hello", "say"]
    say = before[2]
    assert say["source"] == "oci-layout:registry:say-1.0" and say["platforms"] == ["*"]
    assert all(t["cached"] == [] for t in before)
    assert_ok(tf_main("fetch", "--lockfile", example, "hello"))
    after = {t["tool"]: t for t in json.loads(
        tf_main("list", "--json", "--lockfile", example).stdout)}
    assert after["hello"]["cached"] == [host()] and after["say"]["cached"] == []
    text = tf_main("list", "--lockfile", example)
    assert_ok(text)
    assert "hello  -  oci-layout:registry:hello-1.0" in text.stdout
    assert f"cached here: {host()}" in text.stdout
    names = tf_main("list", "--names", "--lockfile", example)
    assert names.stdout.split() == ["greet", "hello", "say"]


def _script(shell: str) -> str:
    r = tf_main("completion", shell)
    assert_ok(r)
    return r.stdout


@pytest.mark.parametrize(("shell", "check"), [
    ("bash", ["bash", "-n"]), ("zsh", ["zsh", "-n"]), ("fish", ["fish", "--no-execute"])])
def test_completion_scripts_parse_in_their_shell(shell: str, check: list[str],
                                                 tmp_path: Path) -> None:
    text = _script(shell)
    assert "all-platforms" in text and "gc" in text
    if shutil.which(check[0]) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{check[0]} is not installed; CI installs it (.ci/run)")
        pytest.skip(f"{check[0]} is not installed (apt-get install {check[0]})")
    path = tmp_path / f"completion.{shell}"
    path.write_text(text)
    p = subprocess.run([*check, str(path)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def test_bash_completion_completes_commands_options_and_tool_names(
        example: Path, tmp_path: Path) -> None:
    path = tmp_path / "completion.bash"
    path.write_text(_script("bash"))
    shim = tmp_path / "bin" / "toolfetch"  # what the script calls for tool names
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m toolfetch "$@"\n')
    shim.chmod(0o755)
    probe = (f"source {path}\n"
             "COMP_WORDS=(toolfetch fe); COMP_CWORD=1; _toolfetch; echo \"1:${COMPREPLY[*]}\"\n"
             "COMP_WORDS=(toolfetch fetch --all); COMP_CWORD=2; _toolfetch; "
             "echo \"2:${COMPREPLY[*]}\"\n"
             "COMP_WORDS=(toolfetch cache gc --ma); COMP_CWORD=3; _toolfetch; "
             "echo \"3:${COMPREPLY[*]}\"\n"
             "COMP_WORDS=(toolfetch which he); COMP_CWORD=2; _toolfetch; "
             "echo \"4:${COMPREPLY[*]}\"\n")
    env = {**os.environ, "PATH": f"{shim.parent}{os.pathsep}{os.environ['PATH']}"}
    p = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, env=env,
                       cwd=example.parent.parent)
    lines = dict(line.split(":", 1) for line in p.stdout.splitlines())
    assert lines["1"] == "fetch"
    assert lines["2"] == "--all-platforms"
    assert lines["3"] == "--max-size"
    assert lines["4"] == "hello", p.stderr


def test_export_import_and_pull_say_what_they_did(example: Path, tmp_path: Path) -> None:
    assert_ok(tf_main("fetch", "--lockfile", example))
    out = tmp_path / "bundle"
    r = tf_main("export", "--lockfile", example, out)
    assert_ok(r)
    assert r.stdout.startswith("export: wrote 3 roots (") and str(out) in r.stdout
    r = tf_main("import", out)
    assert_ok(r)
    assert r.stdout.startswith("import: ") and " blobs from " in r.stdout
    assert tf_main("-q", "import", out).stdout == ""
    dest = tmp_path / "pulled"
    r = tf_main("pull", "-o", dest, f"oci-layout:{example.parent / 'registry'}:say-1.0")
    assert_ok(r)
    assert r.stdout.startswith("pull: wrote 1 files from ") and str(dest) in r.stdout
    # executable as fetch makes a single-file layer (0o555 there), writable: the user's file
    assert (dest / "say").stat().st_mode & 0o777 == 0o755


def test_cache_info_and_gc_name_the_tools_of_their_digests(
        example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert_ok(tf_main("fetch", "--lockfile", example))
    info = tf_main("cache", "info")
    assert_ok(info)
    assert "hello " + host() in info.stdout and "say *" in info.stdout
    as_json = json.loads(tf_main("cache", "info", "--json").stdout)
    assert sorted(n for t in as_json["tools"] for n in t["tools"]) == sorted(
        [f"greet {host()}", f"hello {host()}", "say *"])
    monkeypatch.setenv("TOOLFETCH_GC_GRACE", "0s")
    report = json.loads(tf_main("cache", "gc", "--max-size", "0", "--json").stdout)
    by_kind = {(r["kind"], tuple(r["tools"])) for r in report["removed"]}
    assert ("tree", ("say *",)) in by_kind and ("blob", ("say *",)) in by_kind
