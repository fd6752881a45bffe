"""Issue 23: real DotSlash files and rules_multitool lockfiles (tests/data/realworld, copied
from public repositories) import, verify and run as DotSlash itself runs them.

Each file's artifacts are rebuilt locally (tests/support/realworld.py: same format, path,
size and digest algorithm) and served over loopback; each file is rewritten to point at them.
Then, per file:

* the real DotSlash (PyPI ``dotslash``) runs it — this proves the harness — and
  ``toolfetch import-dotslash`` + ``lock`` + ``run`` must print the same thing;
* served a tampered artifact (same size and format, other bytes) for the host, DotSlash
  refuses it and toolfetch must exit 3 naming the tool, platform and URL: at ``lock``
  (writing no lockfile) when ``lock`` downloads it, else at ``run``, before running it;
* every multitool tool with a linux/x86_64 binary imports, locks and runs.

``test_migration_cost`` measures what ``lock`` downloads for the whole corpus (issue 23,
item 5) and prints it.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import realworld
import rebuild
from assetserver import AssetServer
from realworld import World
from tf import run_toolfetch

pytestmark = pytest.mark.realworld

if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
    pytest.skip("the corpus's host entries are linux-x86_64", allow_module_level=True)

ARGS = ("first arg", "--second")
DOTSLASH_FILES = realworld.dotslash_files()
HOST_FILES = [f for f in DOTSLASH_FILES
              if realworld.DOTSLASH_HOST in realworld.read_dotslash(f)["platforms"]]
MULTITOOL_FILES = realworld.multitool_files()


def _ids(files: list[Path]) -> list[str]:
    return [f.name for f in files]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    server = AssetServer()
    w = World(tmp_path_factory.mktemp("realworld-artifacts"), server)
    yield w
    w.close()
    server.close()


def _dotslash_bin() -> str:
    import dotslash

    return str(dotslash.locate())


@pytest.fixture(autouse=True)
def _drop_caches(tmp_path: Path) -> Iterator[None]:
    """Each test's toolfetch and DotSlash caches go when it ends: at declared sizes they
    would hold the corpus several times over (tens of GB) until pytest's clean-up."""
    yield
    for cache in (tmp_path / "tf-cache", tmp_path / "ds-cache"):
        shutil.rmtree(cache, ignore_errors=True)


def run_dotslash(file: Path, cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DOTSLASH_CACHE=str(cache))
    return subprocess.run([_dotslash_bin(), str(file), *args], env=env, capture_output=True,
                          text=True, timeout=300)


class Toolfetch:
    """toolfetch with a private tools.yaml, lockfile and cache in one directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config, self.lockfile = root / "tools.yaml", root / "tools.lock.json"
        self.cache = root / "tf-cache"

    def __call__(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return run_toolfetch("--cache-dir", self.cache, *args,
                             env={"TOOLFETCH_CACHE_DIR": str(self.cache)}, timeout=600)

    def files(self) -> tuple[str | Path, ...]:
        return ("--config", self.config, "--lockfile", self.lockfile)

    def import_(self, kind: str, file: Path) -> subprocess.CompletedProcess[str]:
        return self(f"import-{kind}", file, *self.files())

    def lock(self) -> subprocess.CompletedProcess[str]:
        return self("lock", *self.files())

    def run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        return self("run", "--lockfile", self.lockfile, tool, "--", *args)


def _host_member(corpus_file: Path) -> str:
    entry = realworld.read_dotslash(corpus_file)["platforms"][realworld.DOTSLASH_HOST]
    return realworld.dotslash_member(entry)


def _explain(step: str, r: subprocess.CompletedProcess[str]) -> str:
    return f"{step}: exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"


# -- the harness: rebuilt artifacts are what they claim to be ----------------------------------

@pytest.mark.parametrize("fmt", ["", "gz", "xz", "zst", "tar", "tar.gz", "tgz", "tar.xz",
                                 "tar.zst", "zip"])
def test_rebuilt_artifact_has_the_format_path_and_size(fmt: str) -> None:
    """Independent decoders (Python's) find the executable at its path in an artifact of
    exactly the size asked for (sizes off the 64 KiB and 128 KiB blocks of gzip and zstd)."""
    import gzip
    import io
    import lzma
    import tarfile
    import zipfile

    import zstandard

    members = ("bin/tool", "other/tool2") if fmt.startswith("t") or fmt == "zip" else ("tool",)
    for size in (66048, 1_000_448, 3 * 1024 * 1024 + 512):  # multiples of 512, as a tar is
        spec = realworld.Spec(f"https://example.invalid/a.{fmt}", "0" * 64, fmt, "sha256",
                              size, members)
        data = rebuild.fit(spec, "test")
        assert len(data) == size, (fmt, size)
        if fmt in ("zst", "tar.zst"):
            data = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
        elif fmt in ("gz", "xz"):
            data = (gzip.decompress if fmt == "gz" else lzma.decompress)(data)
        if fmt == "zip":
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                got = {m: z.read(m) for m in members}
                assert (z.getinfo(members[0]).external_attr >> 16) & 0o111
        elif fmt.startswith("t"):
            with tarfile.open(fileobj=io.BytesIO(data)) as t:
                got = {m: t.extractfile(m).read() for m in members}  # type: ignore[union-attr]
                assert t.getmember(members[0]).mode & 0o111
        else:
            got = {members[0]: data}
        for m in members:
            assert got[m].startswith(rebuild.script(m)), (fmt, m)


# -- DotSlash files -----------------------------------------------------------------------------

@pytest.mark.parametrize("corpus_file", HOST_FILES, ids=_ids(HOST_FILES))
def test_dotslash_runs_the_rebuilt_file(world: World, corpus_file: Path, tmp_path: Path) -> None:
    """The harness itself: the real DotSlash runs each rewritten file and prints the marker of
    the host artifact's executable."""
    tool = realworld.tool_name(corpus_file)
    world.dotslash(corpus_file, tmp_path / tool)
    r = run_dotslash(tmp_path / tool, tmp_path / "ds-cache", *ARGS)
    assert r.returncode == 0, _explain("dotslash", r)
    assert r.stdout == realworld.marker(_host_member(corpus_file), ARGS)


@pytest.mark.parametrize("corpus_file", HOST_FILES, ids=_ids(HOST_FILES))
def test_toolfetch_prints_what_dotslash_prints(world: World, corpus_file: Path,
                                               tmp_path: Path) -> None:
    tool = realworld.tool_name(corpus_file)
    world.dotslash(corpus_file, tmp_path / tool)
    peer = run_dotslash(tmp_path / tool, tmp_path / "ds-cache", *ARGS)
    assert peer.returncode == 0, _explain("dotslash (the peer)", peer)

    tf = Toolfetch(tmp_path)
    for step, r in (("import-dotslash", lambda: tf.import_("dotslash", tmp_path / tool)),
                    ("lock", tf.lock), ("run", lambda: tf.run(tool, *ARGS))):
        done = r()
        assert done.returncode == 0, _explain(f"toolfetch {step}", done)
    assert done.stdout == peer.stdout


@pytest.mark.parametrize("corpus_file", HOST_FILES, ids=_ids(HOST_FILES))
def test_tampered_artifact_is_refused(world: World, corpus_file: Path, tmp_path: Path) -> None:
    """Same size and format, other bytes, at the host platform's URL: DotSlash refuses it
    (`incorrect digest`), and toolfetch exits 3 naming the tool, the platform and the URL
    without running it.  Where `lock` downloads the artifact it must refuse there and write
    no lockfile; a `lock` that pins the declared digest without downloading (issue 23, item
    5 allows it) must leave the refusal to `run`, before anything runs."""
    tool = realworld.tool_name(corpus_file)
    built = world.dotslash(corpus_file, tmp_path / tool,
                           tamper=lambda key: key == realworld.DOTSLASH_HOST)
    bad_url = world.url(built[realworld.DOTSLASH_HOST].tampered_url_path)

    peer = run_dotslash(tmp_path / tool, tmp_path / "ds-cache", *ARGS)
    assert peer.returncode != 0, _explain("dotslash ran a tampered artifact", peer)
    assert "incorrect digest" in peer.stderr and "realworld" not in peer.stdout

    tf = Toolfetch(tmp_path)
    imported = tf.import_("dotslash", tmp_path / tool)
    assert imported.returncode == 0, _explain("toolfetch import-dotslash", imported)
    downloads = len(world.server.requests(built[realworld.DOTSLASH_HOST].tampered_url_path))
    locked = tf.lock()
    fetched_at_lock = len(world.server.requests(
        built[realworld.DOTSLASH_HOST].tampered_url_path)) > downloads
    if locked.returncode == 0 and not fetched_at_lock:
        refused = tf.run(tool, *ARGS)
        step = "toolfetch run of a tampered artifact (lock did not download it)"
    else:
        refused, step = locked, "toolfetch lock of a tampered artifact"
        assert not tf.lockfile.exists(), "lock wrote a lockfile pinning a tampered artifact"
    assert refused.returncode == 3, _explain(step, refused)
    assert "realworld" not in refused.stdout
    for needle in (tool, "linux/amd64", bad_url):
        assert needle in refused.stderr, f"{step}: {needle!r} not named:\n{refused.stderr}"


# -- rules_multitool lockfiles ------------------------------------------------------------------

def _host_tools(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Tool -> its linux/x86_64 binary."""
    out = {}
    for tool, entry in data.items():
        for b in [] if tool.startswith("$") else entry["binaries"]:
            if (b["os"], b["cpu"]) == realworld.MULTITOOL_HOST:
                out[tool] = b
    return out


@pytest.mark.parametrize("corpus_file", MULTITOOL_FILES, ids=_ids(MULTITOOL_FILES))
def test_multitool_tools_import_lock_and_run(world: World, corpus_file: Path,
                                             tmp_path: Path) -> None:
    host_tools = _host_tools(json.loads(corpus_file.read_text()))
    if not host_tools:
        pytest.skip(f"{corpus_file.name} has no linux/x86_64 binary")
    lockfile = tmp_path / "multitool.lock.json"
    world.multitool(corpus_file, lockfile)
    tf = Toolfetch(tmp_path)
    for step, r in (("import-multitool", lambda: tf.import_("multitool", lockfile)),
                    ("lock", tf.lock)):
        done = r()
        assert done.returncode == 0, _explain(f"toolfetch {step}", done)
    wrong = []
    for tool, binary in sorted(host_tools.items()):
        ran = tf.run(tool, *ARGS)
        want = realworld.marker(realworld.member_of(tool, binary), ARGS)
        if ran.returncode != 0 or ran.stdout != want:
            wrong.append(f"{tool}: wanted {want!r}\n" + _explain("toolfetch run", ran))
    assert not wrong, "\n".join(wrong)


# -- issue 23, item 5: what `lock` downloads for the whole corpus -------------------------------

def test_migration_cost(world: World, tmp_path: Path) -> None:
    """Migrate every corpus file as its project would (its own tools.yaml: the corpus has ten
    tools named buck2) and lock it; report the bytes `lock` downloads against the bytes of the
    host platform only, and the wall time of `lock`.  Files the importers refuse are left
    out of the numbers and listed."""
    report: dict[str, Any] = {"max_bytes_per_artifact": realworld.max_bytes(), "locked": 0,
                              "lock_downloaded_bytes": 0, "host_platform_bytes": 0,
                              "lock_wall_seconds": 0.0, "refused": [], "lock_failed": []}
    for f in [*DOTSLASH_FILES, *MULTITOOL_FILES]:
        work = tmp_path / f.name
        if f in MULTITOOL_FILES:
            built = world.multitool(f, work / "multitool.lock.json")
            host = {a.url_path: a.size for (_, os_, cpu), a in built.items()
                    if (os_, cpu) == realworld.MULTITOOL_HOST}
            kind, source = "multitool", work / "multitool.lock.json"
        else:
            source = work / realworld.tool_name(f)
            built_ds = world.dotslash(f, source)
            host = {a.url_path: a.size for key, a in built_ds.items()
                    if key == realworld.DOTSLASH_HOST}
            kind = "dotslash"
        tf = Toolfetch(work)
        imported = tf.import_(kind, source)
        if imported.returncode != 0:
            report["refused"].append(f"{f.name}: {imported.stderr.strip()[-200:]}")
            continue
        before = sum(world.server.sent.values())
        start = time.monotonic()
        locked = tf.lock()
        report["lock_wall_seconds"] += time.monotonic() - start
        report["lock_downloaded_bytes"] += sum(world.server.sent.values()) - before
        if locked.returncode != 0:
            report["lock_failed"].append(f"{f.name}: {locked.stderr.strip()[-200:]}")
            continue
        report["locked"] += 1
        report["host_platform_bytes"] += sum(host.values())
        shutil.rmtree(tf.cache, ignore_errors=True)  # 3.4 GB of caches otherwise
    report["lock_wall_seconds"] = round(report["lock_wall_seconds"], 2)
    print("realworld migration:", json.dumps(report, indent=2))
    assert not report["lock_failed"], "lock failed:\n" + "\n".join(report["lock_failed"])
    assert not report["refused"], "importers refused:\n" + "\n".join(report["refused"])
