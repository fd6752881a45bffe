"""Progress bars: on stderr only when it is a TTY, never with --no-progress/-q, NO_COLOR."""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tf import REPO

ROOT = REPO


def _run_on_tty(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run with stderr on a pseudo-terminal; stdout on a pipe. Returns (rc, tty output)."""
    master, slave = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "toolfetch", *args], stderr=slave,
                         stdout=subprocess.PIPE, env={**os.environ, **env, "TERM": "xterm"})
    os.close(slave)
    out = b""
    while True:
        ready, _, _ = select.select([master], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    p.wait(30)
    os.close(master)
    return p.returncode, out.decode(errors="replace")


def _lockfile(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "lockfiles", tmp_path / "lockfiles")
    return tmp_path / "lockfiles" / "tools.lock.json"


def test_fetch_shows_progress_on_a_tty(tmp_path: Path) -> None:
    lock = _lockfile(tmp_path)
    rc, out = _run_on_tty(["fetch", "--all-platforms", "--lockfile", str(lock)],
                          {"TOOLFETCH_CACHE_DIR": str(tmp_path / "c1")})
    assert rc == 0
    assert re.search(r"fetch  (greet|hello|say)  \[#*\s*\] [\d.]+ \w*B/[\d.]+ \w*B  "
                     r"[\d.]+ \w*B/s  (ETA [\dhms]+|ETA -|done)", out), out
    assert "\x1b[36m" in out  # colour on a TTY


def test_no_color_and_no_progress(tmp_path: Path) -> None:
    lock = _lockfile(tmp_path)
    rc, out = _run_on_tty(["fetch", "--all-platforms", "--lockfile", str(lock)],
                          {"TOOLFETCH_CACHE_DIR": str(tmp_path / "c2"), "NO_COLOR": "1"})
    assert rc == 0 and "fetch  " in out and "\x1b[36m" not in out
    for flag in ("--no-progress", "-q"):
        rc, out = _run_on_tty(["fetch", "--all-platforms", flag, "--lockfile", str(lock)],
                              {"TOOLFETCH_CACHE_DIR": str(tmp_path / f"c3{flag}")})
        assert rc == 0 and "fetch" not in out


def test_no_progress_when_stderr_is_not_a_tty(tmp_path: Path) -> None:
    lock = _lockfile(tmp_path)
    p = subprocess.run([sys.executable, "-m", "toolfetch", "fetch", "--all-platforms",
                        "--lockfile", str(lock)], capture_output=True, text=True,
                       env={**os.environ, "TOOLFETCH_CACHE_DIR": str(tmp_path / "c4")})
    assert p.returncode == 0 and p.stderr == "" and p.stdout == ""


def test_lock_of_several_tools_shows_progress(tmp_path: Path) -> None:
    lock = _lockfile(tmp_path)
    lock.unlink()
    rc, out = _run_on_tty(["lock", "--lockfile", str(lock)], {})
    assert rc == 0 and "lock  [" in out and "refs/s" in out
    assert lock.exists()


LAYOUT = "oci-layout:{}:say-1.0"


def _line_for(command: str, name: str, out: str) -> bool:
    """A progress line of ``command`` naming ``name``, with bytes, a rate and an ETA."""
    return re.search(rf"{command}  {re.escape(name)}  \[#*\s*\] [\d.]+ \w*B/[\d.]+ \w*B  "
                     r"[\d.]+ \w*B/s  (ETA [\dhms]+|ETA -|done)", out) is not None


def test_registry_commands_show_the_file_and_rate_on_a_tty(tmp_path: Path) -> None:
    lock = _lockfile(tmp_path)
    layout = tmp_path / "lockfiles" / "registry"
    env = {"TOOLFETCH_CACHE_DIR": str(tmp_path / "c5"), "NO_COLOR": "1"}
    rc, out = _run_on_tty(["pull", "-o", str(tmp_path / "pulled"),
                           LAYOUT.format(layout)], env)
    assert rc == 0 and _line_for("pull", "say", out), out
    rc, out = _run_on_tty(["copy", LAYOUT.format(layout),
                           f"oci-layout:{tmp_path / 'copied'}:say-1.0"], env)
    assert rc == 0 and _line_for("copy", "say", out), out
    payload = tmp_path / "payload.bin"
    payload.write_bytes(os.urandom(1 << 20))
    rc, out = _run_on_tty(["push", f"oci-layout:{tmp_path / 'pushed'}:p-1", str(payload)], env)
    assert rc == 0 and _line_for("push", "payload.bin", out), out
    assert _run_on_tty(["fetch", "--lockfile", str(lock)], env)[0] == 0
    rc, out = _run_on_tty(["export", "--lockfile", str(lock), str(tmp_path / "bundle")], env)
    assert rc == 0 and _line_for("export", "say", out), out
    rc, out = _run_on_tty(["import", str(tmp_path / "bundle")],
                          {**env, "TOOLFETCH_CACHE_DIR": str(tmp_path / "c6")})
    assert rc == 0 and re.search(r"import  \S+  \[", out), out


def test_registry_commands_show_nothing_off_a_tty(tmp_path: Path) -> None:
    layout = tmp_path / "lockfiles" / "registry"
    _lockfile(tmp_path)
    p = subprocess.run([sys.executable, "-m", "toolfetch", "pull", "-o", str(tmp_path / "o"),
                        LAYOUT.format(layout)], capture_output=True, text=True,
                       env={**os.environ, "TOOLFETCH_CACHE_DIR": str(tmp_path / "c7")})
    assert p.returncode == 0 and p.stderr == "" and "\r" not in p.stdout


def test_the_line_has_name_amount_rate_and_eta(monkeypatch: pytest.MonkeyPatch) -> None:
    from toolfetch.core import progress as progress_module

    clock = [100.0]
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: clock[0])
    bar = progress_module.Progress("pull", 100 << 20, True)  # draws to (captured) stderr
    bar.advance(1 << 20, "protoc-25.1-linux-x86_64.tar.gz")
    clock[0] += 0.5
    assert bar.line(clock[0]).endswith("1.0 MiB/100.0 MiB  2.0 MiB/s  ETA -")
    bar.advance(9 << 20)
    clock[0] += 4.5
    assert bar.line(clock[0]) == ("pull  protoc-25.1-linux-x86_6…  [##                  ] "
                                  "10.0 MiB/100.0 MiB  2.0 MiB/s  ETA 45s")
