"""The Bazel and Buck2 shims map OCI platforms and check lock keys as platform.py does.

Both shims' real .bzl files run under starlark-pyo3 (no Bazel, no Buck2):

* cpu keys keep every variant but arm's and arm64/v8: `linux/amd64/v3` and `linux/arm64/v9`
  have no Bazel or Buck2 cpu constraint, so a select never hands such a binary to every
  x86_64 or aarch64 machine (toolfetch itself refuses it there);
* a tool locked twice for one platform (`linux/arm` and `linux/arm/v7`, `linux/arm64` and
  `linux/arm64/v8`), or for "*" next to specific platforms, is refused with a message naming
  the lockfile, the tool and the keys (toolfetch exits 2 on such a lockfile);
* Bazel's host detection knows FreeBSD and armv8l.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from tf import REPO, SUPPORT

sl = pytest.importorskip("starlark", reason="starlark-pyo3 is not installed")

BUCK2_FAKES = SUPPORT / "starlark_buck2_fakes"
BAZEL_FAKES = SUPPORT / "starlark_bazel_fakes"
BAZEL_RULES = REPO / "rules" / "bazel" / "private"
BUCK2_PLATFORMS = REPO / "rules" / "buck2" / "private" / "platforms.bzl"

sys.path.insert(0, str(BUCK2_FAKES))
import harness as H  # noqa: E402

LOCK_LABEL = "@@//:tools.lock.json"
TOOL_BZL = "@t//:tool.bzl"
TEMPLATES = {
    p.name[: -len(".tpl")]: p.read_text() for p in (BAZEL_RULES / "templates").glob("*.tpl")
}


def _entry(n: int) -> dict[str, Any]:
    return {
        "layers": [
            {
                "digest": f"sha256:{n + 1000:064x}",
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "size": 10,
                "unpack": "tar+gzip",
            }
        ],
        "manifest": f"sha256:{n:064x}",
        "path": "bin/hello",
        "ref": "127.0.0.1:5000/t/hello:1",
    }


def _lock(*keys: str, tool: str = "hello") -> dict[str, Any]:
    platforms = {k: _entry(i) for i, k in enumerate(keys)}
    return {"tools": {tool: {"path": "bin/hello", "platforms": platforms}}, "version": 1}


# Lockfiles both shims (and toolfetch) refuse: (keys, the message's tail).
DUPLICATES = [
    (["linux/arm", "linux/arm/v7"], "linux/arm/v7"),
    (["linux/arm64", "linux/arm64/v8"], "linux/arm64"),
    (["darwin/arm64/v8", "darwin/arm64", "linux/amd64"], "darwin/arm64"),
]
BOTH = "a tool is locked either for '*' (one manifest for every platform) or per platform, not both"


# ---- Bazel ---------------------------------------------------------------------------------


class Bazel:
    """rules/bazel/private/*.bzl with the fakes of tests/support/starlark_bazel_fakes."""

    def __init__(self, extra: dict[str, str] | None = None) -> None:
        self.records: list[tuple[str, dict[str, Any]]] = []
        self.extra = dict(extra or {})
        self.cache: dict[str, Any] = {}
        self.globals = sl.Globals.extended_by(
            [sl.LibraryExtension.Json, sl.LibraryExtension.StructType, sl.LibraryExtension.Print]
        )
        self.loader = sl.FileLoader(self.load)
        fakes = sl.Module()
        fakes.add_callable("host", self.host)
        source = (BAZEL_FAKES / "bazel.star").read_text()
        sl.eval(fakes, sl.parse("fakes/bazel.star", source), self.globals, self.loader)
        self.fake_names: list[str] = fakes["FAKE_NAMES"]
        self.cache["//fakes:bazel.star"] = fakes.freeze()

    def host(self, kind: str, data: dict[str, Any]) -> Any:
        if kind != "existing_rule":
            self.records.append((kind, data))
        return None

    def load(self, module_id: str) -> Any:
        if module_id not in self.cache:
            if module_id in self.extra:
                filename, source = module_id, self.extra[module_id]
            else:
                m = re.fullmatch(r"//rules/bazel/private:([\w.]+)", module_id)
                assert m is not None, module_id
                filename, source = m.group(1), (BAZEL_RULES / m.group(1)).read_text()
            self.cache[module_id] = self.evaluate(filename, source).freeze()
        return self.cache[module_id]

    def evaluate(self, filename: str, source: str) -> Any:
        names = ", ".join(json.dumps(n) for n in self.fake_names)
        sep = "\n" if re.match(r"(def|if|for)\b", source) else "; "
        prefixed = f'load("//fakes:bazel.star", {names}){sep}' + source
        module = sl.Module()
        sl.eval(module, sl.parse(filename, prefixed), self.globals, self.loader)
        return module

    def call(self, file: str, function: str, *args: Any) -> Any:
        return self.load(f"//rules/bazel/private:{file}").call(function, *args)

    def parse_lockfile(self, lock: dict[str, Any]) -> Any:
        return self.call("lockfile.bzl", "parse_lockfile", json.dumps(lock), LOCK_LABEL)

    def hub_targets(self, lock: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """The targets of the hub BUILD file generated for `lock`, evaluated."""
        text = self.call(
            "render.bzl",
            "hub_build_file",
            TEMPLATES,
            "tools",
            self.parse_lockfile(lock),
            LOCK_LABEL,
            TOOL_BZL,
        )
        build = Bazel({TOOL_BZL: (BAZEL_RULES / "tool.bzl").read_text()})
        build.evaluate("BUILD.bazel", text)
        return {d["name"]: d for k, d in build.records if k == "target"}


@pytest.fixture
def bazel() -> Bazel:
    return Bazel()


@pytest.mark.parametrize(
    ("platform", "key", "constraints"),
    [
        ("linux/amd64/v3", "amd64/v3", None),
        ("linux/arm64/v9", "arm64/v9", None),
        ("darwin/amd64/v2", "amd64/v2", None),
        ("linux/amd64", "amd64", ["@platforms//os:linux", "@platforms//cpu:x86_64"]),
        ("linux/arm64", "arm64", ["@platforms//os:linux", "@platforms//cpu:aarch64"]),
        ("linux/arm64/v8", "arm64", ["@platforms//os:linux", "@platforms//cpu:aarch64"]),
        ("linux/arm", "arm/v7", ["@platforms//os:linux", "@platforms//cpu:armv7"]),
        ("linux/arm/v7", "arm/v7", ["@platforms//os:linux", "@platforms//cpu:armv7"]),
        ("linux/arm/v6", "arm/v6", None),
        ("linux/arm/v8", "arm/v8", None),
    ],
)
def test_bazel_cpu_key_and_constraints(
    bazel: Bazel, platform: str, key: str, constraints: list[str] | None
) -> None:
    assert bazel.call("platforms.bzl", "cpu_key", platform) == key
    assert bazel.call("platforms.bzl", "bazel_constraints", platform) == constraints


def test_bazel_select_has_no_arm_for_a_variant_of_amd64(bazel: Bazel) -> None:
    targets = bazel.hub_targets(_lock("linux/amd64/v3", "linux/arm64"))
    settings = {n: t["attrs"]["constraint_values"] for n, t in targets.items() if n[0] == "_"}
    assert settings == {
        "_platform_linux_arm64": ["@platforms//os:linux", "@platforms//cpu:aarch64"],
    }
    actual = targets["hello"]["attrs"]["actual"]
    assert actual["select"] == {":_platform_linux_arm64": "@tools__hello__linux_arm64//:tool"}
    assert "linux/amd64/v3, linux/arm64" in actual["no_match_error"]


def test_bazel_tool_only_for_variants_is_unavailable_everywhere(bazel: Bazel) -> None:
    targets = bazel.hub_targets(_lock("linux/amd64/v3", "linux/arm64/v9"))
    assert targets["hello"]["attrs"]["actual"] == ":_unavailable_hello"
    assert not [n for n in targets if n.startswith("_platform_")]


@pytest.mark.parametrize(
    ("platform", "canonical"),
    [
        ("linux/arm64/v8", "linux/arm64"),
        ("linux/arm64", "linux/arm64"),
        ("linux/arm", "linux/arm/v7"),
        ("linux/arm/v7", "linux/arm/v7"),
        ("linux/arm/v6", "linux/arm/v6"),
        ("linux/arm64/v9", "linux/arm64/v9"),
        ("linux/amd64/v3", "linux/amd64/v3"),
        ("windows/amd64", "windows/amd64"),
    ],
)
def test_canonical_lock_keys_agree(bazel: Bazel, platform: str, canonical: str) -> None:
    assert bazel.call("platforms.bzl", "canonical_platform", platform) == canonical
    buck2 = H.FakeBuck2(cells={"toolfetch": REPO}).load(BUCK2_PLATFORMS)
    assert buck2.call("canonical_platform", platform) == canonical


@pytest.mark.parametrize(("keys", "canonical"), DUPLICATES)
def test_bazel_refuses_one_platform_locked_twice(
    bazel: Bazel, keys: list[str], canonical: str
) -> None:
    with pytest.raises(sl.StarlarkError) as e:
        bazel.parse_lockfile(_lock(*keys))
    first, second = sorted(
        k for k in keys if bazel.call("platforms.bzl", "canonical_platform", k) == canonical
    )
    assert (
        f"toolfetch: {LOCK_LABEL}: tool 'hello' is locked for both {first} and {second}, "
        f"which are the same platform ({canonical})"
    ) in str(e.value)


def test_bazel_refuses_star_next_to_specific_platforms(bazel: Bazel) -> None:
    with pytest.raises(sl.StarlarkError) as e:
        bazel.parse_lockfile(_lock("*", "linux/amd64", "darwin/arm64"))
    assert (
        f"toolfetch: {LOCK_LABEL}: tool 'hello' is locked for '*' and for darwin/arm64, "
        f"linux/amd64; {BOTH}"
    ) in str(e.value)


def test_bazel_accepts_distinct_keys(bazel: Bazel) -> None:
    for keys in (["*"], ["linux/arm/v6", "linux/arm/v7", "linux/arm64/v8", "linux/arm64/v9"]):
        lock = bazel.parse_lockfile(_lock(*keys))
        assert sorted(lock["tools"]["hello"]["platforms"]) == sorted(keys)


# ---- Buck2 ---------------------------------------------------------------------------------


LINUX = "prelude//os:linux"


@pytest.mark.parametrize(
    ("platform", "key", "constraints"),
    [
        ("linux/amd64/v3", "amd64/v3", None),
        ("linux/arm64/v9", "arm64/v9", None),
        ("darwin/amd64/v2", "amd64/v2", None),
        ("linux/amd64", "amd64", [LINUX, "prelude//cpu:x86_64"]),
        ("linux/arm64", "arm64", [LINUX, "prelude//cpu:arm64"]),
        ("linux/arm64/v8", "arm64", [LINUX, "prelude//cpu:arm64"]),
        ("linux/arm", "arm/v7", None),
        ("linux/arm/v7", "arm/v7", None),
    ],
)
def test_buck2_cpu_key_and_constraints(
    platform: str, key: str, constraints: list[str] | None
) -> None:
    fm = H.FakeBuck2(cells={"toolfetch": REPO}).load(BUCK2_PLATFORMS)
    parsed: Any = fm.call("parse_oci_platform", platform)  # a struct, as a dict here
    assert parsed["cpu_key"] == key
    got: Any = fm.call("buck2_constraints", platform)
    assert (list(got) if got is not None else None) == constraints


def _buck(tmp_path: Path, lock: dict[str, Any], buck: str | None = None) -> H.FakeBuck2:
    root = tmp_path / "project"
    root.mkdir()
    (root / "tools.lock.json").write_text(json.dumps(lock, indent=2, sort_keys=True) + "\n")
    (root / "BUCK").write_text(
        buck
        or (
            'load("@toolfetch//rules/buck2:defs.bzl", "toolfetch_tools")\n'
            'load(":tools.lock.json", lock = "value")\n'
            'toolfetch_tools(name = "tools", lock = lock)\n'
        )
    )
    b = H.FakeBuck2(cells={"root": root, "toolfetch": REPO})
    b.eval_build_file(root / "BUCK")
    return b


def test_buck2_select_has_no_arm_for_a_variant_of_amd64(tmp_path: Path) -> None:
    b = _buck(tmp_path, _lock("linux/amd64/v3", "linux/arm64"))
    u = ":tools__hello__unsupported"
    assert b.target("root//:hello").attrs["actual"] == {
        "__select__": {
            "DEFAULT": u,
            LINUX: {
                "__select__": {"DEFAULT": u, "prelude//cpu:arm64": ":tools__hello__linux_arm64"}
            },
        }
    }
    x86_64 = H.Platform.of("linux", "x86_64")
    assert b.configured_attrs("root//:hello", x86_64)["actual"] == u
    with pytest.raises(H.Buck2Error) as e:
        b.analyze("root//:hello", x86_64)
    assert "tools.lock.json has: linux/amd64/v3, linux/arm64." in str(e.value)
    # Still fetchable by name.
    assert b.kind("root//:tools__hello__linux_amd64_v3") == "toolfetch_fetch"


@pytest.mark.parametrize(("keys", "canonical"), DUPLICATES)
def test_buck2_refuses_one_platform_locked_twice(
    tmp_path: Path, keys: list[str], canonical: str
) -> None:
    fm = H.FakeBuck2(cells={"toolfetch": REPO}).load(BUCK2_PLATFORMS)
    first, second = sorted(k for k in keys if fm.call("canonical_platform", k) == canonical)
    with pytest.raises(sl.StarlarkError) as e:
        _buck(tmp_path, _lock(*keys))
    assert (
        f'toolfetch: tools.lock.json: tool "hello" is locked for both {first} and {second}, '
        f"which are the same platform ({canonical})"
    ) in str(e.value)


def test_buck2_refuses_star_next_to_specific_platforms(tmp_path: Path) -> None:
    with pytest.raises(sl.StarlarkError) as e:
        _buck(tmp_path, _lock("*", "linux/amd64", "darwin/arm64"))
    assert (
        f"toolfetch: tools.lock.json: tool \"hello\" is locked for '*' and for darwin/arm64, "
        f"linux/amd64; {BOTH}"
    ) in str(e.value)


def test_buck2_toolchains_check_the_lock_too(tmp_path: Path) -> None:
    buck = (
        'load("@toolfetch//rules/buck2:defs.bzl", "toolfetch_toolchains")\n'
        'load(":tools.lock.json", lock = "value")\n'
        'toolfetch_toolchains(lock = lock, lockfile = "root//:tools.lock.json")\n'
    )
    with pytest.raises(sl.StarlarkError) as e:
        _buck(tmp_path, _lock("linux/arm", "linux/arm/v7"), buck)
    assert (
        'toolfetch: root//:tools.lock.json: tool "hello" is locked for both linux/arm and '
        "linux/arm/v7"
    ) in str(e.value)


def test_buck2_accepts_distinct_keys(tmp_path: Path) -> None:
    b = _buck(tmp_path, _lock("linux/arm/v6", "linux/arm/v7", "linux/arm64/v8", "linux/arm64/v9"))
    assert b.target("root//:hello").attrs["platforms"] == [
        "linux/arm/v6",
        "linux/arm/v7",
        "linux/arm64/v8",
        "linux/arm64/v9",
    ]
    arm64 = H.Platform.of("linux", "arm64")
    assert b.configured_attrs("root//:hello", arm64)["actual"] == ":tools__hello__linux_arm64_v8"


# ---- signatures (issue 26) -----------------------------------------------------------------


def test_both_shims_ignore_verified_records(bazel: Bazel, tmp_path: Path) -> None:
    """A lockfile whose platforms carry `verified` (what lock checked a signature of) loads
    in both shims exactly as one without it."""
    lock = _lock("linux/amd64", "darwin/arm64")
    for i, entry in enumerate(lock["tools"]["hello"]["platforms"].values()):
        entry["verified"] = (
            {"kind": "cosign-key", "signature": f"sha256:{i + 7:064x}", "key": f"sha256:{9:064x}"}
            if i == 0 else
            {"kind": "sigstore", "signature": f"sha256:{i + 7:064x}",
             "identity": "https://github.com/o/r/.github/workflows/release.yml@refs/tags/v1",
             "issuer": "https://token.actions.githubusercontent.com"})
    plain = _lock("linux/amd64", "darwin/arm64")
    assert bazel.hub_targets(lock) == bazel.hub_targets(plain)
    (tmp_path / "signed").mkdir()
    (tmp_path / "plain").mkdir()
    signed = _buck(tmp_path / "signed", lock)
    unsigned = _buck(tmp_path / "plain", plain)
    assert signed.target("root//:hello").attrs == unsigned.target("root//:hello").attrs
    for key in ("linux_amd64", "darwin_arm64"):
        name = f"root//:tools__hello__{key}"
        assert signed.kind(name) == unsigned.kind(name) == "toolfetch_fetch"
