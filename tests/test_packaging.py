"""The install path of an adopter: build the sdist and wheel as ``python -m build`` does (the
wheel from the sdist, so a file the sdist forgets fails here), install the wheel into a fresh
venv, and run ``toolfetch lock``, ``fetch`` and ``run`` from another repository against the
loopback registry.

Offline: ``--no-isolation`` builds with this venv's setuptools and wheel, and the fresh venv
finds toolfetch's dependencies through a ``.pth`` line naming this venv's site-packages (a
line in a ``.pth`` file only extends ``sys.path``; the editable install's own ``.pth`` there
is not processed, so the wheel's toolfetch is the one imported, which the test checks).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import ocitest
import pytest
from tf import REPO, host, script, write_config

pytestmark = pytest.mark.slow


def _sources(dest: Path) -> Path:
    """What the package is built from, copied away from the checkout (no build/ or
    egg-info left in it, and nothing outside these paths can sneak into the build)."""
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, dest / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for sub in ("tools/toolfetch", "tools/scripts"):
        shutil.copytree(REPO / sub, dest / sub, ignore=ignore)
    return dest


def _run(*argv: str | os.PathLike[str], cwd: Path | None = None,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, f"{argv}: exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("build", reason="the test extras install `build`")
    src = _sources(tmp_path_factory.mktemp("src"))
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, src)
    return out


def test_wheel_holds_the_package_its_schemas_and_the_command(dist: Path) -> None:
    (wheel,) = dist.glob("toolfetch-*-py3-none-any.whl")
    (sdist,) = dist.glob("toolfetch-*.tar.gz")
    assert sdist.stat().st_size > 0
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "toolfetch/schemas/tools.schema.json" in names
    assert "toolfetch/schemas/lockfile.schema.json" in names
    assert "toolfetch/cli/hitpath.py" in names
    assert any(n.endswith(".data/scripts/toolfetch") for n in names)
    tops = {n.split("/")[0] for n in names if not n.startswith("toolfetch-")}
    assert tops == {"toolfetch"}, tops  # no stray top-level packages (tools/scripts, …)


def _fresh_venv(root: Path, wheel: Path) -> Path:
    """A venv with only the wheel installed; its dependencies come from this venv."""
    _run(sys.executable, "-m", "venv", "--without-pip", root)
    python = root / "bin" / "python"
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-index",
         "--no-deps", "--disable-pip-version-check", wheel)
    site = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(site.stdout.strip(), "test-dependencies.pth").write_text("\n".join(sorted(deps)) + "\n")
    return root


def test_installed_wheel_locks_fetches_and_runs_in_another_repository(
        dist: Path, tmp_path: Path, registry: ocitest.Registry, unique_repo: str) -> None:
    (wheel,) = dist.glob("toolfetch-*.whl")
    venv = _fresh_venv(tmp_path / "venv", wheel)
    toolfetch = venv / "bin" / "toolfetch"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}/usr/bin:/bin"
    where = _run(venv / "bin" / "python", "-c", "import toolfetch; print(toolfetch.__file__)",
                 env=env, cwd=tmp_path)
    assert where.stdout.startswith(str(venv)), where.stdout  # the wheel, not the checkout

    idx = ocitest.push_tool_index(registry, f"{unique_repo}/hello", "1.0", {
        host(): ocitest.targz({"bin/hello": (script("hello-1.0"), 0o755)})})
    repo = tmp_path / "adopter"
    _run("git", "init", "-q", repo)
    write_config(repo / "lockfiles" / "tools.yaml",
                 {"tools": {"hello": {"ref": idx.ref, "path": "bin/hello"}}})

    _run(toolfetch, "lock", cwd=repo, env=env)
    assert (repo / "lockfiles" / "tools.lock.json").is_file()
    _run(toolfetch, "lock", "--check", cwd=repo, env=env)
    _run(toolfetch, "fetch", cwd=repo, env=env)
    ran = _run(toolfetch, "run", "hello", "--", "x y", cwd=repo, env=env)
    assert ran.stdout.splitlines() == ["hello-1.0", "arg:x y"]
    which = _run(toolfetch, "which", "hello", cwd=repo / "lockfiles", env=env)
    assert Path(which.stdout.strip()).is_file()
