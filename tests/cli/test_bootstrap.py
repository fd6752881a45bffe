"""Issue 6: developer bootstrap from a clean clone, launchers, and the bundled example."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ocischema import validate_layout
from tf import REPO, assert_error, assert_ok, copy_example, run_toolfetch

from toolfetch.ops.bootstrap import posix_launcher

ROOT = REPO


def _clone(tmp_path: Path) -> Path:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    # Uncommitted work in progress would not be in the clone; tests run on what is committed
    # in CI, but locally copy the working tree's versions of the files bootstrap uses.
    for rel in ("tools/bootstrap", "tools/scripts", "pyproject.toml", "lockfiles"):
        src, dst = ROOT / rel, clone / rel
        if src.is_dir():
            shutil.rmtree(dst, ignore_errors=True)
            shutil.copytree(src, dst)
        else:
            shutil.copy2(src, dst)
    shutil.rmtree(clone / "tools" / "toolfetch")
    shutil.copytree(ROOT / "tools" / "toolfetch", clone / "tools" / "toolfetch",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return clone


@pytest.mark.timeout(600)
def test_bootstrap_from_a_clean_clone_offline_registry(tmp_path: Path) -> None:
    clone = _clone(tmp_path)
    home = tmp_path / "fresh-home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOOLFETCH_", "XDG_"))}
    env.update(HOME=str(home), PYTHON=sys.executable,
               # No registry may be contacted: the example is served from lockfiles/registry,
               # and offline mode only allows oci-layout sources.
               TOOLFETCH_OFFLINE="1")
    first = subprocess.run(["tools/bootstrap"], cwd=clone, env=env, capture_output=True,
                           text=True, timeout=540)
    assert first.returncode == 0, first.stderr
    assert f"launchers in {clone / 'bin'}" in first.stdout
    assert f'export PATH="{clone / "bin"}:$PATH"' in first.stdout
    cache = home / ".cache" / "toolfetch"
    assert (cache / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f0688")
    for tool, needle in (("hello", "Hello from toolfetch!"), ("greet", "greetings from"),
                         ("say", "say: hello")):
        p = subprocess.run([str(clone / "bin" / tool)], capture_output=True, text=True,
                           env=env, timeout=30)
        assert p.returncode == 0, p.stderr
        assert needle in p.stdout
    # Re-running is a fast no-op: nothing reinstalled, no launcher rewritten.
    start = time.monotonic()
    again = subprocess.run(["tools/bootstrap"], cwd=clone, env=env, capture_output=True,
                           text=True, timeout=120)
    elapsed = time.monotonic() - start
    assert again.returncode == 0, again.stderr
    assert "(0 updated)" in again.stdout
    assert "installing" not in again.stderr
    assert elapsed < 20  # generous: a no-op must not reinstall (the first run takes ~15 s+)


@pytest.mark.timeout(300)
def test_bootstrap_says_what_needs_the_network(tmp_path: Path) -> None:
    """Only pip's first install needs a package index; without one, bootstrap says so."""
    clone = _clone(tmp_path)
    home = tmp_path / "fresh-home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TOOLFETCH_", "XDG_", "PIP_", "VIRTUAL_ENV"))}
    env.update(HOME=str(home), PYTHON=sys.executable, PIP_INDEX_URL="http://127.0.0.1:9/simple",
               PIP_RETRIES="0", PIP_TIMEOUT="2", PIP_NO_CACHE_DIR="1", TOOLFETCH_OFFLINE="1")
    r = subprocess.run(["tools/bootstrap"], cwd=clone, env=env, capture_output=True, text=True,
                       timeout=240)
    assert r.returncode == 6, r.stderr
    assert "package index" in r.stderr and "PIP_INDEX_URL" in r.stderr
    assert "nothing else in bootstrap uses the network" in " ".join(r.stderr.split())
    assert not (clone / "bin").exists()
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "needs a package index" in readme


def test_launchers_pass_argv_and_exit_code(tmp_path: Path) -> None:
    lockfile = copy_example(tmp_path)
    bin_dir = tmp_path / "bin"
    assert_ok(run_toolfetch("bootstrap", "--lockfile", lockfile, "--bin-dir", bin_dir))
    p = subprocess.run([str(bin_dir / "say"), "two words", "x"], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout == "say: two words x\n"
    p = subprocess.run([str(bin_dir / "hello"), "a b", "c"], capture_output=True, text=True)
    assert "args: a b c" in p.stdout
    # The exit code passes through: use a launcher around a tool that fails.
    exe = Path(json.loads(run_toolfetch("which", "--json", "say", "--lockfile",
                                        lockfile).stdout)["path"])
    failing = tmp_path / "fail.sh"
    failing.write_text("#!/bin/sh\necho \"got $#: $*\"\nexit 42\n")
    failing.chmod(0o755)
    snapshot = tmp_path / "snapshot.json"
    shutil.copyfile(lockfile, snapshot)
    text = posix_launcher("fail", failing, tmp_path / "none.json", lockfile, snapshot,
                          tmp_path / "c")
    launcher = bin_dir / "fail"
    launcher.write_text(text)
    launcher.chmod(0o755)
    p = subprocess.run([str(launcher), "1", "2 3"], capture_output=True, text=True)
    assert p.returncode == 42 and p.stdout == "got 2: 1 2 3\n"
    assert exe.is_file()


def test_launcher_hit_path_runs_no_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    """With the tree present, the launcher execs the binary: a broken fallback never runs."""
    lockfile = copy_example(tmp_path)
    exe = Path(json.loads(run_toolfetch("which", "--json", "say", "--lockfile",
                                        lockfile).stdout)["path"])
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    launcher = tmp_path / "say"
    snapshot = tmp_path / "snapshot.json"
    shutil.copyfile(lockfile, snapshot)
    launcher.write_text(posix_launcher("say", exe, tmp_path / "r.json", lockfile, snapshot,
                                       tmp_path))
    launcher.chmod(0o755)
    p = subprocess.run([str(launcher), "hi"], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout == "say: hi\n", p.stderr
    # Other lockfile content: it must not trust the baked-in path any more.
    lockfile.write_text(lockfile.read_text() + " ")
    p = subprocess.run([str(launcher), "hi"], capture_output=True, text=True)
    assert p.returncode == 127 and "/nonexistent/python" in p.stderr


def test_launcher_records_the_use_without_starting_a_process(tmp_path: Path) -> None:
    """The hit path is builtins only: with PATH empty (no `touch` to find) the tool still runs
    and its tree's .used marker gets the run's time, which gc reads as the last use."""
    lockfile = copy_example(tmp_path)
    bin_dir = tmp_path / "bin"
    assert_ok(run_toolfetch("bootstrap", "--lockfile", lockfile, "--bin-dir", bin_dir))
    tree = Path(json.loads(run_toolfetch("which", "--json", "say", "--lockfile",
                                         lockfile).stdout)["tree"])
    used = tree.with_name(tree.name + ".used")
    old = time.time() - 5 * 86400
    if used.exists():
        os.utime(used, (old, old))
    os.utime(tree.with_name(tree.name + ".json"), (old, old))
    launcher = (bin_dir / "say").read_text()
    assert "touch" not in launcher
    p = subprocess.run(["/bin/sh", str(bin_dir / "say"), "hi"], capture_output=True, text=True,
                       env={"PATH": ""})
    assert p.returncode == 0 and p.stdout == "say: hi\n", p.stderr
    assert used.stat().st_mtime > time.time() - 60 and used.stat().st_size == 0
    r = run_toolfetch("cache", "gc", "--unused-for", "1d", "--json",
                      env={"TOOLFETCH_GC_GRACE": "0"})
    assert_ok(r)
    assert tree.name not in r.stdout  # used a moment ago, by the launcher: kept
    # a marker that cannot be written (a read-only cache) is no error: the tool still runs
    exe = tree / "say"
    odd = tmp_path / "odd"
    snapshot = next((bin_dir / ".toolfetch").iterdir())
    odd.write_text(posix_launcher("say", exe, tmp_path / "no" / "such" / "x.used", lockfile,
                                  snapshot, tmp_path))
    odd.chmod(0o755)
    p = subprocess.run([str(odd), "x"], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout == "say: x\n" and p.stderr == "", p.stderr


def test_launcher_falls_back_to_fetch_when_the_cache_is_gone(tmp_path: Path) -> None:
    lockfile = copy_example(tmp_path)
    bin_dir = tmp_path / "bin"
    assert_ok(run_toolfetch("bootstrap", "--lockfile", lockfile, "--bin-dir", bin_dir))
    cache = Path(os.environ["TOOLFETCH_CACHE_DIR"])
    assert_ok(run_toolfetch("cache", "gc", "--unused-for", "0s",
                            env={"TOOLFETCH_GC_GRACE": "0"}))
    assert not any((cache / "trees").rglob("*.json"))
    p = subprocess.run([str(bin_dir / "greet")], capture_output=True, text=True)
    assert p.returncode == 0 and "greetings from toolfetch" in p.stdout, p.stderr
    assert any((cache / "trees").rglob("*.json"))  # fetched again by the fallback


def test_bootstrap_rerun_rewrites_launchers_after_a_lock_change(tmp_path: Path) -> None:
    lockfile = copy_example(tmp_path)
    bin_dir = tmp_path / "bin"
    assert_ok(run_toolfetch("bootstrap", "--lockfile", lockfile, "--bin-dir", bin_dir))
    before = (bin_dir / "say").read_text()
    data = json.loads(lockfile.read_text())
    del data["tools"]["hello"]
    lockfile.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    r = run_toolfetch("bootstrap", "--lockfile", lockfile, "--bin-dir", bin_dir)
    assert_ok(r)
    assert "2 tools" in r.stdout
    # every launcher names the lockfile content it was written for: say's is rewritten too
    # (it runs the same tree), and only the new content's copy is left
    after = (bin_dir / "say").read_text()
    exe_line = [line for line in before.splitlines() if line.startswith("exe=")]
    assert after != before and exe_line == [
        line for line in after.splitlines() if line.startswith("exe=")]
    # hello's launcher (the tool is gone) still names the old copy, which is kept: it
    # compares unequal now, so the launcher asks `toolfetch run`, which knows no hello
    assert len(list((bin_dir / ".toolfetch").iterdir())) == 2
    p = subprocess.run([str(bin_dir / "hello")], capture_output=True, text=True)
    assert p.returncode == 4 and "hello" in p.stderr, p.stderr
    (bin_dir / "hello").unlink()
    assert_ok(run_toolfetch("bootstrap", "--lockfile", lockfile, "--bin-dir", bin_dir))
    assert len(list((bin_dir / ".toolfetch").iterdir())) == 1


def test_bootstrap_refuses_a_broken_lockfile_and_writes_nothing(tmp_path: Path) -> None:
    lockfile = copy_example(tmp_path)
    data = json.loads(lockfile.read_text())
    data["tools"]["say"]["platforms"]["*"]["manifest"] = "sha256:nothex"
    lockfile.write_text(json.dumps(data))
    bin_dir = tmp_path / "bin"
    r = run_toolfetch("bootstrap", "--lockfile", lockfile, "--bin-dir", bin_dir)
    assert_error(r, 2, str(lockfile), "manifest")
    assert not bin_dir.exists()


def test_example_registry_is_reproducible(tmp_path: Path) -> None:
    """tools/make-example-registry regenerates lockfiles/registry byte-identically, and the
    committed lockfile is up to date with tools.yaml."""
    work = tmp_path / "repo"
    (work / "tools").mkdir(parents=True)
    shutil.copy2(ROOT / "tools" / "make-example-registry", work / "tools")
    subprocess.run([sys.executable, str(work / "tools" / "make-example-registry")], check=True,
                   capture_output=True)

    def digest_tree(root: Path) -> dict[str, str]:
        return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(root.rglob("*")) if p.is_file()}

    assert digest_tree(work / "lockfiles" / "registry") == digest_tree(ROOT / "lockfiles" /
                                                                       "registry")
    total = sum(p.stat().st_size for p in (ROOT / "lockfiles" / "registry").rglob("*")
                if p.is_file())
    assert total < 64 * 1024  # kilobytes, not megabytes
    r = run_toolfetch("lock", "--check", "--lockfile", ROOT / "lockfiles" / "tools.lock.json")
    assert_ok(r)


def test_example_layout_is_a_valid_oci_layout() -> None:
    """oci-layout, index.json and every manifest against the OCI schemas; every blob present,
    named by its digest and of its descriptor's size."""
    index = validate_layout(ROOT / "lockfiles" / "registry")
    assert {m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]} \
        >= {"hello-1.0", "say-1.0", "greet-1.0-windows-amd64"}


def test_a_symlinked_lockfile_resolves_layout_refs_from_its_real_directory(
    tmp_path: Path,
) -> None:
    """Build systems symlink lockfiles into their own trees; relative oci-layout: refs must
    still resolve beside the real file."""
    lockfile = copy_example(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "tools.lock.json").symlink_to(lockfile)
    r = run_toolfetch("which", "say", "--lockfile", elsewhere / "tools.lock.json")
    assert_ok(r)
    p = subprocess.run([r.stdout.strip()], capture_output=True, text=True)
    assert p.stdout == "say: hello\n"


def test_layout_reference_without_a_directory_is_refused() -> None:
    r = run_toolfetch("which", "x", "--lockfile", "/nonexistent.json")
    assert r.returncode == 2
    from toolfetch.core.errors import UsageError
    from toolfetch.core.reference import LayoutReference

    with pytest.raises(UsageError, match="missing directory"):
        LayoutReference.parse("oci-layout::tag")
