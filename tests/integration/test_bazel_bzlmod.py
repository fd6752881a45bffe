"""rules/bazel without Bazel: the bzlmod extension and the generated files under starlark-pyo3.

There is no Bazel 7 here, so the module extension runs against fakes written in Starlark
(tests/support/starlark_bazel_fakes/bazel.star): a fake module_ctx / tag_class / module_extension
/ repository_rule that check attributes the way Bazel does and report every repository
the extension declares. The same harness evaluates the files the hub generates (BUILD,
toolchains/BUILD, repositories.bzl for WORKSPACE) so both setups are held to one contract,
and lints every .bzl for constructs Bazel 4.2.3 lacks.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tokenize
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tf import REPO, SUPPORT

from toolfetch.core import host as core_host
from toolfetch.core import platform as tf_platform

sl = pytest.importorskip("starlark", reason="starlark-pyo3 is not installed")

ROOT = REPO
RULES = ROOT / "rules" / "bazel"
FAKES = SUPPORT / "starlark_bazel_fakes"
FAKES_ID = "//fakes:bazel.star"
LOCKFILE_BZL = "//rules/bazel/private:lockfile.bzl"
DOWNLOADS = "//rules/bazel/private:downloads.bzl"
PLATFORMS_BZL = "//rules/bazel/private:platforms.bzl"
RENDER_BZL = "//rules/bazel/private:render.bzl"

D = "sha256:" + "d" * 64


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


def entry(ref: str, manifest: int, path: str = "bin/hello", unpack: str = "tar+gzip") -> dict:
    return {
        "index": D,
        "layers": [
            {
                "digest": digest(manifest + 1000),
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "size": 10,
                "unpack": unpack,
            }
        ],
        "manifest": digest(manifest),
        "path": path,
        "ref": ref,
    }


HELLO_REF = "127.0.0.1:5000/t/hello:1"
SAY_REF = "127.0.0.1:5000/t/say:1"
HELLO_PLATFORMS = ["darwin/arm64", "linux/amd64", "linux/arm/v7", "linux/arm64", "linux/ppc64le"]
LOCK: dict[str, Any] = {
    "mirrors": {"127.0.0.1:5000": ["mirror.internal:5000/cache", "oci-layout:registry"]},
    "tools": {
        "hello": {
            "path": "bin/hello",
            "ref": HELLO_REF,
            "platforms": {p: entry(HELLO_REF, i) for i, p in enumerate(HELLO_PLATFORMS)},
        },
        "say": {
            "path": "say",
            "ref": SAY_REF,
            "platforms": {"*": entry(SAY_REF, 99, path="say", unpack="raw")},
        },
    },
    "version": 1,
}
LOCK_LABEL = "@@//:tools.lock.json"

FETCH_ENVIRON = [
    "TOOLFETCH_CACHE_DIR",
    "TOOLFETCH_OFFLINE",
    "TOOLFETCH_MIRRORS",
    "TOOLFETCH_INSECURE_REGISTRIES",
    "DOCKER_CONFIG",
    "REGISTRY_AUTH_FILE",
    "HOME",
    "PATH",
    "XDG_CACHE_HOME",
    "XDG_RUNTIME_DIR",
    "XDG_CONFIG_HOME",
]


class Harness:
    """Loads .bzl files with the fakes in scope and records what they declare."""

    def __init__(self, extra_files: dict[str, str] | None = None) -> None:
        self.records: list[tuple[str, dict[str, Any]]] = []
        self.declared: set[str] = set()
        self.cache: dict[str, Any] = {}
        self.extra = dict(extra_files or {})  # module id -> source (generated files)
        self.globals = sl.Globals.extended_by(
            [sl.LibraryExtension.Json, sl.LibraryExtension.StructType, sl.LibraryExtension.Print]
        )
        self.loader = sl.FileLoader(self.load)
        fakes = sl.Module()
        fakes.add_callable("host", self.host)
        source = (FAKES / "bazel.star").read_text()
        sl.eval(fakes, sl.parse("fakes/bazel.star", source), self.globals, self.loader)
        self.fake_names: list[str] = fakes["FAKE_NAMES"]
        self.module_fake_names: list[str] = fakes["MODULE_FAKE_NAMES"]
        self.cache[FAKES_ID] = fakes.freeze()

    # -- the Python side of the fakes --
    def host(self, kind: str, data: dict[str, Any]) -> Any:
        if kind == "existing_rule":
            return {"name": data["name"]} if data["name"] in self.declared else None
        self.records.append((kind, data))
        if kind == "repository_rule":
            if data["name"] in self.declared:
                raise AssertionError(f"repository {data['name']} declared twice")
            self.declared.add(data["name"])
        return None

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [d for k, d in self.records if k == kind]

    def repos(self) -> dict[str, dict[str, Any]]:
        return {d["name"]: d for d in self.of("repository_rule")}

    def targets(self) -> dict[str, dict[str, Any]]:
        return {d["name"]: d for d in self.of("target")}

    # -- loading --
    def source_for(self, module_id: str) -> tuple[str, str]:
        if module_id in self.extra:
            return module_id, self.extra[module_id]
        m = re.fullmatch(r"(?:@@?[\w.+~-]*)?(?://([\w/.-]*))?:([\w/.-]+)", module_id)
        if m is None:
            raise KeyError(f"cannot resolve load({module_id!r})")
        package = m.group(1) if m.group(1) is not None else "rules/bazel"
        path = ROOT / package / m.group(2)
        return str(path.relative_to(ROOT)), path.read_text()

    def load(self, module_id: str) -> Any:
        if module_id not in self.cache:
            filename, source = self.source_for(module_id)
            self.cache[module_id] = self.evaluate(filename, source).freeze()
        return self.cache[module_id]

    def evaluate(self, filename: str, source: str) -> Any:
        """Evaluate with the fakes in scope (prepended on line 1: line numbers are kept)."""
        names = ", ".join(json.dumps(n) for n in self.fake_names)
        # `load(...); <first statement>` unless that statement is compound (def, if, for).
        sep = "\n" if re.match(r"(def|if|for)\b", source) else "; "
        prefixed = f"load({json.dumps(FAKES_ID)}, {names}){sep}" + source
        module = sl.Module()
        sl.eval(module, sl.parse(filename, prefixed), self.globals, self.loader)
        return module

    def evaluate_module_file(self, path: Path) -> None:
        """A MODULE.bazel, with the fakes' MODULE.bazel globals in scope."""
        names = ", ".join(json.dumps(n) for n in self.module_fake_names)
        source = f"load({json.dumps(FAKES_ID)}, {names}); " + path.read_text()
        sl.eval(sl.Module(), sl.parse(path.name, source), self.globals, self.loader)

    def call(self, module_id: str, function: str, *args: Any, **kwargs: Any) -> Any:
        return self.load(module_id).call(function, *args, **kwargs)

    def run_extension(self, modules: list[dict[str, Any]], files: dict[str, str]) -> None:
        driver = self.evaluate(
            "driver.bzl",
            'load(":extensions.bzl", "toolfetch")\n'
            "def main(modules, files):\n"
            "    return run_extension(toolfetch, modules, files)\n",
        ).freeze()
        driver.call("main", modules, files)


@pytest.fixture
def harness() -> Harness:
    return Harness()


def lock_tag(name: str = "tools", lockfile: str = LOCK_LABEL, **kw: Any) -> dict[str, Any]:
    return {"name": name, "lockfile": lockfile, **kw}


def root_module(*tags: dict[str, Any]) -> dict[str, Any]:
    return {"name": "my_project", "is_root": True, "tags": {"lock": list(tags)}}


def lock_text(lock: dict[str, Any] = LOCK) -> str:
    return json.dumps(lock, indent=2, sort_keys=True) + "\n"


def expected_repo_names(hub: str = "tools") -> set[str]:
    names = {f"{hub}__hello__{p.replace('/', '_')}" for p in HELLO_PLATFORMS}
    return names | {f"{hub}__say__any"}


# ---- lint ----------------------------------------------------------------------------------


def bzl_files() -> Iterator[Path]:
    yield from sorted(RULES.rglob("*.bzl"))
    yield from sorted(FAKES.rglob("*.bzl"))
    yield FAKES / "bazel.star"
    yield from sorted((ROOT / "examples" / "bazel").rglob("*.bzl"))


@pytest.mark.parametrize("path", list(bzl_files()), ids=lambda p: str(p.relative_to(ROOT)))
def test_bzl_parses_and_lints_clean(path: Path) -> None:
    ast = sl.parse(str(path.relative_to(ROOT)), path.read_text(), sl.Dialect.standard())
    lints = ast.lint()
    if path.is_relative_to(FAKES):  # fakes take Bazel's signatures and ignore most of them
        lints = [lint for lint in lints if lint.short_name != "unused-argument"]
    assert [str(lint) for lint in lints] == []


# Constructs Bazel 4.2.3 does not have (starlark-rust accepts some of them).
_BAZEL4_FORBIDDEN_NAMES = {"getenv", "removeprefix", "removesuffix", "watch", "arch"}


@pytest.mark.parametrize("path", sorted(RULES.rglob("*.bzl")), ids=lambda p: p.name)
def test_bzl_uses_only_bazel4_constructs(path: Path) -> None:
    source = path.read_text()
    arch_guarded = 'hasattr(rctx.os, "arch")' in source
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        where = f"{path.name}:{tok.start[0]}"
        assert not (tok.type == tokenize.OP and tok.string in ("|", "|=")), f"dict | at {where}"
        if tok.type == tokenize.NAME and tok.string in _BAZEL4_FORBIDDEN_NAMES:
            assert tok.string == "arch" and arch_guarded, f"{tok.string} at {where}"
        if tok.type == tokenize.STRING:
            assert not tok.string.lower().startswith(("f'", 'f"', "rf", "fr")), where
            if tok.string.startswith(("'", '"')) and not tok.string.startswith('"""'):
                assert "@@" not in tok.string, f"@@ label at {where}"


def test_module_files_parse() -> None:
    for name in ("MODULE.bazel", "WORKSPACE", "BUILD", "rules/bazel/BUILD",
                 "rules/bazel/private/BUILD"):
        sl.parse(name, (ROOT / name).read_text(), sl.Dialect.standard())
    h = Harness()
    h.evaluate_module_file(ROOT / "MODULE.bazel")
    assert [m["name"] for m in h.of("module")] == ["toolfetch"]
    assert [d["name"] for d in h.of("bazel_dep")] == ["platforms"]  # for @platforms//os:*


# ---- platforms -----------------------------------------------------------------------------


def test_platform_tables_mirror_platform_py(harness: Harness) -> None:
    tables = harness.evaluate(
        "t.bzl", 'load("//rules/bazel/private:platforms.bzl", "BAZEL_OS", "BAZEL_CPU")\n'
        'OS, CPU = BAZEL_OS, BAZEL_CPU\n'
    )
    assert tables["OS"] == tf_platform.BAZEL_OS
    assert tables["CPU"] == tf_platform.BAZEL_CPU
    mod = harness.load(PLATFORMS_BZL)
    for text in [
        "linux/amd64",
        "linux/arm64",
        "linux/arm64/v8",
        "darwin/amd64",
        "darwin/arm64",
        "windows/amd64",
        "linux/arm/v7",
        "linux/arm",  # no variant is v7
    ]:
        want = list(tf_platform.bazel_constraints(tf_platform.Platform.parse(text)))
        assert mod.call("bazel_constraints", text) == want, text
    for unmapped in ["linux/ppc64le", "linux/arm/v6", "freebsd/amd64", "linux/386"]:
        assert mod.call("bazel_constraints", unmapped) is None, unmapped


@pytest.mark.parametrize(
    ("os_name", "machine", "want"),
    [
        ("linux", "x86_64", "linux/amd64"),
        ("Linux", "aarch64\n", "linux/arm64"),
        ("linux", "armv7l", "linux/arm/v7"),
        ("mac os x", "x86_64", "darwin/amd64"),
        ("Mac OS X", "arm64", "darwin/arm64"),
        ("windows 10", "AMD64", "windows/amd64"),
        ("windows server 2019", "ARM64", "windows/arm64"),
        ("freebsd", "amd64", "freebsd/amd64"),
        ("FreeBSD", "aarch64", "freebsd/arm64"),
        ("freebsd13.2", "amd64", "freebsd/amd64"),
        ("linux", "armv8l", "linux/arm/v8"),
        ("linux", "x86", "linux/386"),
        ("linux", "i386", "linux/386"),
        ("linux", "i686", "linux/386"),
    ],
)
def test_host_platform_detection(harness: Harness, os_name: str, machine: str, want: str) -> None:
    assert harness.call(PLATFORMS_BZL, "oci_platform", os_name, machine) == want


def test_machine_table_agrees_with_platform_py(harness: Harness) -> None:
    for machine, (arch, variant) in core_host.MACHINE_TO_ARCH.items():
        want = f"linux/{arch}/{variant}" if variant else f"linux/{arch}"
        assert harness.call(PLATFORMS_BZL, "oci_platform", "linux", machine) == want


# ---- the module extension ------------------------------------------------------------------


def test_extension_declares_a_hub_and_one_repo_per_tool_and_platform(harness: Harness) -> None:
    harness.run_extension([root_module(lock_tag())], {LOCK_LABEL: lock_text()})
    repos = harness.repos()
    assert set(repos) == expected_repo_names() | {"tools"}
    hub = repos.pop("tools")
    assert hub["rule"].endswith("repository_rules.bzl._hub_repository_impl")
    assert hub["attrs"]["hub"] == "tools"
    assert hub["attrs"]["lockfile"] == LOCK_LABEL
    for name, repo in repos.items():
        assert repo["rule"].endswith("repository_rules.bzl._tool_repository_impl"), name
        assert repo["environ"] == FETCH_ENVIRON
        attrs = repo["attrs"]
        tool, _, suffix = name.removeprefix("tools__").partition("__")
        platform = "*" if suffix == "any" else attrs["platform"]
        assert attrs["tool"] == tool
        assert attrs["lockfile"] == LOCK_LABEL
        assert attrs["manifest"] == LOCK["tools"][tool]["platforms"][platform]["manifest"]
        assert (attrs["toolfetch"], attrs["python"]) == ("", "")
        assert attrs["use_rctx_download"] is False
        assert attrs["timeout"] == 3600
    assert repos["tools__hello__linux_arm_v7"]["attrs"]["platform"] == "linux/arm/v7"
    assert repos["tools__say__any"]["attrs"]["platform"] == "*"
    assert harness.of("read") == [{"label": LOCK_LABEL}]  # read once, through module_ctx


def test_extension_passes_fetcher_settings_to_every_repo(harness: Harness) -> None:
    tag = lock_tag(toolfetch="/opt/bin/toolfetch", use_rctx_download=True, timeout=60)
    harness.run_extension([root_module(tag)], {LOCK_LABEL: lock_text()})
    for repo in harness.repos().values():
        assert repo["attrs"]["toolfetch"] == "/opt/bin/toolfetch"
        assert repo["attrs"]["use_rctx_download"] is True
        assert repo["attrs"]["timeout"] == 60


def test_extension_several_hubs_and_modules(harness: Harness) -> None:
    other = "@@dep+//:tools.lock.json"
    small = {"version": 1, "tools": {"say": LOCK["tools"]["say"]}}
    modules = [
        root_module(lock_tag(), lock_tag(name="more", lockfile=other)),
        # A dependency asking for the same hub from the same lockfile is deduplicated.
        {"name": "dep", "tags": {"lock": [lock_tag(name="more", lockfile=other)]}},
    ]
    harness.run_extension(modules, {LOCK_LABEL: lock_text(), other: lock_text(small)})
    assert set(harness.repos()) == expected_repo_names() | {"tools", "more", "more__say__any"}


def test_extension_rejects_one_name_for_two_lockfiles(harness: Harness) -> None:
    other = "@@//:other.lock.json"
    modules = [root_module(lock_tag(), lock_tag(lockfile=other))]
    with pytest.raises(sl.StarlarkError, match='name "tools" is used for both'):
        harness.run_extension(modules, {LOCK_LABEL: lock_text(), other: lock_text()})


@pytest.mark.parametrize(
    ("lock", "message"),
    [
        ({"version": 2, "tools": {}}, "unsupported lockfile version 2"),
        ({"version": 1}, r"\$.tools must be an object"),
        ({"version": 1, "tools": {"x": {"platforms": {}}}}, r"\$.tools.x.platforms must be"),
        (
            {"version": 1, "tools": {"x": {"platforms": {"linux": {"path": "x"}}}}},
            "malformed platform",
        ),
        (
            {"version": 1, "tools": {"x": {"platforms": {"*": {"path": "../x"}}}}},
            "must be relative",
        ),
        ({"version": 1, "tools": {"-x": {"platforms": {"*": {"path": "x"}}}}}, "invalid tool"),
    ],
)
def test_extension_refuses_unusable_lockfiles(
    harness: Harness, lock: dict[str, Any], message: str
) -> None:
    with pytest.raises(sl.StarlarkError, match=message):
        harness.run_extension([root_module(lock_tag())], {LOCK_LABEL: lock_text(lock)})


def test_extension_tag_needs_name_and_lockfile(harness: Harness) -> None:
    with pytest.raises(sl.StarlarkError, match='missing mandatory attribute "lockfile"'):
        harness.run_extension([root_module({"name": "tools"})], {})


# ---- WORKSPACE and bzlmod agree -------------------------------------------------------------


TEMPLATES = {p.name[: -len(".tpl")]: p.read_text()
             for p in (RULES / "private" / "templates").glob("*.tpl")}


def generated(harness: Harness, function: str, *args: Any) -> str:
    """A file the repositories generate, rendered from the templates they read."""
    text: str = harness.call(RENDER_BZL, function, TEMPLATES, *args)
    return text


def lock_value(harness: Harness, lock: dict[str, Any] = LOCK) -> Any:
    return harness.call(LOCKFILE_BZL, "parse_lockfile", lock_text(lock), LOCK_LABEL)


COMMON = {"toolfetch": "", "python": "", "use_rctx_download": False, "timeout": 3600}


def test_workspace_register_declares_what_the_extension_declares() -> None:
    bzlmod = Harness()
    bzlmod.run_extension([root_module(lock_tag())], {LOCK_LABEL: lock_text()})
    from_extension = {n: r["attrs"] for n, r in bzlmod.repos().items() if n != "tools"}

    gen = Harness()
    common = dict(COMMON, lockfile=LOCK_LABEL)
    text = generated(
        gen,
        "hub_repositories_bzl",
        "tools",
        lock_value(gen),
        LOCK_LABEL,
        "@toolfetch//rules/bazel/private:repository_rules.bzl",
        common,
    )
    ws = Harness({"@tools//:repositories.bzl": text})
    ws.call("@tools//:repositories.bzl", "toolfetch_register")
    from_workspace = {n: r["attrs"] for n, r in ws.repos().items()}
    assert from_workspace == from_extension
    assert ws.of("register_toolchains") == [{"labels": ["@tools//toolchains:all"]}]
    # Calling it again (a second WORKSPACE chunk) declares nothing twice.
    ws.call("@tools//:repositories.bzl", "toolfetch_register", register_toolchains=False)
    assert len(ws.repos()) == len(from_workspace)


def test_generated_hub_build(harness: Harness) -> None:
    text = generated(
        harness, "hub_build_file", "tools", lock_value(harness), LOCK_LABEL, "@t//:tool.bzl"
    )
    build = Harness({"@t//:tool.bzl": (RULES / "private" / "tool.bzl").read_text()})
    build.evaluate("BUILD.bazel", text)
    targets = build.targets()
    settings = {n: t["attrs"]["constraint_values"] for n, t in targets.items() if n[0] == "_"}
    assert settings == {
        "_platform_darwin_arm64": ["@platforms//os:osx", "@platforms//cpu:aarch64"],
        "_platform_linux_amd64": ["@platforms//os:linux", "@platforms//cpu:x86_64"],
        "_platform_linux_arm64": ["@platforms//os:linux", "@platforms//cpu:aarch64"],
        "_platform_linux_arm_v7": ["@platforms//os:linux", "@platforms//cpu:armv7"],
    }
    for name, target in [("hello", "tool"), ("hello_files", "files")]:
        actual = targets[name]["attrs"]["actual"]
        assert targets[name]["rule"] == "alias"
        assert actual["select"] == {
            ":_platform_darwin_arm64": f"@tools__hello__darwin_arm64//:{target}",
            ":_platform_linux_amd64": f"@tools__hello__linux_amd64//:{target}",
            ":_platform_linux_arm64": f"@tools__hello__linux_arm64//:{target}",
            ":_platform_linux_arm_v7": f"@tools__hello__linux_arm_v7//:{target}",
        }
        # The error on an unlocked platform names all locked ones (ppc64le too).
        assert ", ".join(HELLO_PLATFORMS) in actual["no_match_error"]
        assert "tool 'hello' is not locked for this execution platform" in actual["no_match_error"]
    assert targets["say"]["attrs"]["actual"] == "@tools__say__any//:tool"
    assert targets["say_files"]["attrs"]["actual"] == "@tools__say__any//:files"
    assert targets["hello_toolchain_type"]["rule"] == "toolchain_type"
    assert targets["say_toolchain_type"]["rule"] == "toolchain_type"


def test_generated_hub_for_a_tool_without_bazel_platforms(harness: Harness) -> None:
    lock = {"version": 1, "tools": {"odd": {"platforms": {"linux/ppc64le": entry("r", 1)}}}}
    tool_bzl = "@t//:tool.bzl"
    text = generated(harness, "hub_build_file", "tools", lock_value(harness, lock), "L", tool_bzl)
    build = Harness({tool_bzl: (RULES / "private" / "tool.bzl").read_text()})
    build.evaluate("BUILD.bazel", text)
    targets = build.targets()
    assert targets["odd"]["attrs"]["actual"] == ":_unavailable_odd"
    unavailable = targets["_unavailable_odd"]
    assert unavailable["rule"].endswith("tool.bzl._toolfetch_unavailable_impl")
    assert "L has: linux/ppc64le" in unavailable["attrs"]["message"]


def test_generated_toolchains(harness: Harness) -> None:
    text = generated(harness, "hub_toolchains_build_file", "tools", lock_value(harness), "L")
    build = Harness()
    build.evaluate("toolchains/BUILD.bazel", text)
    targets = build.targets()
    assert all(t["rule"] == "toolchain" for t in targets.values())  # safe for :all
    assert targets["hello_linux_amd64"]["attrs"] == {
        "exec_compatible_with": ["@platforms//os:linux", "@platforms//cpu:x86_64"],
        "toolchain": "@tools__hello__linux_amd64//:toolchain",
        "toolchain_type": "//:hello_toolchain_type",
    }
    assert targets["say_any"]["attrs"]["exec_compatible_with"] == []
    assert "hello_linux_ppc64le" not in targets


def test_generated_tool_repository_build(harness: Harness) -> None:
    lock = lock_value(harness)
    text = generated(
        harness,
        "tool_build_file",
        "hello",
        "linux/amd64",
        lock["tools"]["hello"]["platforms"]["linux/amd64"],
        LOCK_LABEL,
        "@t//:tool.bzl",
    )
    build = Harness({"@t//:tool.bzl": (RULES / "private" / "tool.bzl").read_text()})
    build.evaluate("BUILD.bazel", text)
    targets = build.targets()
    assert targets["files"]["attrs"]["srcs"] == {"glob": ["files/**"]}
    assert targets["tool"]["attrs"] == {
        "src": "files/bin/hello",
        "data": [":files"],
        "tree": "files",
    }
    assert targets["tool"]["executable"] is True
    assert targets["toolchain"]["attrs"] == {"tool": ":tool", "files": ":files"}


def test_example_module_file_drives_the_extension() -> None:
    """examples/bazel/bzlmod/MODULE.bazel, evaluated with fake use_extension/use_repo."""
    module_file = ROOT / "examples" / "bazel" / "bzlmod" / "MODULE.bazel"
    h = Harness()
    h.evaluate_module_file(module_file)
    assert h.of("use_extension") == [
        {"bzl": "@toolfetch//rules/bazel:extensions.bzl", "name": "toolfetch"}
    ]
    assert h.of("override") == [{"module_name": "toolfetch", "path": "../../.."}]
    tags = h.of("tag")
    assert [(t["extension"], t["tag"]) for t in tags] == [
        ("@toolfetch//rules/bazel:extensions.bzl%toolfetch", "lock")
    ]
    tag_values = [t["attrs"] for t in tags]
    assert tag_values == [{"name": "tools", "lockfile": "//:tools.lock.json"}]
    assert h.of("use_repo") == [{"names": ["tools"], "aliases": {}}]
    assert h.of("register_toolchains") == [{"labels": ["@tools//toolchains:all"]}]
    lockfile = module_file.parent / "tools.lock.json"
    h.run_extension([root_module(*tag_values)], {"//:tools.lock.json": lockfile.read_text()})
    lock = json.loads(lockfile.read_text())
    want = {"tools"} | {
        f"tools__{t}__{'any' if p == '*' else p.replace('/', '_')}"
        for t in lock["tools"]
        for p in lock["tools"][t]["platforms"]
    }
    assert set(h.repos()) == want


# ---- failure messages and rctx.download URLs ------------------------------------------------


@pytest.mark.parametrize(
    ("code", "meaning"),
    [
        (2, "usage error or invalid input"),
        (3, "integrity failure"),
        (4, "not found"),
        (5, "authentication or authorization failure"),
        (6, "registry unreachable"),
        (7, "lockfile out of date"),
        (127, "the fetcher could not be started"),
        (256, "timed out"),
    ],
)
def test_fetch_failure_message(harness: Harness, code: int, meaning: str) -> None:
    argv = ["toolfetch", "fetch", "--lockfile", "/w/tools.lock.json", "hello"]
    text = harness.call(
        LOCKFILE_BZL,
        "fetch_failure_message",
        "hello",
        "linux/amd64",
        LOCK_LABEL,
        argv,
        code,
        "",
        "error: something specific\n",
    )
    assert f"fetching tool 'hello' for platform linux/amd64 (lockfile {LOCK_LABEL})" in text
    assert f"exit code {code}: {meaning}" in text
    assert "fetcher stderr:\nerror: something specific" in text
    assert "command: toolfetch fetch --lockfile /w/tools.lock.json hello" in text
    if code == 5:
        assert "DOCKER_CONFIG" in text and "toolfetch login" in text


def test_fetch_argv(harness: Harness) -> None:
    argv = harness.call(
        LOCKFILE_BZL,
        "fetch_argv",
        ["/usr/bin/python3", "-m", "toolfetch"],
        "/w/l.json",
        "*",
        "/o",
        "t",
    )
    assert argv == [
        "/usr/bin/python3",
        "-m",
        "toolfetch",
        "fetch",
        "--lockfile",
        "/w/l.json",
        "--platform",
        "*",
        "--output",
        "/o",
        "t",
    ]


@pytest.mark.parametrize(
    ("ref", "want"),
    [
        ("127.0.0.1:5000/t/hello:1", {"host": "127.0.0.1:5000", "repo": "t/hello"}),
        ("ghcr.io/acme/tools/protoc:25.1", {"host": "ghcr.io", "repo": "acme/tools/protoc"}),
        (f"ghcr.io/acme/buf@{D}", {"host": "ghcr.io", "repo": "acme/buf"}),
        (f"localhost:5000/x:1@{D}", {"host": "localhost:5000", "repo": "x"}),
        ("alpine:3", {"host": "docker.io", "repo": "library/alpine"}),
        ("acme/tool", {"host": "docker.io", "repo": "acme/tool"}),
        ("oci-layout:registry:hello-1.0", None),
    ],
)
def test_parse_ref(harness: Harness, ref: str, want: dict[str, str] | None) -> None:
    assert harness.call(DOWNLOADS, "parse_ref", ref) == want


def test_blob_urls_follow_toolfetch_source_order(harness: Harness) -> None:
    lock = lock_value(harness)
    env = harness.call(DOWNLOADS, "parse_env_mirrors", "127.0.0.1:5000=env.mirror/pfx; x=y")
    urls = harness.call(DOWNLOADS, "blob_urls", lock, HELLO_REF, D, env, ["mirror.internal:5000"])
    assert urls == [
        f"https://env.mirror/v2/pfx/t/hello/blobs/{D}",
        f"https://mirror.internal:5000/v2/cache/t/hello/blobs/{D}",
        f"http://mirror.internal:5000/v2/cache/t/hello/blobs/{D}",
        f"http://127.0.0.1:5000/v2/t/hello/blobs/{D}",  # loopback: plain HTTP
    ]
    docker = harness.call(DOWNLOADS, "blob_urls", lock, "alpine:3", D, {}, [])
    assert docker == [f"https://registry-1.docker.io/v2/library/alpine/blobs/{D}"]
    assert harness.call(DOWNLOADS, "blob_urls", lock, "oci-layout:r:x", D, {}, []) == []


def test_repo_names(harness: Harness) -> None:
    plan = harness.call(LOCKFILE_BZL, "plan_repos", "tools", lock_value(harness))
    assert {r["name"] for r in plan} == expected_repo_names()
    assert [(r["tool"], r["platform"]) for r in plan] == sorted(
        [("hello", p) for p in HELLO_PLATFORMS] + [("say", "*")]
    )
    assert all(set(r) == {"name", "tool", "platform", "manifest"} for r in plan)


def test_bundled_lockfile_is_usable(harness: Harness) -> None:
    lockfile = ROOT / "lockfiles" / "tools.lock.json"
    if not lockfile.exists():
        pytest.skip("lockfiles/tools.lock.json not there yet")
    label = "@@toolfetch+//:lockfiles/tools.lock.json"
    harness.run_extension([root_module(lock_tag(lockfile=label))], {label: lockfile.read_text()})
    lock = json.loads(lockfile.read_text())
    assert len(harness.repos()) == 1 + sum(len(t["platforms"]) for t in lock["tools"].values())


TOOLFETCH = [sys.executable, "-m", "toolfetch"]


def test_example_lockfile_is_up_to_date(tmp_path: Path) -> None:
    """examples/bazel/tools.lock.json is what `toolfetch lock` writes for its tools.yaml."""
    example = ROOT / "examples" / "bazel"
    r = subprocess.run(
        [*TOOLFETCH, "lock", "--check", "--config", "tools.yaml", "--lockfile", "tools.lock.json"],
        cwd=example,
        env={**os.environ, "TOOLFETCH_CACHE_DIR": str(tmp_path / "cache")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert (example / "bzlmod" / "tools.lock.json").resolve() == example / "tools.lock.json"


# ---- use_rctx_download applies toolfetch's unpack rules ---------------------------------------

TITLES = ["tool", "bin/tool", "./bin//tool", "a/./b", "../evil", "/abs/evil", "a/../../evil",
          "a/..", "a\\b", "C:/evil", "c:evil", "bin/", "", ".", "./", "nul\x00byte", "é/ü",
          "..hidden", "a/..b"]


def test_starlark_and_python_agree_on_image_layer_types(harness: Harness) -> None:
    """downloads.bzl mirrors core/treekey.py's list of changeset media types (whiteouts)."""
    from toolfetch.core.treekey import IMAGE_LAYER_TYPES

    tables = harness.evaluate("t.bzl", 'load("//rules/bazel/private:downloads.bzl", '
                                       '"IMAGE_LAYER_TYPES")\nTYPES = IMAGE_LAYER_TYPES\n')
    assert set(tables["TYPES"]) == IMAGE_LAYER_TYPES


def test_starlark_and_python_agree_on_formats(harness: Harness) -> None:
    """downloads.bzl's archive and single-file formats are oci/formats.py's table."""
    from toolfetch.core.treekey import TAR_FORMATS
    from toolfetch.oci.formats import FORMATS

    tables = harness.evaluate("t.bzl", 'load("//rules/bazel/private:downloads.bzl", '
                                       '"ARCHIVE_TYPES", "SINGLE_FILE_FORMATS")\n'
                                       'A = ARCHIVE_TYPES\nS = SINGLE_FILE_FORMATS\n')
    assert set(tables["A"]) == {n for n, f in FORMATS.items() if f.is_archive}
    assert set(tables["S"]) == {n for n, f in FORMATS.items() if not f.is_archive}
    source = (RULES / "private" / "downloads.bzl").read_text()
    assert all(f'"{name}"' in source.split("def applies_whiteouts")[1] for name in TAR_FORMATS)


@pytest.mark.parametrize("unpack", ["gzip", "zstd", "xz", "bzip2"])
def test_download_plan_refuses_single_compressed_files_by_name(harness: Harness,
                                                               unpack: str) -> None:
    with pytest.raises(Exception, match=f"single {unpack}-compressed file"):
        harness.call(DOWNLOADS, "download_plan", _raw_entry("bin/t", unpack=unpack), "t")


@pytest.mark.parametrize("title", TITLES)
def test_starlark_and_python_agree_on_titles(harness: Harness, title: str) -> None:
    """One rule for titles in both fetchers: the lockfile's title is joined into a path."""
    from toolfetch.core.errors import UsageError
    from toolfetch.oci.formats import check_title

    try:
        python: str | None = check_title(title)
    except UsageError:
        python = None
    assert harness.call(DOWNLOADS, "check_title", title) == python


def _raw_entry(title: str | None, media: str = "application/octet-stream",
               unpack: str = "raw") -> dict[str, Any]:
    layer: dict[str, Any] = {"digest": D, "mediaType": media, "size": 1, "unpack": unpack}
    if title is not None:
        layer["title"] = title
    return {"layers": [layer], "manifest": D, "path": "t", "ref": HELLO_REF}


def test_download_plan_marks_every_raw_layer_executable(harness: Harness) -> None:
    entry = _raw_entry("bin/t")
    entry["layers"].append({"digest": digest(7), "mediaType": "text/plain", "size": 1,
                            "unpack": "raw", "title": "share/data.txt"})
    plan = harness.call(DOWNLOADS, "download_plan", entry, "t")
    steps = [(s["output"], s["archive"]) for s in plan]
    assert steps == [("bin/t", None), ("share/data.txt", None)]
    from toolfetch.cache.unpack import RAW_MODE  # the Python side: every raw file 0o555 as well

    assert RAW_MODE == 0o555
    repositories = (RULES / "private" / "repository_rules.bzl").read_text()
    assert "executable = True" in repositories and "download_plan(entry, tool)" in repositories


@pytest.mark.parametrize("entry, message", [
    (_raw_entry("../evil"), "unsafe or missing title"),
    (_raw_entry("/abs/evil"), "unsafe or missing title"),
    (_raw_entry(None), "unsafe or missing title"),
    ({**_raw_entry(None, "application/vnd.oci.image.layer.v1.tar+gzip", "tar+gzip"),
      "layers": 2 * _raw_entry(None, "application/vnd.oci.image.layer.v1.tar+gzip",
                               "tar+gzip")["layers"]},
     "container image of 2 layers"),
    (_raw_entry("x", unpack="rar"), "unknown unpack format"),
])
def test_download_plan_refuses_what_toolfetch_would_not_build(harness: Harness,
                                                              entry: dict[str, Any],
                                                              message: str) -> None:
    with pytest.raises(sl.StarlarkError, match=message):
        harness.call(DOWNLOADS, "download_plan", entry, "t")
