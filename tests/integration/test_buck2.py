"""Buck2 shims (rules/buck2): evaluated under starlark-rust with a fake Buck2 prelude.

No Buck2 binary is available here. These tests evaluate the real .bzl files with
starlark-pyo3 (starlark-rust, the interpreter Buck2 embeds) against the fake prelude in
tests/support/starlark_buck2_fakes/, then assert on the declared targets, the select arms per
platform, and the exact command lines of the recorded actions. The last test runs the
recorded host-platform command for real against a test registry.
"""

from __future__ import annotations

import configparser
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import starlark as sl
from tf import REPO, SUPPORT

FAKES = SUPPORT / "starlark_buck2_fakes"
RULES = REPO / "rules"
EXAMPLE = REPO / "examples" / "buck2"

sys.path.insert(0, str(FAKES))
import harness as H  # noqa: E402

from toolfetch.core import platform as tf_platform  # noqa: E402

LINUX_X86_64 = H.Platform.of("linux", "x86_64")
LINUX_ARM64 = H.Platform.of("linux", "arm64")
MACOS_ARM64 = H.Platform.of("macos", "arm64")
MACOS_X86_64 = H.Platform.of("macos", "x86_64")
WINDOWS_X86_64 = H.Platform.of("windows", "x86_64")
LINUX_RISCV64 = H.Platform.of("linux", "riscv64")
FREEBSD_X86_64 = H.Platform.of("freebsd", "x86_64")

PROTOC_PLATFORMS = ["darwin/arm64", "linux/amd64", "linux/arm/v7", "linux/arm64", "windows/amd64"]
BUF_PLATFORMS = ["darwin/arm64", "linux/amd64"]
TREE = "buck-out/v2/gen/root/__{}__/{}"


def _digest(c: str) -> str:
    return "sha256:" + c * 64


def _entry(ref: str, path: str, c: str, index: bool = True) -> dict[str, Any]:
    e: dict[str, Any] = {
        "layers": [
            {
                "digest": _digest(c),
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "size": 1234,
                "title": "tool.tar.gz",
                "unpack": "tar+gzip",
            }
        ],
        "manifest": _digest(c),
        "path": path,
        "ref": ref,
    }
    if index:
        e["index"] = _digest("f")
    return e


def make_lock() -> dict[str, Any]:
    """A lockfile as docs/lockfile.md describes: several platforms, one "*" tool."""
    protoc_ref = "ghcr.io/acme/tools/protoc:25.1"
    buf_ref = "ghcr.io/acme/tools/buf:1.28"
    hello_ref = "oci-layout:registry:hello"
    exe = {"windows/amd64": "bin/protoc.exe"}
    return {
        "mirrors": {"ghcr.io": ["registry.internal:5000/ghcr"]},
        "tools": {
            "buf": {
                "path": "buf",
                "platforms": {p: _entry(buf_ref, "buf", "b") for p in BUF_PLATFORMS},
                "ref": buf_ref,
            },
            "hello": {
                "path": "hello",
                "platforms": {"*": _entry(hello_ref, "hello", "c", index=False)},
                "ref": hello_ref,
            },
            "protoc": {
                "path": "bin/protoc",
                "platforms": {
                    p: _entry(protoc_ref, exe.get(p, "bin/protoc"), "a") for p in PROTOC_PLATFORMS
                },
                "ref": protoc_ref,
            },
        },
        "version": 1,
    }


USAGE = """\
load("@toolfetch//rules/buck2:defs.bzl", "toolfetch_tools")
load(":tools.lock.json", lock = "value")        # Buck2 loads JSON natively
toolfetch_tools(name = "tools", lock = lock)     # declares :<tool> for every locked tool
"""


def _write_lock(path: Path, lock: dict[str, Any]) -> None:
    path.write_text(json.dumps(lock, indent=2, sort_keys=True) + "\n")


def _buck(
    tmp_path: Path,
    buck: str = USAGE,
    config: dict[tuple[str, str], str] | None = None,
    toolchains: str | None = None,
    lock: dict[str, Any] | None = None,
) -> H.FakeBuck2:
    root = tmp_path / "project"
    (root / "toolchains").mkdir(parents=True, exist_ok=True)
    _write_lock(root / "tools.lock.json", lock or make_lock())
    (root / "BUCK").write_text(buck)
    b = H.FakeBuck2(
        cells={
            "root": root,
            "toolchains": root / "toolchains",
            "toolfetch": REPO,
            "fakes": FAKES,
        },
        config=config or {},
    )
    b.eval_build_file(root / "BUCK")
    if toolchains is not None:
        (root / "toolchains" / "BUCK").write_text(toolchains)
        b.eval_build_file(root / "toolchains" / "BUCK")
    return b


@pytest.fixture
def buck(tmp_path: Path) -> H.FakeBuck2:
    return _buck(tmp_path)


def _argv(result: dict[str, Any]) -> list[str]:
    (action,) = result["actions"]
    return H.render(action["argv"])


# ------------------------------------------------------------------ the .bzl files


def _bzl_files() -> list[Path]:
    return sorted(RULES.rglob("*.bzl")) + sorted(FAKES.glob("*.bzl"))


@pytest.mark.parametrize("path", _bzl_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_bzl_parses_and_lints_clean(path: Path) -> None:
    """Every .bzl under rules/ parses in Buck2's dialect (types on) and lints clean."""
    ast = sl.parse(str(path), path.read_text(), H.dialect())
    serious = (sl.EvalSeverity.Error, sl.EvalSeverity.Warning)
    assert [str(lint) for lint in ast.lint() if lint.severity in serious] == []


def test_buck2_bzl_has_no_lint_at_all() -> None:
    for path in sorted((RULES / "buck2").rglob("*.bzl")):
        ast = sl.parse(str(path), path.read_text(), H.dialect())
        assert [str(x) for x in ast.lint()] == [], path


def test_buck2_bzl_typechecks() -> None:
    """starlark-rust's static typechecker (undefined names, arity, annotated types) passes
    on the rules, with the fake prelude's interface standing in for Buck2's globals."""
    b = H.FakeBuck2(cells={"toolfetch": REPO})
    prelude = sl.parse("prelude.bzl", H.PRELUDE.read_text(), H.dialect())
    errors, prelude_iface, *_ = prelude.typecheck(H.globals_(), {})
    # The only unknowns in the fake are the host callables the harness injects.
    assert all("Variable `py_" in str(e) for e in errors), [str(e) for e in errors]
    interfaces = {"fake//:prelude.bzl": prelude_iface}
    for path, name in (
        (RULES / "buck2" / "private" / "platforms.bzl", ":platforms.bzl"),
        (RULES / "buck2" / "private" / "rules.bzl", "//rules/buck2/private:rules.bzl"),
        (RULES / "buck2" / "defs.bzl", "@toolfetch//rules/buck2:defs.bzl"),
        (EXAMPLE / "tool_rules.bzl", ":tool_rules.bzl"),
    ):
        ast = sl.parse(str(path), b._with_prelude(path.read_text()), H.dialect())
        errors, iface, *_ = ast.typecheck(H.globals_(), interfaces)
        assert [str(e) for e in errors] == [], path
        interfaces[name] = iface


def test_platforms_bzl_is_platform_py() -> None:
    """platforms.bzl mirrors the one table in toolfetch.core.platform (BUCK2_OS / BUCK2_CPU)."""
    b = H.FakeBuck2(cells={"toolfetch": REPO})
    m = sl.Module()
    sl.eval(
        m,
        sl.parse(
            "t",
            'load("toolfetch//rules/buck2/private:platforms.bzl", "OCI_OS_TO_BUCK2", '
            '"OCI_CPU_TO_BUCK2")\nx = (OCI_OS_TO_BUCK2, OCI_CPU_TO_BUCK2)\n',
            H.dialect(),
        ),
        H.globals_(),
        b._loader(REPO / "BUCK"),
    )
    tables: Any = m["x"]
    os_table, cpu_table = tables
    assert os_table == {k: f"prelude//os:{v}" for k, v in tf_platform.BUCK2_OS.items()}
    assert cpu_table == {k: f"prelude//cpu:{v}" for k, v in tf_platform.BUCK2_CPU.items()}
    for value in list(os_table.values()) + list(cpu_table.values()):
        assert value in H.KNOWN_CONSTRAINTS


@pytest.mark.parametrize(
    "platform",
    [
        "linux/amd64",
        "linux/arm64",
        "linux/arm64/v8",
        "darwin/amd64",
        "darwin/arm64",
        "windows/amd64",
        "windows/arm64",
        "linux/arm/v7",
        "linux/arm",
        "linux/riscv64",
        "freebsd/amd64",
    ],
)
def test_buck2_constraints_agree_with_platform_py(platform: str) -> None:
    b = H.FakeBuck2(cells={"toolfetch": REPO})
    fm = b.load(RULES / "buck2" / "private" / "platforms.bzl")
    got: Any = fm.call("buck2_constraints", platform)
    try:
        want = list(tf_platform.buck2_constraints(tf_platform.Platform.parse(platform)))
    except KeyError:
        want = None
    assert (list(got) if got is not None else None) == want


# ------------------------------------------------------------------ declared targets


def test_declares_a_target_per_tool_and_platform(buck: H.FakeBuck2) -> None:
    kinds = {str(label): buck.kind(label) for label in buck.targets}
    assert kinds == {
        "root//:buf": "toolfetch_tool",
        "root//:tools__buf__darwin_arm64": "toolfetch_fetch",
        "root//:tools__buf__linux_amd64": "toolfetch_fetch",
        "root//:tools__buf__unsupported": "toolfetch_unsupported",
        "root//:hello": "toolfetch_tool",
        "root//:tools__hello": "toolfetch_fetch",
        "root//:protoc": "toolfetch_tool",
        "root//:tools__protoc__darwin_arm64": "toolfetch_fetch",
        "root//:tools__protoc__linux_amd64": "toolfetch_fetch",
        "root//:tools__protoc__linux_arm64": "toolfetch_fetch",
        "root//:tools__protoc__linux_arm_v7": "toolfetch_fetch",
        "root//:tools__protoc__windows_amd64": "toolfetch_fetch",
        "root//:tools__protoc__unsupported": "toolfetch_unsupported",
    }
    fetch = buck.target("root//:tools__protoc__windows_amd64").attrs
    assert fetch == {
        "name": "tools__protoc__windows_amd64",
        "tool": "protoc",
        "platform": "windows/amd64",
        "path": "bin/protoc.exe",
        "lockfile": "tools.lock.json",
        "cache_dir": "",
        "env": {},
        "fetcher": "toolfetch",
        "visibility": ["PUBLIC"],
    }


def test_tool_selects_on_os_then_cpu_as_the_prelude_does(buck: H.FakeBuck2) -> None:
    u = ":tools__protoc__unsupported"
    assert buck.target("root//:protoc").attrs["actual"] == {
        "__select__": {
            "DEFAULT": u,
            "prelude//os:linux": {
                "__select__": {
                    "DEFAULT": u,
                    "prelude//cpu:arm64": ":tools__protoc__linux_arm64",
                    "prelude//cpu:x86_64": ":tools__protoc__linux_amd64",
                }
            },
            "prelude//os:macos": {
                "__select__": {
                    "DEFAULT": u,
                    "prelude//cpu:arm64": ":tools__protoc__darwin_arm64",
                }
            },
            "prelude//os:windows": {
                "__select__": {
                    "DEFAULT": u,
                    "prelude//cpu:x86_64": ":tools__protoc__windows_amd64",
                }
            },
        }
    }
    # linux/arm/v7 has no Buck2 constraint in platforms.bzl: fetchable by name only.
    assert buck.target("root//:protoc").attrs["platforms"] == PROTOC_PLATFORMS


@pytest.mark.parametrize(
    ("platform", "arm"),
    [
        (LINUX_X86_64, ":tools__protoc__linux_amd64"),
        (LINUX_ARM64, ":tools__protoc__linux_arm64"),
        (MACOS_ARM64, ":tools__protoc__darwin_arm64"),
        (WINDOWS_X86_64, ":tools__protoc__windows_amd64"),
        (MACOS_X86_64, ":tools__protoc__unsupported"),
        (LINUX_RISCV64, ":tools__protoc__unsupported"),
        (FREEBSD_X86_64, ":tools__protoc__unsupported"),
    ],
    ids=lambda x: getattr(x, "name", x),
)
def test_select_arm_per_platform(buck: H.FakeBuck2, platform: H.Platform, arm: str) -> None:
    assert buck.configured_attrs("root//:protoc", platform)["actual"] == arm


# ------------------------------------------------------------------ actions


@pytest.mark.parametrize("platform", PROTOC_PLATFORMS)
def test_fetch_action_command_line(buck: H.FakeBuck2, platform: str) -> None:
    suffix = platform.replace("/", "_")
    name = f"tools__protoc__{suffix}"
    # A fetch target's action does not depend on the configuration it is built in.
    result = buck.analyze(f"root//:{name}", LINUX_X86_64)
    (action,) = result["actions"]
    tree = TREE.format(name, "protoc")
    assert H.render(action["argv"]) == [
        "toolfetch",
        "fetch",
        "--lockfile",
        "tools.lock.json",
        "--platform",
        platform,
        "--output",
        tree,
        "protoc",
    ]
    assert action["local_only"] is True
    assert action["prefer_local"] is False
    assert action["category"] == "toolfetch_fetch"
    assert action["identifier"] == f"protoc {platform}"
    assert action["env"] == {}
    # The lockfile is an input (a lock change re-runs the fetch); the tree the output.
    assert [i["artifact"] for i in action["inputs"]] == ["tools.lock.json"]
    assert [(o["artifact"], o["dir"]) for o in action["outputs"]] == [(tree, True)]
    assert result["declared"] == [o for o in result["declared"] if o["artifact"] == tree]

    exe_path = "bin/protoc.exe" if platform.startswith("windows") else "bin/protoc"
    run = H.provider(result, "RunInfo")["args"]["__cmd_args__"]
    assert H.render(run["items"]) == [f"{tree}/{exe_path}"]
    assert [h["artifact"] for h in run["hidden"]] == [tree]  # the whole tree goes along
    default = H.provider(result, "DefaultInfo")
    assert [a["artifact"] for a in default["default_outputs"]] == [tree]
    (exe_info,) = default["sub_targets"]["exe"]
    assert [a["artifact"] for a in exe_info["default_outputs"]] == [f"{tree}/{exe_path}"]


@pytest.mark.parametrize(
    ("platform", "fetch"),
    [
        (LINUX_X86_64, "tools__protoc__linux_amd64"),
        (LINUX_ARM64, "tools__protoc__linux_arm64"),
        (MACOS_ARM64, "tools__protoc__darwin_arm64"),
        (WINDOWS_X86_64, "tools__protoc__windows_amd64"),
    ],
    ids=lambda x: getattr(x, "name", x),
)
def test_tool_provides_the_platforms_default_and_run_info(
    buck: H.FakeBuck2, platform: H.Platform, fetch: str
) -> None:
    tool = buck.analyze("root//:protoc", platform)
    direct = buck.analyze(f"root//:{fetch}", platform)
    assert tool["actions"] == []
    assert tool["providers"] == direct["providers"]
    assert [p["__provider__"] for p in tool["providers"]] == ["DefaultInfo", "RunInfo"]


def test_any_platform_tool_serves_every_platform(buck: H.FakeBuck2) -> None:
    assert buck.target("root//:hello").attrs["actual"] == ":tools__hello"
    tree = TREE.format("tools__hello", "hello")
    for platform in (LINUX_X86_64, MACOS_ARM64, WINDOWS_X86_64, LINUX_RISCV64, FREEBSD_X86_64):
        result = buck.analyze("root//:hello", platform)
        run = H.provider(result, "RunInfo")["args"]["__cmd_args__"]
        assert H.render(run["items"]) == [f"{tree}/hello"]
    fetch = buck.analyze("root//:tools__hello", LINUX_X86_64)
    # One manifest for every platform: nothing to pass as --platform (the fetcher takes
    # the host's, and a "*" entry matches any).
    assert _argv(fetch) == [
        "toolfetch",
        "fetch",
        "--lockfile",
        "tools.lock.json",
        "--output",
        tree,
        "hello",
    ]
    assert fetch["actions"][0]["local_only"] is True


@pytest.mark.parametrize(
    ("tool", "platform", "described"),
    [
        ("protoc", MACOS_X86_64, "darwin/amd64"),
        ("protoc", LINUX_RISCV64, "linux/<unmapped cpu>"),
        ("protoc", FREEBSD_X86_64, "<unmapped os>/amd64"),
        ("buf", WINDOWS_X86_64, "windows/amd64"),
        ("buf", LINUX_ARM64, "linux/arm64"),
    ],
    ids=lambda x: getattr(x, "name", x),
)
def test_unlocked_execution_platform_fails_naming_locked_platforms(
    buck: H.FakeBuck2, tool: str, platform: H.Platform, described: str
) -> None:
    with pytest.raises(H.Buck2Error) as e:
        buck.analyze(f"root//:{tool}", platform)
    msg = str(e.value)
    locked = PROTOC_PLATFORMS if tool == "protoc" else BUF_PLATFORMS
    assert (
        f'toolfetch: tool "{tool}" is not locked for this execution platform ({described}); '
        f"tools.lock.json has: {', '.join(locked)}."
    ) in msg
    assert "toolfetch lock" in msg


def test_unsupported_target_is_harmless_where_the_lock_covers(buck: H.FakeBuck2) -> None:
    """`buck2 build //...` analyses every target: the DEFAULT arm must not fail there."""
    for platform in (LINUX_X86_64, LINUX_ARM64, MACOS_ARM64, WINDOWS_X86_64):
        result = buck.analyze("root//:tools__protoc__unsupported", platform)
        assert result["actions"] == []
        assert H.provider(result, "DefaultInfo")["default_outputs"] == []
    with pytest.raises(H.Buck2Error, match="not locked"):
        buck.analyze("root//:tools__protoc__unsupported", MACOS_X86_64)


# ------------------------------------------------------------------ execution platform


CONSUMERS = """\
load("@toolfetch//rules/buck2:defs.bzl", "toolfetch_tools")
load("fakes//:testing.bzl", "uses_tool")
load(":tools.lock.json", lock = "value")
toolfetch_tools(name = "tools", lock = lock)
uses_tool(name = "via_exec_dep", tool = ":protoc")
uses_tool(name = "via_toolchain", toolchain = "toolchains//:protoc")
"""
TOOLCHAINS = """\
load("@toolfetch//rules/buck2:defs.bzl", "toolfetch_toolchains")
load("root//:tools.lock.json", lock = "value")
toolfetch_toolchains(lock = lock, tools_package = "root//")
"""


@pytest.mark.parametrize("via", ["via_exec_dep", "via_toolchain"])
def test_dependents_get_the_execution_platforms_tool(tmp_path: Path, via: str) -> None:
    """Building for linux/arm64 on a linux/x86_64 executor runs the x86_64 protoc."""
    b = _buck(tmp_path, CONSUMERS, toolchains=TOOLCHAINS)
    result = b.analyze(f"root//:{via}", LINUX_ARM64, exec_platform=LINUX_X86_64)
    (action,) = result["actions"]
    tree = TREE.format("tools__protoc__linux_amd64", "protoc")
    argv = H.render(action["argv"])
    assert argv[:2] == [f"{tree}/bin/protoc", "--version"]
    assert tree in [i["artifact"] for i in action["inputs"]]
    # And the other way round.
    result = b.analyze(f"root//:{via}", LINUX_X86_64, exec_platform=MACOS_ARM64)
    argv = H.render(result["actions"][0]["argv"])
    assert argv[0] == TREE.format("tools__protoc__darwin_arm64", "protoc") + "/bin/protoc"


def test_toolchain_targets(tmp_path: Path) -> None:
    b = _buck(tmp_path, CONSUMERS, toolchains=TOOLCHAINS)
    toolchains = {str(lab): b.kind(lab) for lab in b.targets if lab.cell == "toolchains"}
    assert toolchains == {
        "toolchains//:buf": "toolfetch_toolchain",
        "toolchains//:hello": "toolfetch_toolchain",
        "toolchains//:protoc": "toolfetch_toolchain",
    }
    t = b.target(H.Label("toolchains", "", "protoc"))
    assert t.attrs["tool"] == "root//:protoc"
    assert b.rule_specs[t.rule_id]["is_toolchain_rule"] is True
    assert b.rule_specs[t.rule_id]["attrs"]["tool"]["kind"] == "exec_dep"
    result = b.analyze("toolchains//:protoc", LINUX_ARM64, exec_platform=WINDOWS_X86_64)
    run = H.provider(result, "RunInfo")["args"]["__cmd_args__"]
    assert H.render(run["items"]) == [
        TREE.format("tools__protoc__windows_amd64", "protoc") + "/bin/protoc.exe"
    ]


# ------------------------------------------------------------------ configuration


def test_fetcher_and_cache_dir_from_buckconfig(tmp_path: Path) -> None:
    b = _buck(
        tmp_path,
        config={
            ("toolfetch", "fetcher"): "/opt/toolfetch/bin/toolfetch",
            ("toolfetch", "cache_dir"): "/var/cache/toolfetch",
        },
    )
    result = b.analyze("root//:tools__buf__linux_amd64", LINUX_X86_64)
    assert _argv(result)[:2] == ["/opt/toolfetch/bin/toolfetch", "fetch"]
    assert {k: H.render(v) for k, v in result["actions"][0]["env"].items()} == {
        "TOOLFETCH_CACHE_DIR": ["/var/cache/toolfetch"],
    }


def test_fetcher_as_a_target_and_explicit_lockfile_label(tmp_path: Path) -> None:
    buck = """\
load("@toolfetch//rules/buck2:defs.bzl", "toolfetch_tools")
load("fakes//:testing.bzl", "script")
load(":tools.lock.json", lock = "value")
export_file(name = "lock", src = "tools.lock.json")
script(name = "toolfetch_bin", src = "toolfetch.py")
toolfetch_tools(
    name = "t",
    lock = lock,
    lockfile = ":lock",
    fetcher = ":toolfetch_bin",
    env = {"TOOLFETCH_OFFLINE": "1"},
    visibility = ["//..."],
)
"""
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "toolfetch.py").write_text("#!/usr/bin/env python3\n")
    b = _buck(tmp_path, buck)
    target = b.target("root//:t__protoc__linux_arm64")
    assert target.attrs["fetcher_target"] == ":toolfetch_bin"
    assert "fetcher" not in target.attrs
    assert target.attrs["visibility"] == ["//..."]
    result = b.analyze(target.label, LINUX_X86_64)
    assert _argv(result) == [
        "toolfetch.py",
        "fetch",
        "--lockfile",
        "tools.lock.json",
        "--platform",
        "linux/arm64",
        "--output",
        TREE.format("t__protoc__linux_arm64", "protoc"),
        "protoc",
    ]
    inputs = [i["artifact"] for i in result["actions"][0]["inputs"]]
    assert inputs == ["toolfetch.py", "tools.lock.json"]
    assert {k: H.render(v) for k, v in result["actions"][0]["env"].items()} == {
        "TOOLFETCH_OFFLINE": ["1"],
    }


def test_lockfile_in_a_subpackage_is_a_package_path(tmp_path: Path) -> None:
    root = tmp_path / "project"
    (root / "third_party").mkdir(parents=True)
    _write_lock(root / "third_party" / "tools.lock.json", make_lock())
    b = H.FakeBuck2(cells={"root": root, "toolfetch": REPO, "fakes": FAKES})
    (root / "third_party" / "BUCK").write_text(USAGE)
    b.eval_build_file(root / "third_party" / "BUCK")
    result = b.analyze("root//third_party:tools__buf__darwin_arm64", MACOS_ARM64)
    argv = _argv(result)
    assert argv[3] == "third_party/tools.lock.json"
    assert argv[7] == "buck-out/v2/gen/root/third_party/__tools__buf__darwin_arm64__/buf"


@pytest.mark.parametrize(
    "bad",
    [{"version": 2, "tools": {}}, {"tools": {}}, {"version": 1}, {"version": 1, "tools": []}],
    ids=["version2", "no-version", "no-tools", "tools-not-a-dict"],
)
def test_not_a_lockfile_fails_at_load(tmp_path: Path, bad: Any) -> None:
    with pytest.raises(sl.StarlarkError, match=r"tools\.lock\.json is not a version 1 toolfetch"):
        _buck(tmp_path, lock=bad)


def test_lock_must_be_a_dict_by_type_annotation(tmp_path: Path) -> None:
    with pytest.raises(sl.StarlarkError, match="does not match the type annotation"):
        _buck(tmp_path, lock=[1])  # type: ignore[arg-type]


def test_lockfile_passes_the_schema() -> None:
    """The lock these tests use is a real one by the shipped schema."""
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((REPO / "tools/toolfetch/schemas/lockfile.schema.json").read_text())
    jsonschema.validate(make_lock(), schema)


# ------------------------------------------------------------------ the example project


def _example_cells(project: Path = EXAMPLE) -> dict[str, Path]:
    cfg = configparser.ConfigParser()
    cfg.read(project / ".buckconfig")
    cells = {name: project / path for name, path in cfg["cells"].items()}
    cells["prelude"] = FAKES  # the fake prelude stands in for the bundled one
    return cells


def _example(project: Path = EXAMPLE) -> H.FakeBuck2:
    b = H.FakeBuck2(cells=_example_cells(project))
    b.eval_build_file(project / "BUCK")
    b.eval_build_file(project / "toolchains" / "BUCK")
    return b


def test_example_project_layout() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(EXAMPLE / ".buckconfig")
    assert dict(cfg["cells"]) == {
        "root": ".",
        "prelude": "prelude",
        "toolchains": "toolchains",
        "none": "none",
        "toolfetch": "third_party/toolfetch",
    }
    assert cfg["toolfetch"]["fetcher"] == "toolfetch"
    assert (EXAMPLE / ".buckroot").exists()  # pins the project root to the example
    vendored = EXAMPLE / "third_party/toolfetch/rules/buck2"
    assert vendored.resolve() == (RULES / "buck2").resolve()
    for name in ("BUCK", "toolchains/BUCK"):
        ast = sl.parse(name, (EXAMPLE / name).read_text(), H.dialect())
        assert [str(x) for x in ast.lint()] == []
    ast = sl.parse("tool_rules.bzl", (EXAMPLE / "tool_rules.bzl").read_text(), H.dialect())
    assert [str(x) for x in ast.lint()] == []


def test_example_lockfile_is_current() -> None:
    """examples/buck2/tools.lock.json is what `toolfetch lock` makes of its tools.yaml."""
    proc = subprocess.run(
        ["toolfetch", "lock", "--check", "--config", "tools.yaml", "--lockfile", "tools.lock.json"],
        cwd=EXAMPLE,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_example_project_evaluates() -> None:
    b = _example()
    lock = json.loads((EXAMPLE / "tools.lock.json").read_text())
    assert sorted(lock["tools"]) == ["greet", "hello", "say"]
    for tool in lock["tools"]:
        assert b.kind(f"root//:{tool}") == "toolfetch_tool"
        assert b.kind(H.Label("toolchains", "", tool)) == "toolfetch_toolchain"
    genrules = {
        str(t.label): t.attrs["cmd"]
        for t in b.targets.values()
        if b.rule_names[t.rule_id] == "genrule"
    }
    assert genrules == {
        "root//:hello_txt": "$(exe :hello) > $OUT",
        "root//:say_txt": "$(exe :say) > $OUT",
    }
    # The toolchain path: a rule with attrs.toolchain_dep(default = "toolchains//:greet").
    result = b.analyze("root//:greet_txt", LINUX_ARM64, exec_platform=MACOS_ARM64)
    (action,) = result["actions"]
    tree = TREE.format("tools__greet__darwin_arm64", "greet")
    assert H.render(action["argv"]) == [
        "/bin/sh",
        "-c",
        '"$1" > "$2"',
        "sh",
        f"{tree}/greet",
        "buck-out/v2/gen/root/__greet_txt__/greet_txt.txt",
    ]
    assert tree in [i["artifact"] for i in action["inputs"]]
    greet = b.analyze("root//:tools__greet__windows_amd64", WINDOWS_X86_64)
    assert H.render(H.provider(greet, "RunInfo")["args"]["__cmd_args__"]["items"]) == [
        TREE.format("tools__greet__windows_amd64", "greet") + "/greet.cmd"
    ]


def test_example_fetches_offline_from_the_bundled_layout(tmp_path: Path) -> None:
    """The example's recorded host commands, run for real (no network: an OCI layout)."""
    host, host_platform = _host_buck2_platform()
    repo = tmp_path / "repo"
    project = repo / "examples" / "buck2"
    shutil.copytree(REPO / "lockfiles" / "registry", repo / "lockfiles" / "registry")
    shutil.copytree(RULES / "buck2", repo / "rules" / "buck2")
    shutil.copytree(EXAMPLE, project, symlinks=True)
    b = _example(project)
    outputs = {}
    for tool in ("hello", "greet", "say"):
        try:
            fetch = b.configured_attrs(f"root//:{tool}", host_platform)["actual"]
        except H.Buck2Error:
            continue
        if fetch.endswith("__unsupported"):
            continue
        (action,) = b.analyze(H.Label("root", "", fetch[1:]), host_platform)["actions"]
        proc = _run_recorded(action, project, offline=True)
        assert proc.returncode == 0, proc.stderr
        run = H.provider(b.analyze(f"root//:{tool}", host_platform), "RunInfo")
        (exe,) = H.render(run["args"]["__cmd_args__"]["items"])
        ran = subprocess.run([str(project / exe)], capture_output=True, text=True, timeout=60)
        assert ran.returncode == 0, ran.stderr
        outputs[tool] = ran.stdout
    if host.startswith(("linux/", "darwin/")) and host.split("/")[1] in ("amd64", "arm64"):
        assert sorted(outputs) == ["greet", "hello", "say"]
    assert all(out.strip() for out in outputs.values())


# ------------------------------------------------------------------ a real run


def _host_buck2_platform() -> tuple[str, H.Platform]:
    host = tf_platform.host_platform()
    try:
        os_c, cpu_c = tf_platform.buck2_constraints(host)
    except KeyError:
        pytest.skip(f"host {host} has no Buck2 constraints")
    return str(host), H.Platform(str(host), frozenset({os_c, cpu_c}))


def _run_recorded(
    action: dict[str, Any], cwd: Path, offline: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run a recorded action as Buck2's local executor would: from the project root,
    with the action's env on top of the daemon's, outputs' parents created, outputs absent."""
    for out in action["outputs"]:
        path = cwd / out["artifact"]
        path.parent.mkdir(parents=True, exist_ok=True)
        assert not path.exists()
    env = dict(os.environ)
    env.update({k: "".join(H.render(v)) for k, v in action["env"].items()})
    if offline:
        env["TOOLFETCH_OFFLINE"] = "1"
    return subprocess.run(
        H.render(action["argv"]),
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_recorded_host_command_fetches_a_runnable_tree(
    registry: Any, unique_repo: str, tmp_path: Path
) -> None:
    import ocitest

    host, host_platform = _host_buck2_platform()
    other = "linux/arm64" if host != "linux/arm64" else "linux/amd64"

    def script(text: str) -> bytes:
        return f'#!/bin/sh\necho {text} "$@"\n'.encode()

    # A multi-platform tool whose tree has more than the executable (like protoc's include/).
    ocitest.push_tool_index(
        registry,
        unique_repo,
        "1.0",
        {
            p: ocitest.targz(
                {
                    "bin/hello": (script(f"hello from {p}"), 0o755),
                    "include/hello.h": (b"/* header */\n", 0o644),
                }
            )
            for p in (host, other)
        },
    )
    # A single manifest: locked under "*".
    single = ocitest.oras_artifact({"greet": script("greetings")})
    ocitest.push_artifact(registry, unique_repo + "-single", "2.0", single)

    root = tmp_path / "project"
    root.mkdir()
    hello_ref = json.dumps(registry.ref(unique_repo, "1.0"))
    greet_ref = json.dumps(registry.ref(unique_repo + "-single", "2.0"))
    (root / "tools.yaml").write_text(
        "tools:\n"
        f"  hello: {{ref: {hello_ref}, path: bin/hello}}\n"
        f"  greet: {{ref: {greet_ref}, path: greet}}\n"
    )
    subprocess.run(
        ["toolfetch", "lock", "--config", "tools.yaml", "--lockfile", "tools.lock.json"],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lock = json.loads((root / "tools.lock.json").read_text())
    assert sorted(lock["tools"]["hello"]["platforms"]) == sorted([host, other])
    assert list(lock["tools"]["greet"]["platforms"]) == ["*"]
    (root / "BUCK").write_text(USAGE)

    b = H.FakeBuck2(cells={"root": root, "toolfetch": REPO, "fakes": FAKES})
    b.eval_build_file(root / "BUCK")
    for tool, text in (("hello", f"hello from {host}"), ("greet", "greetings")):
        fetch_label = b.configured_attrs(f"root//:{tool}", host_platform)["actual"]
        result = b.analyze(H.Label("root", "", fetch_label[1:]), host_platform)
        (action,) = result["actions"]
        proc = _run_recorded(action, root)
        assert proc.returncode == 0, proc.stderr
        (out,) = action["outputs"]
        tree = root / out["artifact"]
        assert tree.is_dir()
        if tool == "hello":
            assert (tree / "include" / "hello.h").read_bytes() == b"/* header */\n"
        # The tool, as `buck2 run :<tool>` / $(exe :<tool>) would run it.
        run = H.provider(b.analyze(f"root//:{tool}", host_platform), "RunInfo")
        argv = H.render(run["args"]["__cmd_args__"]["items"])
        assert os.access(root / argv[0], os.X_OK)
        ran = subprocess.run([str(root / argv[0]), "x"], capture_output=True, text=True)
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout == f"{text} x\n"


# ------------------------------------------------------------------ HTTP release assets


def _perform_download(action: dict[str, Any], cwd: Path) -> None:
    """Do what Buck2's download_file does: fetch the URL, check sha256 and size, place it."""
    import hashlib
    import urllib.request

    (out,) = action["outputs"]
    with urllib.request.urlopen(action["url"], timeout=30) as resp:  # loopback only
        data = resp.read()
    assert hashlib.sha256(data).hexdigest() == action["sha256"]
    assert len(data) == action["size_bytes"]
    path = cwd / out["artifact"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if action["is_executable"]:
        path.chmod(0o755)


def test_a_lockfile_mixing_registry_tools_and_http_assets(
    registry: Any, unique_repo: str, tmp_path: Path
) -> None:
    """Plain-file assets go to Buck2's own downloader (sha256-checked); archives, and every
    asset with native_http = False, go through `toolfetch fetch` like registry tools."""
    import ocitest
    from assetserver import AssetServer

    host, host_platform = _host_buck2_platform()
    ocitest.push_artifact(registry, unique_repo, "1",
                          ocitest.oras_artifact({"oci": b"#!/bin/sh\necho from oci \"$@\"\n"}))
    server = AssetServer()
    try:
        server.files["/dl/file-tool"] = b"#!/bin/sh\necho plain file \"$@\"\n"
        server.files["/dl/arch-1.tar.gz"] = ocitest.targz(
            {"arch-1/bin/arch": (b"#!/bin/sh\necho from archive \"$@\"\n", 0o755)})
        root = tmp_path / "project"
        root.mkdir()
        (root / "tools.yaml").write_text(json.dumps({"tools": {
            "oci": {"ref": registry.ref(unique_repo, "1"), "path": "oci"},
            "file-tool": {"platforms": {host: {"url": server.url("/dl/file-tool")}}},
            "arch": {"platforms": {host: {"url": server.url("/dl/arch-1.tar.gz"),
                                          "path": "arch-1/bin/arch"}}},
        }}))
        subprocess.run(["toolfetch", "lock", "--config", "tools.yaml", "--lockfile",
                        "tools.lock.json"], cwd=root, check=True, capture_output=True,
                       text=True, timeout=120)
        suffix = host.replace("/", "_")
        kinds = {}
        for native in (True, False):
            shutil.rmtree(root / "buck-out", ignore_errors=True)
            (root / "BUCK").write_text(USAGE.replace(
                "lock = lock)", f"lock = lock, native_http = {native})"))
            b = H.FakeBuck2(cells={"root": root, "toolfetch": REPO, "fakes": FAKES})
            b.eval_build_file(root / "BUCK")
            for tool, text in (("oci", "from oci"), ("file-tool", "plain file"),
                               ("arch", "from archive")):
                label = b.configured_attrs(f"root//:{tool}", host_platform)["actual"]
                assert label == (":tools__oci" if tool == "oci" else
                                 f":tools__{tool}__{suffix}")
                result = b.analyze(H.Label("root", "", label[1:]), host_platform)
                (action,) = result["actions"]
                kinds[(native, tool)] = action["category"]
                if action["category"] == "download_file":
                    assert action["url"] == server.url("/dl/file-tool")
                    _perform_download(action, root)
                else:
                    proc = _run_recorded(action, root)
                    assert proc.returncode == 0, proc.stderr
                run = H.provider(b.analyze(f"root//:{tool}", host_platform), "RunInfo")
                argv = H.render(run["args"]["__cmd_args__"]["items"])
                ran = subprocess.run([str(root / argv[0]), "x"], capture_output=True,
                                     text=True)
                assert ran.stdout == f"{text} x\n", ran.stderr
        assert kinds == {
            (True, "oci"): "toolfetch_fetch", (True, "arch"): "toolfetch_fetch",
            (True, "file-tool"): "download_file",
            (False, "oci"): "toolfetch_fetch", (False, "arch"): "toolfetch_fetch",
            (False, "file-tool"): "toolfetch_fetch",
        }
    finally:
        server.close()
