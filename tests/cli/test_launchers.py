"""Launchers that ``bootstrap`` writes: a POSIX one stays on its fast path after a lockfile
edit that leaves its tool alone; a Windows ``.cmd`` one never runs a binary the lockfile has
not just named (it always goes through ``toolfetch run``)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from tf import assert_ok, copy_example, tf_main

from toolfetch.ops.bootstrap import cmd_launcher


def _nt(a: Path, b: Path) -> bool:
    """The launcher's own test: ``[ a -nt b ]``."""
    return subprocess.run(["sh", "-c", '[ "$1" -nt "$2" ]', "sh", str(a), str(b)]).returncode == 0


@pytest.mark.skipif(os.name == "nt", reason="POSIX launchers")
def test_an_unchanged_launcher_is_moved_past_the_lockfile(tmp_path: Path) -> None:
    lockfile = copy_example(tmp_path)
    bin_dir = tmp_path / "bin"
    r = tf_main("bootstrap", "--lockfile", lockfile, "--bin-dir", bin_dir)
    assert_ok(r)
    assert "(3 updated)" in r.stdout
    launchers = {p.name: p for p in bin_dir.iterdir()}
    texts = {n: p.read_text() for n, p in launchers.items()}
    old = time.time() - 100
    for p in launchers.values():
        os.utime(p, (old, old))
    # an edit that changes no launcher: hello's darwin/amd64 entry (this host is not that)
    data = json.loads(lockfile.read_text())
    data["tools"]["hello"]["platforms"].pop("darwin/amd64")
    lockfile.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    assert all(_nt(lockfile, p) for p in launchers.values())  # all on the slow path now
    r = tf_main("bootstrap", "--lockfile", lockfile, "--bin-dir", bin_dir)
    assert_ok(r)
    assert "(0 updated)" in r.stdout  # not rewritten, so not counted (docs/design.md)
    for name, p in launchers.items():
        assert p.read_text() == texts[name]
        assert not _nt(lockfile, p), name
    # the fast path is taken: `sh -x` shows the tree's executable exec'd, not python
    t = subprocess.run(["sh", "-x", str(launchers["say"]), "hi"], capture_output=True,
                       text=True)
    assert t.returncode == 0 and t.stdout == "say: hi\n", t.stderr
    assert "-m toolfetch" not in t.stderr, t.stderr


@pytest.mark.skipif(os.name == "nt", reason="POSIX launchers")
def test_a_lockfile_dated_in_the_future_does_not_leave_launchers_behind(
        tmp_path: Path) -> None:
    lockfile = copy_example(tmp_path)
    bin_dir = tmp_path / "bin"
    assert_ok(tf_main("bootstrap", "--lockfile", lockfile, "--bin-dir", bin_dir))
    future = time.time() + 3600
    os.utime(lockfile, (future, future))
    (bin_dir / "say").unlink()
    r = tf_main("bootstrap", "--lockfile", lockfile, "--bin-dir", bin_dir)
    assert_ok(r)
    assert "(1 updated)" in r.stdout  # the rewritten one only
    for p in bin_dir.iterdir():
        assert not _nt(lockfile, p), p.name


def test_windows_cmd_launcher_always_asks_the_lockfile() -> None:
    """No fast branch: ``if exist <exe>`` ran the bootstrapped exe whatever the lockfile now
    pins (its old tree stays in the cache until gc)."""
    exe = "C:/cache/trees/x/greet.cmd"
    text = cmd_launcher("greet", Path(exe), Path("C:/repo/l.json"), Path("C:/cache"))
    assert text.endswith("\r\n")
    lines = text.split("\r\n")[:-1]
    assert lines[0] == "@echo off"
    code = [line for line in lines[1:] if not line.lower().startswith("rem ")]
    assert "if exist" not in text.lower()
    assert not any(exe in line for line in code)  # only a comment names it
    assert len(code) == 2
    run, leave = code
    assert run.startswith('"') and '-m toolfetch --cache-dir "C:/cache" run ' in run
    assert '--lockfile "C:/repo/l.json" greet -- %*' in run and run.endswith(" -- %*")
    assert leave == "exit /b %ERRORLEVEL%"
