"""Helpers for toolfetch's own tests: run the CLI (in a subprocess or in-process), write
tools.yaml files, tool payloads, and independent checks of the cache layout (docs/design.md,
"The cache").

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
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]  # the repository root
TESTS = REPO / "tests"
SUPPORT = TESTS / "support"  # these helpers and the Starlark fakes
HEAVY = frozenset({"requests", "jsonschema", "yaml"})
HEX64 = re.compile(r"[0-9a-f]{64}")
TRACEBACK = "Traceback (most recent call last)"


def run_toolfetch(
    *args: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    input: str | None = None,
    timeout: float = 120,
    stdout: int | None = None,
) -> subprocess.CompletedProcess[str]:
    """``python -m toolfetch ARGS…`` with the (hermetic) test environment plus *env*; stdout
    and stderr captured, or stdout to the file descriptor *stdout*."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "toolfetch", *map(str, args)],
        env=full_env,
        cwd=cwd,
        input=input,
        stdout=subprocess.PIPE if stdout is None else stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=timeout,
    )


@dataclasses.dataclass
class Result:
    """What an in-process ``cli.main`` call returned and printed."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def text(self) -> str:
        return self.stdout + self.stderr


def tf_main(*args: str | os.PathLike[str], stdin: str | None = None) -> Result:
    """``toolfetch.cli.main(ARGS)`` in this process (fast), capturing stdout/stderr; the one
    in-process runner of the tests (a fresh transport per call, as a new process has).

    Not for ``run`` (it execs).  The logging handler ``main`` installs is removed again.
    """
    from toolfetch import cli

    out, err = io.StringIO(), io.StringIO()
    logger = logging.getLogger("toolfetch")
    before = list(logger.handlers)
    old_stdin = sys.stdin
    try:
        if stdin is not None:
            sys.stdin = io.StringIO(stdin)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = cli.main([str(a) for a in args])
            except SystemExit as e:  # argparse
                rc = e.code if isinstance(e.code, int) else 1
    finally:
        sys.stdin = old_stdin
        for h in list(logger.handlers):
            if h not in before:
                logger.removeHandler(h)
    return Result(rc, out.getvalue(), err.getvalue())


def gc_report(*args: str | os.PathLike[str]) -> dict[str, Any]:
    """``cache gc --json ARGS…`` in this process; its report, after checking it exited 0."""
    r = tf_main("cache", "gc", "--json", *args)
    assert_ok(r)
    report: dict[str, Any] = json.loads(r.stdout)
    return report


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


IMAGE_LAYER_TYPES = frozenset(
    [f"application/vnd.oci.image.layer.{kind}v1.tar{suffix}" for kind in ("", "nondistributable.")
     for suffix in ("", "+gzip", "+zstd")]
    + ["application/vnd.docker.image.rootfs.diff.tar.gzip",
       "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"])


def recipe_digest(recipe: Mapping[str, Any]) -> str:
    text = json.dumps(recipe, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + sha256_hex(text.encode())


def tree_key(layers: list[Mapping[str, Any]]) -> str:
    """The key of the tree of these lockfile layers, as docs/design.md defines it (recomputed
    here, not asked of toolfetch): sha256 of the canonical JSON recipe."""
    steps = []
    for layer in layers:
        unpack, title = layer["unpack"], layer.get("title")
        media = layer["mediaType"].split(";")[0].strip().lower()
        whiteouts = unpack in ("tar", "tar+gzip", "tar+zstd") and title is None and (
            media in IMAGE_LAYER_TYPES)
        steps.append([layer["digest"], unpack, title if unpack == "raw" else None, whiteouts])
    return recipe_digest({"rules": 3, "layers": steps})


def tree_of(cache: Path, entry: Mapping[str, Any]) -> Path:
    """Where the tree of a lockfile platform entry lives."""
    return sharded(cache, "trees", tree_key(entry["layers"]))


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
    """Assert the cache layout (docs/design.md): every blob named by its own digest at
    blobs/sha256/ab/cd/<hex>, read-only; every tree at trees/sha256/ab/cd/<key>/ with a
    <key>.json record beside it whose recipe hashes to the key and whose file list matches
    the tree; CACHEDIR.TAG present; tmp/ empty."""
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
        assert record["key"] == digest == recipe_digest(record["recipe"])
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
heavy = [m for m in sys.modules if m.split(".")[0] in {heavy!r}]  # in import order
sys.stdout.write("HEAVY " + json.dumps(heavy) + "\\n")
sys.exit(rc)
""".replace("{heavy!r}", repr(set(HEAVY)))


def probe_heavy_imports(
    *args: str | os.PathLike[str], run: bool = False, env: Mapping[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run ``cli.main(ARGS)`` in a fresh interpreter; return the heavy modules it imported,
    in the order it imported them (after ``main`` returned).

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


# --------------------------------------------------------------------------------------
# The tool kinds the integration tests push: an OCI index of tar.gz image manifests, a
# Docker manifest list, an ORAS raw file (oras's default ...layer.v1.tar type), an index of
# ORAS zip artifacts, and a real tar labelled with oras's default type.
# --------------------------------------------------------------------------------------


def host() -> str:
    from toolfetch.core.platform import host_platform

    return str(host_platform())


def other_platform() -> str:
    return "linux/arm64" if host() != "linux/arm64" else "linux/amd64"


@dataclasses.dataclass
class Pushed:
    """One tool as pushed, with everything a lockfile entry must say about it."""

    name: str
    ref: str
    path: str
    unpack: str
    exit_code: int
    index: str | None  # index digest, None for a single manifest (locked as "*")
    manifests: dict[str, str]  # lock key -> manifest digest
    layers: dict[str, list[dict[str, Any]]]  # lock key -> layer descriptors
    executables: dict[str, bytes]  # lock key -> bytes of the executable
    media_type: str  # of the top-level manifest / index

    def config(self, with_path: bool = True) -> dict[str, str]:
        return {"ref": self.ref, "path": self.path} if with_path else {"ref": self.ref}

    def expect(self, key: str) -> str:
        """What the executable prints first on *key*."""
        return f"{self.name}-{key}"


def push_kinds(reg: Any, base: str, tag: str = "1", salt: str = "") -> dict[str, Pushed]:
    """Push the five kinds under repositories ``base/<kind>``; return them by tool name.

    *salt* changes every payload (for re-tag-to-new-content tests).
    """
    import ocitest

    plats = [host(), other_platform()]
    out: dict[str, Pushed] = {}

    def exe(name: str, key: str, code: int) -> bytes:
        return script(f"{name}-{key}", code) + f"# {salt}\n".encode()

    def from_index(name: str, idx: Any, path: str, unpack: str, code: int,
                   exes: dict[str, bytes]) -> None:
        out[name] = Pushed(name, idx.ref, path, unpack, code, idx.index_digest,
                           dict(idx.manifests), {k: list(v) for k, v in idx.layers.items()},
                           exes, idx.media_type)

    # 1. OCI index of image manifests with one tar.gz layer each
    exes = {p: exe("idx", p, 0) for p in plats}
    idx = ocitest.push_tool_index(reg, f"{base}/idx", tag, {
        p: ocitest.targz({"bin/": (b"", 0o755), "bin/idx": (exes[p], 0o755),
                          "share/readme.txt": f"readme {p}".encode()})
        for p in plats})
    from_index("idx", idx, "bin/idx", "tar+gzip", 0, exes)

    # 2. the same as a Docker manifest list
    exes = {p: exe("dock", p, 11) for p in plats}
    idx = ocitest.push_tool_index(reg, f"{base}/dock", tag,
                                  {p: {"dock": exes[p]} for p in plats}, docker=True)
    from_index("dock", idx, "dock", "tar+gzip", 11, exes)

    # 3. an ORAS raw file with oras's default layer type, a single manifest
    data = exe("raw", "*", 12)
    art = ocitest.oras_artifact({"raw": data},
                                layer_media_type=ocitest.ORAS_DEFAULT_LAYER_MEDIA_TYPE)
    ocitest.push_artifact(reg, f"{base}/raw", tag, art)
    out["raw"] = Pushed("raw", reg.ref(f"{base}/raw", tag), "raw", "raw", 12, None,
                        {"*": art.digest}, {"*": art.layers}, {"*": data}, art.media_type)

    # 4. an index of ORAS artifacts holding a zip each
    exes = {p: exe("zip", p, 13) for p in plats}
    idx = ocitest.push_tool_index(reg, f"{base}/zip", tag, {
        p: ocitest.oras_artifact({"zip.zip": ocitest.zipbytes({
            "bin/": (b"", 0o755), "bin/zip": (exes[p], 0o755)})}) for p in plats})
    from_index("zip", idx, "bin/zip", "zip", 13, exes)

    # 5. a real tar labelled with oras's default type (title without .tar: sniffed)
    data = exe("tar", "*", 14)
    art = ocitest.oras_artifact({"bundle": ocitest.tarbytes({"tar": (data, 0o755)})},
                                layer_media_type=ocitest.ORAS_DEFAULT_LAYER_MEDIA_TYPE)
    ocitest.push_artifact(reg, f"{base}/tar", tag, art)
    out["tar"] = Pushed("tar", reg.ref(f"{base}/tar", tag), "tar", "tar", 14, None,
                        {"*": art.digest}, {"*": art.layers}, {"*": data}, art.media_type)
    return out


def tools_config(pushed: Mapping[str, Pushed], **extra: Any) -> dict[str, Any]:
    return {"tools": {n: p.config() for n, p in pushed.items()}, **extra}


def expected_entry(p: Pushed, key: str) -> dict[str, Any]:
    """The lockfile entry toolfetch must write for *p* on *key* (computed independently)."""
    entry: dict[str, Any] = {
        "layers": [],
        "manifest": p.manifests[key],
        "path": p.path,
        "ref": p.ref,
    }
    if p.index is not None:
        entry["index"] = p.index
    for desc in p.layers[key]:
        layer = {"digest": desc["digest"], "mediaType": desc["mediaType"], "size": desc["size"],
                 "unpack": p.unpack}
        title = (desc.get("annotations") or {}).get("org.opencontainers.image.title")
        if title is not None:
            layer["title"] = title
        entry["layers"].append(layer)
    return entry


def copy_example(tmp_path: Path) -> Path:
    """A private copy of the repository's lockfiles/ (the example tools); its tools.lock.json."""
    dest = tmp_path / "lockfiles"
    shutil.copytree(REPO / "lockfiles", dest)
    return dest / "tools.lock.json"


def du_files(root: Path) -> int:
    """Apparent bytes of the files and symlinks under root, each inode once (as `du -b`
    without directories)."""
    seen, total = set(), 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
            st = os.lstat(os.path.join(dirpath, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs",
                        str(path)], capture_output=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount tmpfs: {p.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)
