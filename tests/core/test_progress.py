"""Progress bars: on stderr only when it is a TTY, never with --no-progress/-q, NO_COLOR."""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import sys
from pathlib import Path

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
    assert "fetching [" in out and "\x1b[36m" in out  # colour on a TTY


def test_no_color_and_no_progress(tmp_path: Path) -> None:
    lock = _lockfile(tmp_path)
    rc, out = _run_on_tty(["fetch", "--all-platforms", "--lockfile", str(lock)],
                          {"TOOLFETCH_CACHE_DIR": str(tmp_path / "c2"), "NO_COLOR": "1"})
    assert rc == 0 and "fetching [" in out and "\x1b[36m" not in out
    for flag in ("--no-progress", "-q"):
        rc, out = _run_on_tty(["fetch", "--all-platforms", flag, "--lockfile", str(lock)],
                              {"TOOLFETCH_CACHE_DIR": str(tmp_path / f"c3{flag}")})
        assert rc == 0 and "fetching" not in out


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
    assert rc == 0 and "locking [" in out and "refs" in out
    assert lock.exists()
