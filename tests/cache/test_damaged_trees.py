"""Issue 24.12: a tree damaged after it was recorded (a cleanup job or a virus scanner took its
executable, or its directory; its record stayed) is built again by the full path, with a
warning, as a damaged blob is fetched again. It made fetch/which/run exit 4 for good, with
advice to fix `path` in tools.yaml while naming that very path ("it has: say")."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from tf import assert_ok, run_toolfetch, tf_main

from toolfetch.cache.store import Cache
from toolfetch.core.fs import make_writable, remove_tree
from toolfetch.core.platform import host_platform
from toolfetch.lock.lockfile import Lockfile
from toolfetch.ops.fetch import Fetcher
from toolfetch.ops.plan import plan


def _say(example: Path) -> tuple[Path, Path]:
    r = tf_main("which", "--json", "say", "--lockfile", example)
    assert_ok(r)
    found = json.loads(r.stdout)
    return Path(found["tree"]), Path(found["path"])


def _lose_executable(tree: Path, exe: Path) -> None:
    make_writable(tree)
    exe.unlink()


def _lose_directory(tree: Path, exe: Path) -> None:
    remove_tree(tree)


def _lose_mode(tree: Path, exe: Path) -> None:
    os.chmod(exe, 0o444)


@pytest.mark.parametrize("damage", [_lose_executable, _lose_directory])
@pytest.mark.parametrize("command", ["fetch", "which", "run"])
def test_a_damaged_tree_is_built_again(example: Path, command: str,
                                       damage: Callable[[Path, Path], None]) -> None:
    tree, exe = _say(example)
    damage(tree, exe)
    args = {"fetch": ["fetch", "say"], "which": ["which", "say"],
            "run": ["run", "say", "--", "hi"]}[command]
    r = run_toolfetch(command, "--lockfile", example, *args[1:])
    assert_ok(r)
    assert "damaged" in r.stderr and "building it again" in r.stderr, r.stderr
    assert "Fix `path`" not in r.stderr
    assert os.access(exe, os.X_OK)
    if command == "run":
        assert r.stdout == "say: hi\n"
    p = subprocess.run([str(exe), "x"], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout == "say: x\n"


def test_a_tree_whose_executable_lost_its_mode_is_built_again_by_a_full_fetch(
        example: Path, cache_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The full path only: the hit path checks that the executable exists, not its mode."""
    tree, exe = _say(example)
    _lose_mode(tree, exe)
    lockfile = Lockfile.load(example)
    fetcher = Fetcher(Cache(cache_dir), lockfile)
    fetcher.fetch(plan(lockfile, ["say"], host_platform(), False))
    fetcher.release()
    assert "lost its executable mode" in caplog.text
    assert os.access(exe, os.X_OK)


def test_a_path_the_artifact_never_had_is_still_exit_4(example: Path) -> None:
    """Not damage: the record does not list it either."""
    data = json.loads(example.read_text())
    for entry in data["tools"]["say"]["platforms"].values():
        entry["path"] = "sya"
    example.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    r = tf_main("fetch", "say", "--lockfile", example)
    assert r.returncode == 4 and "Fix `path`" in r.stderr and "damaged" not in r.stderr
