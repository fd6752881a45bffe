"""rules/bazel under a real Bazel (Debian's 4.2.3, WORKSPACE mode) against a real registry.

One workspace per module (`shared`) holds five hubs over lockfiles built from tools pushed
to the session registry: `@tools` (fetched by toolfetch found on PATH), `@foreign` (a
lockfile without the host platform), `@dl` (use_rctx_download), `@py` (`python = ...`) and
`@abs` (`toolfetch = /abs/path`). Failure and refetch scenarios and examples/bazel get
workspaces of their own. Every Bazel run is `--batch` with one session-wide
`--output_user_root`, so Bazel extracts itself once.

The rules find the real `toolfetch` on PATH, as a user's build does; lockfiles are
written by `toolfetch lock`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ocitest
import pytest
from tf import REPO, SUPPORT

from toolfetch.core.platform import host_platform

pytestmark = pytest.mark.bazel

REPO_ROOT = REPO
HOST = str(host_platform())
# Pushed for every test tool: the host plus platforms a build here must never fetch.
PLATFORMS = sorted({HOST, "linux/amd64", "linux/arm64", "darwin/arm64"})
OTHERS = [p for p in PLATFORMS if p != HOST]
BAZEL_TIMEOUT = 240


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def bazel_bin() -> str:
    exe = shutil.which("bazel")
    if exe is None:
        msg = "bazel is not installed (Debian: apt-get install bazel-bootstrap)"
        if _ci():
            pytest.fail(f"{msg}; CI is set, so this is an error, not a skip", pytrace=False)
        pytest.skip(msg)
    return exe


@pytest.fixture(scope="session")
def bazel_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's --output_user_root: Bazel extracts itself once, output bases reuse it."""
    return tmp_path_factory.mktemp("bazel-root")


# ---- the fetcher --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def toolfetch_bin() -> str:
    """The installed toolfetch (the rules find it on PATH, as users' builds do)."""
    exe = shutil.which("toolfetch")
    if exe is None:
        pytest.fail("toolfetch is not on PATH: pip install -e . first", pytrace=False)
    r = subprocess.run(
        [exe, "fetch", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert r.returncode == 0 and "--output" in r.stdout, "toolfetch fetch lacks --output"
    return exe


# ---- tools in the registry and their lockfiles -------------------------------------------

HELLO = """#!/bin/sh
# A tool that needs its tree: share/data.txt, found beside $0 and beside its real path.
here=$(dirname "$(readlink -f "$0")")
echo "hello from {platform} args: $*"
echo "data: $(cat "$here/../share/data.txt")"
echo "data via \\$0: $(cat "$(dirname "$0")/../share/data.txt")"
if [ "$1" = "--exit" ]; then exit "$2"; fi
"""

GREET = b"""#!/bin/sh
echo "greetings, $1 (single manifest)"
"""


def hello_layer(platform: str, tag: str = "1") -> bytes:
    return ocitest.targz(
        {
            "bin/": b"",
            "bin/hello": (HELLO.format(platform=f"{platform} v{tag}").encode(), 0o755),
            "share/": b"",
            "share/data.txt": f"DATA {platform} v{tag}\n".encode(),
        }
    )


def push_hello(
    reg: ocitest.Registry, repo: str, tag: str = "1", platforms: list[str] = PLATFORMS
) -> str:
    """hello:TAG as an index, one tar.gz layer (bin/hello, share/data.txt) per platform."""
    return ocitest.push_tool_index(reg, repo, tag, {p: hello_layer(p, tag) for p in platforms}).ref


def push_greet(reg: ocitest.Registry, repo: str) -> str:
    """greet:1 as a single ORAS manifest with one raw layer: locked under "*"."""
    ocitest.push_artifact(reg, repo, "1", ocitest.oras_artifact({"greet": GREET}))
    return reg.ref(repo, "1")


def write_lockfile(
    path: Path, tools: Mapping[str, tuple[str, str]], env: Mapping[str, str]
) -> dict[str, Any]:
    """`toolfetch lock` over a tools.yaml of {name: (ref, path)} beside *path*."""
    config = path.with_name(path.name.split(".")[0] + ".yaml")
    lines = ["tools:"]
    for name, (ref, exe) in tools.items():
        lines += [f"  {name}:", f"    ref: {ref}", f"    path: {exe}"]
    config.write_text("\n".join(lines) + "\n")
    r = subprocess.run(
        ["toolfetch", "lock", "--config", str(config), "--lockfile", str(path)],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    lock: dict[str, Any] = json.loads(path.read_text())
    return lock


# ---- workspaces -------------------------------------------------------------------------


@dataclass
class Workspace:
    root: Path
    env: dict[str, str]
    bazel_bin: str
    output_user_root: Path

    @property
    def cache(self) -> Path:
        return Path(self.env["TOOLFETCH_CACHE_DIR"])

    def bazel(self, *args: str, startup: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
        cmd = [
            self.bazel_bin,
            "--nohome_rc",
            "--batch",
            f"--output_user_root={self.output_user_root}",
            *startup,
            *args,
        ]
        return subprocess.run(
            cmd,
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=BAZEL_TIMEOUT,
            check=False,
        )

    def build(self, *targets: str) -> subprocess.CompletedProcess[str]:
        return self.bazel("build", "--color=no", "--curses=no", "--noshow_progress", *targets)

    def must_build(self, *targets: str) -> None:
        r = self.build(*targets)
        assert r.returncode == 0, f"bazel build {' '.join(targets)} failed:\n{r.stderr[-6000:]}"

    def output_base(self) -> Path:
        r = self.bazel("info", "output_base")
        assert r.returncode == 0, r.stderr
        return Path(r.stdout.strip())

    def cached_blobs(self) -> set[str]:
        root = self.cache / "blobs" / "sha256"
        if not root.is_dir():
            return set()
        return {"sha256:" + p.name for p in root.glob("*/*/*") if len(p.name) == 64}


def make_env(tmp: Path) -> dict[str, str]:
    """The client environment Bazel (and so the fetcher) sees: hermetic HOME, cache, auth."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TOOLFETCH_")
        and k not in ("REGISTRY_AUTH_FILE", "XDG_CONFIG_HOME", "XDG_CACHE_HOME")
    }
    for name in ("home", "docker-config", "xdg-runtime"):
        (tmp / name).mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(tmp / "home"),
        DOCKER_CONFIG=str(tmp / "docker-config"),
        XDG_RUNTIME_DIR=str(tmp / "xdg-runtime"),
        TOOLFETCH_CACHE_DIR=str(tmp / "toolfetch-cache"),
        NO_PROXY="127.0.0.1,localhost,::1",
        no_proxy="127.0.0.1,localhost,::1",
    )
    return env


OFFLINE_RULES = SUPPORT / "starlark_bazel_fakes" / "offline_rules"


def workspace_file(hubs: list[tuple[str, str, str]], offline_rules: bool = False) -> str:
    """WORKSPACE with `toolfetch_tools` + `toolfetch_register` per (hub, lockfile, extra args).

    offline_rules: stand-ins for rules_java/rules_cc, which Bazel 4's toolchain resolution
    loads (see starlark_bazel_fakes/offline_rules/README.md).
    """
    text = textwrap.dedent(
        f"""\
        workspace(name = "toolfetch_test")

        local_repository(name = "toolfetch", path = {str(REPO_ROOT)!r})

        load("@toolfetch//rules/bazel:repositories.bzl", "toolfetch_tools")
        """
    )
    if offline_rules:
        for name in ("rules_java", "rules_cc"):
            text += f"\nlocal_repository(name = {name!r}, path = {str(OFFLINE_RULES / name)!r})\n"
    for hub, lockfile, extra in hubs:
        text += textwrap.dedent(
            f"""
            toolfetch_tools(name = {hub!r}, lockfile = {lockfile!r}{extra})

            load("@{hub}//:repositories.bzl", {hub}_register = "toolfetch_register")

            {hub}_register()
            """
        )
    return text


DEFS_BZL = """
def _use_hello_impl(ctx):
    tc = ctx.toolchains["@tools//:hello_toolchain_type"]
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    ctx.actions.run_shell(
        outputs = [out],
        tools = tc.tool_files,
        command = '"$1" from-toolchain > "$2"',
        arguments = [tc.executable.path, out.path],
    )
    return [DefaultInfo(files = depset([out]))]

use_hello_toolchain = rule(
    implementation = _use_hello_impl,
    toolchains = ["@tools//:hello_toolchain_type"],
)
"""

BUILD = """
load(":defs.bzl", "use_hello_toolchain")

genrule(
    name = "hello_out",
    outs = ["hello.txt"],
    tools = ["@tools//:hello"],
    cmd = "$(execpath @tools//:hello) one two > $@",
)

genrule(
    name = "greet_out",
    outs = ["greet.txt"],
    tools = ["@tools//:greet"],
    cmd = "$(execpath @tools//:greet) world > $@",
)

genrule(
    name = "files_out",
    srcs = ["@tools//:hello_files"],
    outs = ["files.txt"],
    cmd = "for f in $(SRCS); do echo $$f; done > $@",
)

use_hello_toolchain(name = "toolchain_out")

genrule(
    name = "foreign_out",
    outs = ["foreign.txt"],
    tools = ["@foreign//:hello"],
    cmd = "$(execpath @foreign//:hello) > $@",
)

genrule(
    name = "py_out",
    outs = ["py.txt"],
    tools = ["@py//:greet"],
    cmd = "$(execpath @py//:greet) python > $@",
)

genrule(
    name = "abs_out",
    outs = ["abs.txt"],
    tools = ["@abs//:greet"],
    cmd = "$(execpath @abs//:greet) absolute > $@",
)

genrule(
    name = "dl_out",
    outs = ["dl.txt"],
    tools = ["@dl//:hello", "@dl//:greet"],
    cmd = "($(execpath @dl//:hello) via-download; $(execpath @dl//:greet) dl) > $@",
)
"""


@dataclass
class Shared:
    ws: Workspace
    lock: dict[str, Any]
    first_build_seconds: float


@pytest.fixture(scope="module")
def shared(
    bazel_bin: str,
    bazel_root: Path,
    registry: ocitest.Registry,
    toolfetch_bin: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Shared]:
    tmp = tmp_path_factory.mktemp("bazel-shared")
    env = make_env(tmp)
    root = tmp / "ws"
    root.mkdir()
    hello = push_hello(registry, "t/bazel/hello")
    greet = push_greet(registry, "t/bazel/greet")
    lock = write_lockfile(
        root / "tools.lock.json", {"hello": (hello, "bin/hello"), "greet": (greet, "greet")}, env
    )
    assert sorted(lock["tools"]["hello"]["platforms"]) == PLATFORMS
    assert list(lock["tools"]["greet"]["platforms"]) == ["*"]
    foreign = json.loads(json.dumps(lock))
    foreign["tools"]["hello"]["platforms"].pop(HOST)
    (root / "foreign.lock.json").write_text(json.dumps(foreign, indent=2, sort_keys=True) + "\n")
    (root / "WORKSPACE").write_text(
        workspace_file(
            [
                ("tools", "//:tools.lock.json", ""),
                ("foreign", "//:foreign.lock.json", ""),
                ("dl", "//:tools.lock.json", ", use_rctx_download = True"),
                ("py", "//:tools.lock.json", f", python = {sys.executable!r}"),
                ("abs", "//:tools.lock.json", f", toolfetch = {toolfetch_bin!r}"),
            ],
            offline_rules=True,
        )
    )
    (root / "defs.bzl").write_text(DEFS_BZL)
    (root / "BUILD").write_text(BUILD)
    ws = Workspace(root, env, bazel_bin, bazel_root)
    start = time.monotonic()
    ws.must_build("//:hello_out", "//:greet_out")
    yield Shared(ws, lock, time.monotonic() - start)


def layer_digests(lock: Mapping[str, Any], tool: str, platform: str) -> set[str]:
    entry = lock["tools"][tool]["platforms"][platform]
    return {layer["digest"] for layer in entry["layers"]}


# ---- tests --------------------------------------------------------------------------------


def test_genrule_runs_the_host_tool_with_its_tree(shared: Shared) -> None:
    out = (shared.ws.root / "bazel-bin" / "hello.txt").read_text()
    assert f"hello from {HOST} v1 args: one two" in out
    assert f"data: DATA {HOST} v1" in out  # found beside the executable's real path
    assert f"data via $0: DATA {HOST} v1" in out  # and beside the path it was run as
    greet = (shared.ws.root / "bazel-bin" / "greet.txt").read_text()
    assert greet == "greetings, world (single manifest)\n"
    assert shared.first_build_seconds < 120


def test_only_the_host_platform_is_fetched(shared: Shared) -> None:
    shared.ws.must_build("//:hello_out", "//:greet_out", "//:files_out")
    blobs = shared.ws.cached_blobs()
    assert layer_digests(shared.lock, "hello", HOST) <= blobs
    assert layer_digests(shared.lock, "greet", "*") <= blobs
    for other in OTHERS:
        assert not layer_digests(shared.lock, "hello", other) & blobs, other
    external = shared.ws.output_base() / "external"
    host_repo = "tools__hello__" + HOST.replace("/", "_")
    assert (external / host_repo / "files" / "bin" / "hello").is_file()
    assert (external / "tools__greet__any" / "files" / "greet").is_file()
    for other in OTHERS:
        assert not (external / ("tools__hello__" + other.replace("/", "_"))).exists(), other


def test_files_filegroup_is_the_whole_tree(shared: Shared) -> None:
    shared.ws.must_build("//:files_out")
    files = (shared.ws.root / "bazel-bin" / "files.txt").read_text().split()
    assert any(f.endswith("/files/bin/hello") for f in files), files
    assert any(f.endswith("/files/share/data.txt") for f in files), files


def test_bazel_run_passes_args_and_exit_code(shared: Shared) -> None:
    r = shared.ws.bazel("run", "--color=no", "--curses=no", "@tools//:hello", "--", "a", "b c")
    assert r.returncode == 0, r.stderr[-4000:]
    assert f"hello from {HOST} v1 args: a b c" in r.stdout
    assert f"data: DATA {HOST} v1" in r.stdout
    assert f"data via $0: DATA {HOST} v1" in r.stdout
    r = shared.ws.bazel("run", "--color=no", "--curses=no", "@tools//:hello", "--", "--exit", "3")
    assert r.returncode == 3, r.stderr[-4000:]
    assert "args: --exit 3" in r.stdout


def test_runfiles_carry_the_unpacked_tree(shared: Shared) -> None:
    shared.ws.must_build("@tools//:hello")
    repo = "tools__hello__" + HOST.replace("/", "_")
    exe = shared.ws.root / "bazel-bin" / "external" / repo / "tool" / "bin" / "hello"
    assert os.access(exe, os.X_OK)
    assert (exe.parent.parent / "share" / "data.txt").is_file()  # the tree, mirrored
    runfiles = exe.parent / "hello.runfiles" / repo / "tool"
    assert (runfiles / "share" / "data.txt").read_text() == f"DATA {HOST} v1\n"
    assert (runfiles / "bin" / "hello").is_file()


def test_toolchain_resolution(shared: Shared) -> None:
    shared.ws.must_build("//:toolchain_out")
    out = (shared.ws.root / "bazel-bin" / "toolchain_out.txt").read_text()
    assert f"hello from {HOST} v1 args: from-toolchain" in out
    assert f"data via $0: DATA {HOST} v1" in out


def test_platform_missing_from_lockfile_names_the_locked_ones(shared: Shared) -> None:
    r = shared.ws.build("//:foreign_out")
    assert r.returncode != 0
    assert "tool 'hello' is not locked for this execution platform" in r.stderr, r.stderr[-4000:]
    assert ", ".join(OTHERS) in r.stderr
    # Nothing was fetched for the foreign hub.
    external = shared.ws.output_base() / "external"
    assert not list(external.glob("foreign__hello__*/files"))


def test_fetcher_as_python_module_or_absolute_path(shared: Shared) -> None:
    """`python = ...` runs `python -m toolfetch` from this checkout; `toolfetch = ...` a path."""
    shared.ws.must_build("//:py_out", "//:abs_out")
    bin_dir = shared.ws.root / "bazel-bin"
    assert (bin_dir / "py.txt").read_text() == "greetings, python (single manifest)\n"
    assert (bin_dir / "abs.txt").read_text() == "greetings, absolute (single manifest)\n"


def test_use_rctx_download(shared: Shared) -> None:
    shared.ws.must_build("//:dl_out")
    out = (shared.ws.root / "bazel-bin" / "dl.txt").read_text()
    assert f"hello from {HOST} v1 args: via-download" in out
    assert f"data: DATA {HOST} v1" in out
    assert "greetings, dl (single manifest)" in out
    # Bazel's downloader put the host's layers (only) into its repository cache.
    cas = shared.ws.output_user_root / "cache" / "repos" / "v1" / "content_addressable" / "sha256"
    cached = {"sha256:" + p.name for p in cas.iterdir()} if cas.is_dir() else set()
    assert layer_digests(shared.lock, "hello", HOST) <= cached
    for other in OTHERS:
        assert not layer_digests(shared.lock, "hello", other) & cached, other


# ---- scenarios with a workspace of their own -----------------------------------------------


@pytest.fixture
def small_ws(bazel_bin: str, bazel_root: Path, toolfetch_bin: str, tmp_path: Path) -> Workspace:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "WORKSPACE").write_text(workspace_file([("tools", "//:tools.lock.json", "")]))
    (root / "BUILD").write_text(
        textwrap.dedent(
            """
            genrule(
                name = "out",
                outs = ["out.txt"],
                tools = ["@tools//:hello"],
                cmd = "$(execpath @tools//:hello) x > $@",
            )
            """
        )
    )
    return Workspace(root, make_env(tmp_path), bazel_bin, bazel_root)


def test_registry_down_with_empty_cache_fails_with_exit_meaning(
    small_ws: Workspace, make_registry: Callable[..., ocitest.Registry]
) -> None:
    reg = make_registry()
    ref = push_hello(reg, "t/bazel/down", platforms=[HOST])
    write_lockfile(small_ws.root / "tools.lock.json", {"hello": (ref, "bin/hello")}, small_ws.env)
    reg.stop()
    start = time.monotonic()
    r = small_ws.build("//:out")
    assert r.returncode != 0
    assert "fetching tool 'hello' for platform " + HOST in r.stderr, r.stderr[-4000:]
    assert "exit code 6: registry unreachable" in r.stderr
    assert "fetcher stderr:" in r.stderr
    assert reg.host in r.stderr  # the fetcher's own message names the registry
    assert not small_ws.cached_blobs()
    assert time.monotonic() - start < 60


def test_lockfile_change_refetches(small_ws: Workspace, registry: ocitest.Registry) -> None:
    for tag in ("1", "2"):
        ref = push_hello(registry, "t/bazel/versions", tag=tag, platforms=[HOST])
        write_lockfile(
            small_ws.root / "tools.lock.json", {"hello": (ref, "bin/hello")}, small_ws.env
        )
        small_ws.must_build("//:out")
        out = (small_ws.root / "bazel-bin" / "out.txt").read_text()
        assert f"hello from {HOST} v{tag} args: x" in out
    # Bazel deleted the v1 repository (hardlinked from the cache): the cache is intact.
    r = subprocess.run(
        ["toolfetch", "cache", "verify"],
        env=small_ws.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_missing_fetcher_is_explained(small_ws: Workspace, registry: ocitest.Registry) -> None:
    ref = push_hello(registry, "t/bazel/nofetcher", platforms=[HOST])
    write_lockfile(small_ws.root / "tools.lock.json", {"hello": (ref, "bin/hello")}, small_ws.env)
    small_ws.env["PATH"] = "/usr/bin:/bin"  # no toolfetch
    r = small_ws.build("//:out")
    assert r.returncode != 0
    assert "the `toolfetch` command is not on PATH" in r.stderr, r.stderr[-4000:]


# ---- the example workspace ----------------------------------------------------------------

EXAMPLE = REPO_ROOT / "examples" / "bazel"


def test_example_workspace_builds_offline(
    bazel_bin: str, bazel_root: Path, toolfetch_bin: str, tmp_path: Path
) -> None:
    """examples/bazel as a user runs it, offline (its tools come from an OCI layout).

    Built in place with --symlink_prefix=/ so nothing is written into the checkout.
    """
    env = make_env(tmp_path)
    env["TOOLFETCH_OFFLINE"] = "1"
    ws = Workspace(EXAMPLE, env, bazel_bin, bazel_root)
    r = ws.bazel("build", "--color=no", "--curses=no", "--symlink_prefix=/", "//:all")
    assert r.returncode == 0, r.stderr[-6000:]
    info = ws.bazel("info", "bazel-bin")
    assert info.returncode == 0, info.stderr
    out = Path(info.stdout.strip())
    hello = (out / "hello.txt").read_text()
    assert f"(hello 1.0, {HOST})" in hello and "args: from a genrule" in hello
    assert f"(greet 1.0, {HOST})" in (out / "greet.txt").read_text()
    assert (out / "say.txt").read_text() == "say: built by bazel\n"
    files = (out / "hello_files.txt").read_text().split()
    assert "bin/hello" in files and "share/hello/greeting.txt" in files
    run = ws.bazel(
        "run", "--color=no", "--curses=no", "--symlink_prefix=/", "@tools//:say", "--", "hi"
    )
    assert run.returncode == 0, run.stderr[-4000:]
    assert run.stdout == "say: hi\n"
    assert not list(EXAMPLE.glob("bazel-*"))


# ---- HTTP release assets beside registry tools (issue 13) ---------------------------------


def test_a_lockfile_mixing_registry_tools_and_http_assets(
    bazel_bin: str, bazel_root: Path, toolfetch_bin: str, registry: ocitest.Registry,
    tmp_path: Path,
) -> None:
    """Both modes on one lockfile: toolfetch fetches assets like blobs; use_rctx_download
    hands them to Bazel's downloader with their sha256 (so they land in its repository
    cache, as http_archive/http_file downloads do)."""
    from assetserver import AssetServer

    server = AssetServer()
    try:
        archive = ocitest.targz({"rel-1/bin/rel": (b"#!/bin/sh\necho release archive $1\n", 0o755)})
        raw = b"#!/bin/sh\necho release file $1\n"
        server.files["/dl/rel-1.tar.gz"] = archive
        server.files["/dl/relfile"] = raw
        env = make_env(tmp_path)
        root = tmp_path / "ws"
        root.mkdir()
        hello = push_hello(registry, "t/bazel/mixhello")
        (root / "mix.yaml").write_text(json.dumps({"tools": {
            "hello": {"ref": hello, "path": "bin/hello"},
            "rel": {"platforms": {HOST: {"url": server.url("/dl/rel-1.tar.gz"),
                                         "path": "rel-1/bin/rel"}}},
            "relfile": {"platforms": {HOST: {"url": server.url("/dl/relfile")}}},
        }}))
        r = subprocess.run(["toolfetch", "lock", "--config", str(root / "mix.yaml"),
                            "--lockfile", str(root / "mix.lock.json")], env=env,
                           capture_output=True, text=True, timeout=120, check=False)
        assert r.returncode == 0, r.stderr
        (root / "WORKSPACE").write_text(workspace_file([
            ("mix", "//:mix.lock.json", ""),
            ("mixdl", "//:mix.lock.json", ", use_rctx_download = True"),
        ]))
        rules = ""
        for hub in ("mix", "mixdl"):
            rules += textwrap.dedent(f"""
                genrule(
                    name = "{hub}_out",
                    outs = ["{hub}.txt"],
                    tools = ["@{hub}//:hello", "@{hub}//:rel", "@{hub}//:relfile"],
                    cmd = "($(execpath @{hub}//:hello) h; $(execpath @{hub}//:rel) {hub}; " +
                          "$(execpath @{hub}//:relfile) {hub}) > $@",
                )
                """)
        (root / "BUILD").write_text(rules)
        ws = Workspace(root, env, bazel_bin, bazel_root)
        (ws.cache).mkdir(parents=True, exist_ok=True)
        shutil.rmtree(ws.cache)  # nothing from `lock`: each mode downloads for itself
        ws.must_build("//:mix_out", "//:mixdl_out")
        for hub in ("mix", "mixdl"):
            out = (root / "bazel-bin" / f"{hub}.txt").read_text().splitlines()
            assert out[0] == f"hello from {HOST} v1 args: h"
            assert out[-2:] == [f"release archive {hub}", f"release file {hub}"]
        cas = bazel_root / "cache" / "repos" / "v1" / "content_addressable" / "sha256"
        cached = {p.name for p in cas.iterdir()} if cas.is_dir() else set()
        import hashlib

        assert {hashlib.sha256(archive).hexdigest(), hashlib.sha256(raw).hexdigest()} <= cached
        agents = {s.headers.get("User-Agent", "") for s in server.requests()}
        assert any(a.startswith("toolfetch/") for a in agents), agents  # the toolfetch hub
        assert any("Bazel" in a for a in agents), agents  # the downloader hub
    finally:
        server.close()
