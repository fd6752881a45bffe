"""Helpers for toolfetch's own tests: run the CLI (in a subprocess or in-process), write
tools.yaml files, tool payloads, and independent checks of the cache layout (DESIGN §4).

Nothing here trusts toolfetch: digests are recomputed with hashlib.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

HEAVY = frozenset({"requests", "jsonschema", "yaml"})
HEX64 = re.compile(r"[0-9a-f]{64}")
TRACEBACK = "Traceback (most recent call last)"


def run_toolfetch(
    *args: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    input: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """``python -m toolfetch ARGS…`` with the (hermetic) test environment plus *env*."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "toolfetch", *map(str, args)],
        env=full_env,
        cwd=cwd,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@dataclasses.dataclass
class Result:
    """What an in-process ``cli.main`` call returned and printed."""

    returncode: int
    stdout: str
    stderr: str


def tf_main(*args: str | os.PathLike[str]) -> Result:
    """``toolfetch.cli.main(ARGS)`` in this process (fast), capturing stdout/stderr.

    Not for ``run`` (it execs).  The logging handler ``main`` installs is removed again.
    """
    from toolfetch import cli

    out, err = io.StringIO(), io.StringIO()
    logger = logging.getLogger("toolfetch")
    before = list(logger.handlers)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = cli.main([str(a) for a in args])
            except SystemExit as e:  # argparse
                rc = e.code if isinstance(e.code, int) else 1
    finally:
        for h in list(logger.handlers):
            if h not in before:
                logger.removeHandler(h)
    return Result(rc, out.getvalue(), err.getvalue())


def assert_error(r: Result | subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    """Exit *code*, an ``error: …`` line on stderr containing every needle, no traceback."""
    assert r.returncode == code, f"exit {r.returncode}, wanted {code}\n{r.stderr}"
    assert "error: " in r.stderr, r.stderr
    assert TRACEBACK not in r.stderr, r.stderr
    for n in needles:
        assert n in r.stderr, f"{n!r} not in stderr:\n{r.stderr}"


def assert_ok(r: Result | subprocess.CompletedProcess[str]) -> None:
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"


def write_config(path: Path, data: Mapping[str, Any]) -> Path:
    """Write tools.yaml (JSON is YAML)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def script(tag: str, exit_code: int = 0) -> bytes:
    """A shell tool that prints its tag and its argv, one per line, and exits *exit_code*."""
    return (
        "#!/bin/sh\n"
        f"echo {tag}\n"
        'for a in "$@"; do printf "arg:%s\\n" "$a"; done\n'
        f"exit {exit_code}\n"
    ).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_hex(path: Path) -> str:
    return sha256_hex(path.read_bytes())


def sharded(cache: Path, kind: str, digest: str) -> Path:
    """``cache/<kind>/sha256/ab/cd/<hex>`` for ``sha256:<hex>``."""
    algo, _, hexd = digest.partition(":")
    assert algo == "sha256" and HEX64.fullmatch(hexd), digest
    return cache / kind / "sha256" / hexd[:2] / hexd[2:4] / hexd


def cache_blobs(cache: Path) -> dict[str, Path]:
    """Every file under blobs/, as ``sha256:<name>`` → path."""
    root = cache / "blobs"
    if not root.exists():
        return {}
    return {f"sha256:{p.name}": p for p in root.rglob("*") if p.is_file()}


def cache_trees(cache: Path) -> dict[str, Path]:
    """Every tree directory under trees/sha256/ab/cd/ as ``sha256:<name>`` → path."""
    root = cache / "trees" / "sha256"
    if not root.exists():
        return {}
    return {
        f"sha256:{p.name}": p
        for p in root.glob("*/*/*")
        if p.is_dir() and not p.is_symlink()
    }


def tmp_entries(cache: Path) -> list[Path]:
    tmp = cache / "tmp"
    return sorted(tmp.iterdir()) if tmp.exists() else []


def check_cache_layout(cache: Path) -> None:
    """Assert DESIGN §4: every blob named by its own digest at blobs/sha256/ab/cd/<hex>,
    read-only; every tree at trees/sha256/ab/cd/<hex>/ with a <hex>.json record beside it
    whose file list matches the tree; CACHEDIR.TAG present; tmp/ empty."""
    tag = (cache / "CACHEDIR.TAG").read_text()
    assert tag.startswith("Signature: 8a477f597d28d172789f06886806bc55")
    for digest, path in cache_blobs(cache).items():
        assert path == sharded(cache, "blobs", digest), path
        assert "sha256:" + file_hex(path) == digest, f"{path} is not named by its own digest"
        assert not path.stat().st_mode & 0o222, f"blob {path} is writable"
    for digest, tree in cache_trees(cache).items():
        assert tree == sharded(cache, "trees", digest), tree
        record_path = tree.with_name(tree.name + ".json")
        assert record_path.is_file(), f"tree {tree} has no record"
        record = json.loads(record_path.read_text())
        assert record["manifest"] == digest
        files = {
            str(p.relative_to(tree)): p for p in tree.rglob("*") if p.is_file() and
            not p.is_symlink()
        }
        listed = {f["path"]: f for f in record["files"] if f["type"] == "file"}
        assert set(listed) == set(files), (sorted(listed), sorted(files))
        for rel, p in files.items():
            assert listed[rel]["digest"] == "sha256:" + file_hex(p)
            assert not p.stat().st_mode & 0o222, f"tree file {p} is writable"
        assert not tree.stat().st_mode & 0o222, f"tree dir {tree} is writable"
    # records only beside existing trees
    for rec in (cache / "trees").rglob("*.json") if (cache / "trees").exists() else []:
        assert rec.with_suffix("").is_dir(), f"orphan record {rec}"
    assert tmp_entries(cache) == [], tmp_entries(cache)


HIT_PATH_PROBE = """
import json, sys
import toolfetch.cli
argv = json.loads(sys.argv[1])
if argv and argv[-1] == "__run__":
    import os
    argv = argv[:-1]
    def fake_execv(path, args):
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})
        sys.stdout.write("EXEC " + json.dumps([str(path), list(args)]) + "\\n")
        sys.stdout.write("HEAVY " + json.dumps(heavy) + "\\n")
        sys.stdout.flush()
        os._exit(0)
    os.execv = fake_execv
rc = toolfetch.cli.main(argv)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})
sys.stdout.write("HEAVY " + json.dumps(heavy) + "\\n")
sys.exit(rc)
""".replace("{heavy!r}", repr(set(HEAVY)))


def probe_heavy_imports(
    *args: str | os.PathLike[str], run: bool = False, env: Mapping[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run ``cli.main(ARGS)`` in a fresh interpreter; return the heavy modules it imported.

    With ``run=True`` ``os.execv`` is replaced by a stub that reports its arguments (line
    ``EXEC [...]``) and the modules imported up to the exec.
    """
    argv = [str(a) for a in args] + (["__run__"] if run else [])
    full_env = dict(os.environ)
    full_env.update(env or {})
    p = subprocess.run(
        [sys.executable, "-c", HIT_PATH_PROBE, json.dumps(argv)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("HEAVY ")]
    assert lines, f"probe printed no HEAVY line (exit {p.returncode}):\n{p.stdout}\n{p.stderr}"
    return p, json.loads(lines[-1][len("HEAVY ") :])
