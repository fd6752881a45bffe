"""Shared pytest fixtures: a real registry, hermetic environment, unique repository names."""

from __future__ import annotations

import atexit
import itertools
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

_SUPPORT = str(Path(__file__).resolve().parent / "support")  # tf, ocitest, faultproxy, …
if _SUPPORT not in sys.path:
    sys.path.insert(0, _SUPPORT)

import ocitest  # noqa: E402

# The console script `toolfetch` (tests and Buck2/Bazel fetch actions run it) sits beside this
# interpreter; put it first on PATH also when pytest runs without tools/test or an active venv.
_BIN = os.path.dirname(sys.executable)
if os.environ.get("PATH", "").split(os.pathsep)[0] != _BIN:
    os.environ["PATH"] = _BIN + os.pathsep + os.environ.get("PATH", "")

atexit.register(ocitest.stop_all_registries)

REGISTRY_FIXTURES = frozenset({"registry", "fresh_registry", "make_registry", "need_registry"})


def _need_registry() -> None:
    """Skip without docker-registry — but fail under CI, which installs it."""
    if shutil.which(ocitest.REGISTRY_BIN) is not None:
        return
    msg = (
        f"{ocitest.REGISTRY_BIN} is not installed "
        "(Debian: apt-get install docker-registry apache2-utils skopeo)"
    )
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{msg}; CI is set, so this is an error, not a skip", pytrace=False)
    pytest.skip(msg)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that use a registry fixture get the ``registry`` marker (``-m 'not registry'``)."""
    for item in items:
        if REGISTRY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.registry)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    ocitest.stop_all_registries()


@pytest.fixture(scope="session")
def need_registry() -> None:
    """Skip (or, with ``CI`` set, fail) when docker-registry is not installed."""
    _need_registry()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ocitest.Registry]:
    """One Distribution for the whole run (anonymous, delete enabled).

    Share it via :func:`unique_repo`; tests that stop, corrupt or configure a registry
    must use :func:`fresh_registry` / :func:`make_registry` instead.
    """
    _need_registry()
    reg = ocitest.Registry(workdir=tmp_path_factory.mktemp("session-registry"))
    try:
        yield reg
    finally:
        reg.close()


@pytest.fixture
def make_registry(tmp_path: Path) -> Iterator[Callable[..., ocitest.Registry]]:
    """Factory: ``make_registry(htpasswd=("u", "p"), proxy_remote=url, …)``.

    Each registry gets a directory under tmp_path; all are closed at teardown.
    """
    _need_registry()
    regs: list[ocitest.Registry] = []
    counter = itertools.count()

    def make(**kwargs: Any) -> ocitest.Registry:
        kwargs.setdefault("workdir", tmp_path / f"registry-{next(counter)}")
        reg = ocitest.Registry(**kwargs)
        regs.append(reg)
        return reg

    try:
        yield make
    finally:
        for reg in reversed(regs):
            reg.close()


@pytest.fixture
def fresh_registry(make_registry: Callable[..., ocitest.Registry]) -> ocitest.Registry:
    """A registry of this test's own (safe to stop, restart, corrupt)."""
    return make_registry()


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    """This test's toolfetch cache root (also in ``$TOOLFETCH_CACHE_DIR``; not yet created)."""
    return tmp_path / "cache"


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A private copy of the repository's lockfiles/ (the example tools); its lockfile."""
    from tf import copy_example

    return copy_example(tmp_path)


@pytest.fixture(autouse=True)
def _hermetic_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cache_dir: Path
) -> Iterator[None]:
    """Never read the real user's config or cache; no stray TOOLFETCH_* / REGISTRY_* vars."""
    for name in list(os.environ):
        if name.startswith("TOOLFETCH_") or name in (
            "REGISTRY_AUTH_FILE",
            "XDG_CONFIG_HOME",
            "XDG_CACHE_HOME",
        ):
            monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    docker_config = tmp_path / "docker-config"
    runtime = tmp_path / "xdg-runtime"  # podman/skopeo look for containers/auth.json here
    for d in (home, docker_config, runtime):
        d.mkdir(exist_ok=True)
    runtime.chmod(0o700)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("DOCKER_CONFIG", str(docker_config))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("TOOLFETCH_CACHE_DIR", str(cache_dir))
    # Loopback must never go through a proxy, for requests, skopeo or docker-registry.
    for var in ("NO_PROXY", "no_proxy"):
        current = os.environ.get(var, "")
        monkeypatch.setenv(var, ",".join(x for x in (current, "127.0.0.1,localhost,::1") if x))
    yield


_repo_counter = itertools.count(1)


def _sanitise(name: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return s[:60].strip("-") or "test"


@pytest.fixture
def make_repo(request: pytest.FixtureRequest) -> Callable[..., str]:
    """Factory of fresh repository names: ``make_repo()`` → ``t/<test>-<n>``,
    ``make_repo("upstream")`` → ``t/<test>-<n>/upstream``."""
    test = _sanitise(request.node.name)

    def make(suffix: str = "") -> str:
        repo = f"t/{test}-{next(_repo_counter)}"
        return f"{repo}/{_sanitise(suffix)}" if suffix else repo

    return make


@pytest.fixture
def unique_repo(request: pytest.FixtureRequest) -> str:
    """A repository name no other test uses: ``t/<test-name-sanitised>-<n>``."""
    return f"t/{_sanitise(request.node.name)}-{next(_repo_counter)}"
