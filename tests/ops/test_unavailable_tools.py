"""Issue 23.3: one tool not built for this host no longer breaks `fetch`, `bootstrap` and
`export` of the whole lockfile: they skip it, saying so once on stderr, and succeed; naming
it, `which` and `run` stay exit 4 with the platforms it has, and its launcher says the same
when run (exit 4, no Python)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from tf import assert_error, assert_ok, host, run_toolfetch, tf_main


@pytest.fixture
def lockfile(example: Path) -> Path:
    """The example plus `elsewhere`, locked only for a platform that is not this host."""
    data = json.loads(example.read_text())
    key, entry = next((k, e) for k, e in sorted(data["tools"]["greet"]["platforms"].items())
                      if k != host())
    data["tools"]["elsewhere"] = {"platforms": {key: entry}}
    example.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return example


def _warned(stderr: str) -> None:
    assert stderr.count("elsewhere") == 1, stderr
    assert f"warning: tool elsewhere is not available for {host()} (locked for: " in stderr


def test_fetch_without_tools_skips_it_and_naming_it_is_exit_4(lockfile: Path) -> None:
    for _ in range(2):  # the full path, then the hit path
        r = run_toolfetch("fetch", "--lockfile", lockfile)
        assert_ok(r)
        _warned(r.stderr)
    for argv in (["fetch", "elsewhere"], ["which", "elsewhere"], ["run", "elsewhere"]):
        r = run_toolfetch(argv[0], "--lockfile", lockfile, *argv[1:])
        assert_error(r, 4, "elsewhere", "locked platforms")


@pytest.mark.skipif(os.name == "nt", reason="POSIX launchers")
def test_bootstrap_writes_a_launcher_that_explains(lockfile: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    r = run_toolfetch("bootstrap", "--lockfile", lockfile, "--bin-dir", bin_dir)
    assert_ok(r)
    _warned(r.stderr)
    p = subprocess.run([str(bin_dir / "say"), "hi"], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout == "say: hi\n"
    run = run_toolfetch("run", "--lockfile", lockfile, "elsewhere")
    t = subprocess.run(["sh", "-x", str(bin_dir / "elsewhere")], capture_output=True,
                       text=True)
    assert t.returncode == 4 and "-m toolfetch" not in t.stderr  # no Python started
    p = subprocess.run([str(bin_dir / "elsewhere")], capture_output=True, text=True)
    assert (p.returncode, p.stderr) == (4, run.stderr)
    # a lockfile that now has it for this host: the launcher asks `toolfetch run`
    data = json.loads(lockfile.read_text())
    data["tools"]["elsewhere"] = data["tools"]["say"]
    lockfile.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    p = subprocess.run([str(bin_dir / "elsewhere"), "x"], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout == "say: x\n", p.stderr


def test_export_without_all_platforms_skips_it(lockfile: Path, tmp_path: Path) -> None:
    r = tf_main("export", "--lockfile", lockfile, tmp_path / "out")
    assert_ok(r)
    _warned(r.stderr)
    assert (tmp_path / "out" / "index.json").is_file()
