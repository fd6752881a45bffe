"""Issue 23 #4: `arg0`. DotSlash runs a tool with the DotSlash file's name as argv[0] (its
default, `dotslash-file`), which multi-call binaries need: busybox named `echo` is echo.
toolfetch imports that as `arg0: tool`, and `toolfetch run` gives the tool the name it was
invoked by; without it the tool gets its cached file's path. Checked against the real
DotSlash and the real busybox (Debian's busybox-static), served zstd-compressed."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard
from assetserver import AssetServer
from blake3 import blake3
from tf import assert_ok, run_toolfetch, tf_main

BUSYBOX = shutil.which("busybox")
pytestmark = pytest.mark.skipif(BUSYBOX is None or os.uname().machine != "x86_64",
                                reason="needs busybox (apt-get install busybox-static) on x86_64")


@pytest.fixture
def served() -> Iterator[tuple[AssetServer, bytes]]:
    assert BUSYBOX is not None
    packed = zstandard.ZstdCompressor(write_checksum=True).compress(Path(BUSYBOX).read_bytes())
    server = AssetServer()
    server.files["/busybox.zst"] = packed
    yield server, packed
    server.close()


def _dotslash_file(path: Path, server: AssetServer, packed: bytes, arg0: str | None) -> None:
    extra = f'"arg0": "{arg0}", ' if arg0 else ""
    path.write_text(f"""#!/usr/bin/env dotslash
{{
  "name": "busybox",
  "platforms": {{
    "linux-x86_64": {{
      "size": {len(packed)}, "hash": "blake3", "digest": "{blake3(packed).hexdigest()}",
      "format": "zst", "path": "busybox", {extra}
      "providers": [{{"url": "{server.url('/busybox.zst')}"}}],
    }},
  }},
}}
""")
    path.chmod(0o755)


def test_a_multi_call_binary_is_named_as_dotslash_names_it(
        served: tuple[AssetServer, bytes], tmp_path: Path) -> None:
    server, packed = served
    ws = tmp_path / "ws"
    ws.mkdir()
    echo = ws / "echo"  # busybox named `echo` is the echo applet
    _dotslash_file(echo, server, packed, None)
    dotslash = shutil.which("dotslash")
    if dotslash is not None:
        env = {**os.environ, "DOTSLASH_CACHE": str(tmp_path / "dotslash-cache")}
        ran = subprocess.run([dotslash, str(echo), "hello", "world"], capture_output=True,
                             text=True, env=env, timeout=120)
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout == "hello world\n"
    lockfile = ws / "tools.lock.json"
    assert_ok(tf_main("import-dotslash", "--lockfile", lockfile, echo))
    assert_ok(tf_main("lock", "--lockfile", lockfile))
    for _ in range(2):  # the full path, then the cache-hit path
        r = run_toolfetch("run", "--lockfile", lockfile, "echo", "--", "hello", "world")
        assert_ok(r)
        assert r.stdout == "hello world\n"
    r = run_toolfetch("run", "--lockfile", lockfile, "--arg0", "/x/true", "echo", "--", "hi")
    assert_ok(r)  # the name given (a launcher's own path): busybox's `true` prints nothing
    assert r.stdout == ""


def test_underlying_executable_gets_its_cached_path(
        served: tuple[AssetServer, bytes], tmp_path: Path) -> None:
    server, packed = served
    ws = tmp_path / "ws"
    ws.mkdir()
    tool = ws / "echo"
    _dotslash_file(tool, server, packed, "underlying-executable")
    lockfile = ws / "tools.lock.json"
    assert_ok(tf_main("import-dotslash", "--lockfile", lockfile, tool))
    assert_ok(tf_main("lock", "--lockfile", lockfile))
    r = run_toolfetch("run", "--lockfile", lockfile, "echo", "--", "--help")
    # argv[0] ends in `busybox`: busybox itself, which prints its own usage
    assert "BusyBox" in r.stdout + r.stderr and "Usage: busybox" in r.stdout + r.stderr


def test_a_launcher_gives_its_own_path_as_argv0(
        served: tuple[AssetServer, bytes], tmp_path: Path) -> None:
    """bin/echo runs busybox as `…/bin/echo` on the fast path (exec -a under bash) and
    through `toolfetch run --arg0 "$0"` once the lockfile changed."""
    server, packed = served
    ws = tmp_path / "ws"
    ws.mkdir()
    echo = ws / "echo"
    _dotslash_file(echo, server, packed, None)
    lockfile = ws / "tools.lock.json"
    assert_ok(tf_main("import-dotslash", "--lockfile", lockfile, echo))
    assert_ok(tf_main("lock", "--lockfile", lockfile))
    bin_dir = ws / "bin"
    assert_ok(run_toolfetch("bootstrap", "--lockfile", lockfile, "--bin-dir", bin_dir))
    launcher = bin_dir / "echo"
    fast = subprocess.run([str(launcher), "hello", "world"], capture_output=True, text=True,
                          timeout=60)
    assert fast.returncode == 0, fast.stderr
    assert fast.stdout == "hello world\n"
    if shutil.which("bash"):
        assert launcher.read_text().startswith("#!" + str(shutil.which("bash")))
        assert 'exec -a "$0"' in launcher.read_text()
    lockfile.write_text(lockfile.read_text() + "\n")  # another content: the fallback decides
    slow = subprocess.run([str(launcher), "hello", "again"], capture_output=True, text=True,
                          timeout=60)
    assert slow.returncode == 0, slow.stderr
    assert slow.stdout == "hello again\n"
