"""Launchers that ``bootstrap`` writes: a POSIX one runs the cached tree only while the lockfile
has the content it was written for, whatever the mtimes say; a Windows ``.cmd`` one never runs
a binary the lockfile has not just named (it always goes through ``toolfetch run``)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from tf import assert_ok, copy_example, tf_main

from toolfetch.ops.bootstrap import cmd_launcher


def _say_runs_greet(lockfile: Path, older_than: Path) -> bytes:
    """Lockfile content in which tool ``say`` is greet's artifact (another cached tree),
    written as ``cp -p`` writes it: into the same file, with an older mtime."""
    data = json.loads(lockfile.read_text())
    data["tools"]["say"] = data["tools"]["greet"]
    content = (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()
    with open(lockfile, "r+b") as f:  # in place, as cp onto an existing file
        f.truncate()
        f.write(content)
    old = older_than.stat().st_mtime - 3600
    os.utime(lockfile, (old, old))
    return content


def _fast(launcher: Path, *args: str) -> tuple[bool, subprocess.CompletedProcess[str]]:
    """(whether the launcher exec'd the cached tool itself, its result): ``sh -x`` shows it."""
    t = subprocess.run(["sh", "-x", str(launcher), *args], capture_output=True, text=True)
    return "-m toolfetch" not in t.stderr, t


@pytest.mark.skipif(os.name == "nt", reason="POSIX launchers")
@pytest.mark.parametrize("launcher_in_future", [False, True])
def test_a_launcher_never_runs_the_tree_of_an_older_lockfile(
        tmp_path: Path, launcher_in_future: bool) -> None:
    """New lockfile content whose mtime is not newer than the launcher (cp -p, tar x,
    rsync -a, touch -r; or a launcher dated in the future by a lockfile that was): the
    launcher runs what the lockfile now pins. It used to run the old tree (an mtime test)."""
    lockfile = copy_example(tmp_path)
    bin_dir = tmp_path / "bin"
    if launcher_in_future:  # bootstrap ran while the lockfile had a future mtime
        future = time.time() + 3600
        os.utime(lockfile, (future, future))
    assert_ok(tf_main("bootstrap", "--lockfile", lockfile, "--bin-dir", bin_dir))
    fast, t = _fast(bin_dir / "say", "hi")
    assert fast and t.returncode == 0 and t.stdout == "say: hi\n", t.stderr
    _say_runs_greet(lockfile, older_than=bin_dir / "say")
    fast, t = _fast(bin_dir / "say", "hi")
    assert t.returncode == 0 and "greetings from toolfetch" in t.stdout, (t.stdout, t.stderr)
    assert not fast
    # a re-run points it at the new tree and puts it back on its fast path
    r = tf_main("bootstrap", "--lockfile", lockfile, "--bin-dir", bin_dir)
    assert_ok(r)
    assert "(3 updated)" in r.stdout  # every launcher names the content it was written for
    fast, t = _fast(bin_dir / "say", "hi")
    assert fast and "greetings from toolfetch" in t.stdout, t.stderr
    assert [p.name for p in (bin_dir / ".toolfetch").iterdir()] == [
        f"lockfile-{hashlib.sha256(lockfile.read_bytes()).hexdigest()}.json"]


@pytest.mark.skipif(os.name == "nt", reason="POSIX launchers")
def test_an_unchanged_lockfile_keeps_launchers_on_their_fast_path(tmp_path: Path) -> None:
    """Only content counts: a lockfile touched, or copied back with its old bytes, is not a
    change, and a re-run rewrites nothing."""
    lockfile = copy_example(tmp_path)
    bin_dir = tmp_path / "bin"
    r = tf_main("bootstrap", "--lockfile", lockfile, "--bin-dir", bin_dir)
    assert_ok(r)
    assert "(3 updated)" in r.stdout
    future = time.time() + 3600
    os.utime(lockfile, (future, future))
    lockfile.write_bytes(lockfile.read_bytes())
    for tool, needle in (("say", "say: x"), ("greet", "greetings"), ("hello", "Hello")):
        fast, t = _fast(bin_dir / tool, "x")
        assert fast and t.returncode == 0 and needle in t.stdout, (tool, t.stderr)
    r = tf_main("bootstrap", "--lockfile", lockfile, "--bin-dir", bin_dir)
    assert_ok(r)
    assert "(0 updated)" in r.stdout


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
