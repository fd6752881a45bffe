"""One platform, one lock key, one binary: spellings of a platform (``linux/arm`` and
``linux/arm/v7``, ``linux/arm64/v8`` and ``linux/arm64``) lock to the same key however
tools.yaml or the index writes them; a lockfile that has both, or ``*`` beside platforms, is
refused; an index entry whose image config names another platform is refused."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import ocitest
import pytest
from ocitest import Registry
from tf import assert_error, assert_ok, tf_main, write_config

from toolfetch.core import host
from toolfetch.core.platform import Platform, bazel_constraints


def _lock(ws: Path, tools: dict[str, Any], platforms: list[str] | None = None) -> Any:
    config: dict[str, Any] = {"tools": tools}
    if platforms is not None:
        config["platforms"] = platforms
    write_config(ws / "tools.yaml", config)
    return tf_main("lock", "--lockfile", str(ws / "tools.lock.json"))


def _keys(ws: Path, tool: str) -> dict[str, str]:
    data = json.loads((ws / "tools.lock.json").read_text())
    return {k: e["manifest"] for k, e in data["tools"][tool]["platforms"].items()}


def _arm_index(registry: Registry, repo: str) -> tuple[str, str, str]:
    """An index listing ``linux/arm`` (first) and ``linux/arm/v7``: two binaries for one
    platform. Returns its ref and the two manifests' digests."""
    bare = ocitest.oras_artifact({"t": b"#!/bin/sh\necho bare\n"})
    v7 = ocitest.oras_artifact({"t": b"#!/bin/sh\necho v7\n"})
    for art in (bare, v7):
        ocitest.push_artifact(registry, repo, None, art)
    idx = ocitest.index_manifest([bare.descriptor("linux/arm"), v7.descriptor("linux/arm/v7")])
    ocitest.push_manifest(registry, repo, "1", ocitest.encode_json(idx), ocitest.OCI_INDEX)
    return registry.ref(repo, "1"), bare.digest, v7.digest


@pytest.mark.parametrize("platforms", [None, ["linux/arm/v7"], ["linux/arm"]])
def test_arm_and_arm_v7_lock_to_one_key_and_one_binary(
        registry: Registry, unique_repo: str, tmp_path: Path,
        platforms: list[str] | None) -> None:
    ref, first, _second = _arm_index(registry, unique_repo)
    assert_ok(_lock(tmp_path, {"t": {"ref": ref, "path": "t"}}, platforms))
    assert _keys(tmp_path, "t") == {"linux/arm/v7": first}  # the index's first match


@pytest.mark.parametrize("spelling", ["linux/arm64/v8", "linux/arm64"])
def test_arm64_v8_is_locked_as_arm64(registry: Registry, unique_repo: str, tmp_path: Path,
                                     spelling: str) -> None:
    idx = ocitest.push_tool_index(registry, unique_repo, "1", {spelling: {"t": b"x"}})
    assert_ok(_lock(tmp_path, {"t": {"ref": idx.ref, "path": "t"}}, [spelling]))
    assert _keys(tmp_path, "t") == {"linux/arm64": idx.manifests[spelling]}
    which = tf_main("which", "t", "--platform", spelling, "--lockfile",
                    str(tmp_path / "tools.lock.json"))
    assert_ok(which)  # either spelling finds the one key
    assert Path(which.stdout.strip()).read_bytes() == b"x"


@pytest.mark.parametrize("listed", [["linux/arm", "linux/arm/v7"],
                                    ["linux/arm64", "linux/arm64/v8"]])
def test_tools_yaml_naming_one_platform_twice_is_refused(tmp_path: Path,
                                                         listed: list[str]) -> None:
    r = _lock(tmp_path, {"t": {"ref": "127.0.0.1:1/x:1", "path": "t"}}, listed)
    assert_error(r, 2, "tools.yaml", "$.platforms", listed[0], listed[1], "same platform")
    assert not (tmp_path / "tools.lock.json").exists()


def _lockfile_with(example: Path, keys: list[str]) -> Path:
    data = json.loads(example.read_text())
    entry = data["tools"]["greet"]["platforms"]["linux/amd64"]
    data["tools"]["greet"]["platforms"] = {k: entry for k in keys}
    example.write_text(json.dumps(data))
    return example


@pytest.mark.parametrize("keys", [["linux/arm", "linux/arm/v7"],
                                  ["linux/arm64", "linux/arm64/v8"]])
def test_a_lockfile_with_two_spellings_of_a_platform_is_refused(example: Path,
                                                                keys: list[str]) -> None:
    lock = _lockfile_with(example, keys)
    for cmd in (["fetch"], ["which", "greet"]):
        r = tf_main(*cmd, "--lockfile", str(lock))
        assert_error(r, 2, str(lock), "$.tools.greet.platforms", repr(keys[0]), repr(keys[1]))


@pytest.mark.parametrize("keys", [["*", "linux/amd64"], ["linux/amd64", "*"]])
def test_a_lockfile_with_star_beside_platforms_is_refused(example: Path,
                                                          keys: list[str]) -> None:
    lock = _lockfile_with(example, keys)
    r = tf_main("which", "greet", "--lockfile", str(lock))
    assert_error(r, 2, str(lock), "$.tools.greet.platforms", "one or the other")


def test_an_index_entry_whose_image_config_says_otherwise_is_refused(
        registry: Registry, unique_repo: str, tmp_path: Path) -> None:
    arm = ocitest.image_artifact("linux/arm64", [ocitest.targz({"t": (b"arm64", 0o755)})])
    ocitest.push_artifact(registry, unique_repo, None, arm)
    idx = ocitest.index_manifest([arm.descriptor("linux/amd64")])  # the index claims amd64
    ocitest.push_manifest(registry, unique_repo, "1", ocitest.encode_json(idx), ocitest.OCI_INDEX)
    ref = registry.ref(unique_repo, "1")
    for platforms in (None, ["linux/amd64"]):
        r = _lock(tmp_path, {"t": {"ref": ref, "path": "t"}}, platforms)
        assert_error(r, 3, arm.digest, "linux/amd64", "config says linux/arm64")
        assert not (tmp_path / "tools.lock.json").exists()
    # the same image by digest: refused too (a single-platform image for linux/arm64)
    r = _lock(tmp_path, {"t": {"ref": f"{registry.host}/{unique_repo}@{arm.digest}",
                               "path": "t"}}, ["linux/amd64"])
    assert r.returncode == 4 and "linux/arm64" in r.stderr


def test_an_index_entry_agreeing_with_its_config_is_locked(
        registry: Registry, unique_repo: str, tmp_path: Path) -> None:
    idx = ocitest.push_tool_index(registry, unique_repo, "1", {
        "linux/amd64": ocitest.targz({"t": (b"a", 0o755)}),
        "linux/arm/v7": ocitest.targz({"t": (b"b", 0o755)})})
    assert_ok(_lock(tmp_path, {"t": {"ref": idx.ref, "path": "t"}}))
    assert _keys(tmp_path, "t") == idx.manifests


@pytest.mark.parametrize(("text", "key", "cpu"), [
    ("linux/arm", "linux/arm/v7", "arm/v7"), ("linux/arm/v6", "linux/arm/v6", "arm/v6"),
    ("linux/arm64/v8", "linux/arm64", "arm64"), ("linux/arm64/v9", "linux/arm64/v9", "arm64/v9"),
    ("linux/amd64/v3", "linux/amd64/v3", "amd64/v3"), ("darwin/amd64", "darwin/amd64", "amd64")])
def test_platform_key_and_cpu_key(text: str, key: str, cpu: str) -> None:
    p = Platform.parse(text)
    assert (p.key, p.cpu_key) == (key, cpu)


@pytest.mark.parametrize("text", ["linux/amd64/v3", "linux/arm64/v9"])
def test_a_variant_the_tables_do_not_name_maps_to_no_constraint(text: str) -> None:
    with pytest.raises(KeyError):
        bazel_constraints(Platform.parse(text))


@pytest.mark.parametrize(("platform", "machine", "want"), [
    ("freebsd14", "amd64", "freebsd/amd64"), ("linux", "armv8l", "linux/arm/v8"),
    ("linux", "armv7l", "linux/arm/v7"), ("win32", "x86", "windows/386"),
    ("linux", "aarch64", "linux/arm64")])
def test_host_names_are_oci_names(monkeypatch: pytest.MonkeyPatch, platform: str,
                                  machine: str, want: str) -> None:
    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setattr(host, "machine", lambda: machine)
    assert host.host_key() == want == Platform(*host.host_parts()).key


def test_an_index_listing_a_platform_twice_locks_the_first_and_says_so(
        registry: Registry, unique_repo: str, tmp_path: Path) -> None:
    ltsc2022 = ocitest.oras_artifact({"t.exe": b"2022"})
    ltsc2019 = ocitest.oras_artifact({"t.exe": b"2019"})
    entries = []
    for art, version in ((ltsc2022, "10.0.20348.1"), (ltsc2019, "10.0.17763.1")):
        ocitest.push_artifact(registry, unique_repo, None, art)
        d = art.descriptor("windows/amd64")
        d["platform"]["os.version"] = version
        entries.append(d)
    idx = ocitest.index_manifest(entries)
    ocitest.push_manifest(registry, unique_repo, "1", ocitest.encode_json(idx), ocitest.OCI_INDEX)
    r = _lock(tmp_path, {"t": {"ref": registry.ref(unique_repo, "1"), "path": "t.exe"}})
    assert_ok(r)
    assert _keys(tmp_path, "t") == {"windows/amd64": ltsc2022.digest}
    assert "lists windows/amd64 more than once" in r.stderr
    assert ltsc2022.digest in r.stderr and ltsc2019.digest in r.stderr


@pytest.mark.parametrize("platforms", [None, ["linux/amd64"]])
def test_an_index_spelling_the_os_in_upper_case_locks_the_lower_case_key(
        registry: Registry, unique_repo: str, tmp_path: Path,
        platforms: list[str] | None) -> None:
    art = ocitest.oras_artifact({"t": b"x"})
    ocitest.push_artifact(registry, unique_repo, None, art)
    d = art.descriptor("linux/amd64")
    d["platform"]["os"] = "Linux"
    idx = ocitest.index_manifest([d])
    ocitest.push_manifest(registry, unique_repo, "1", ocitest.encode_json(idx), ocitest.OCI_INDEX)
    assert_ok(_lock(tmp_path, {"t": {"ref": registry.ref(unique_repo, "1"), "path": "t"}},
                    platforms))
    assert _keys(tmp_path, "t") == {"linux/amd64": art.digest}
    assert_ok(tf_main("fetch", "--all-platforms", "--lockfile", str(tmp_path / "tools.lock.json")))


@pytest.mark.parametrize("top_level", [None, ["linux/amd64", "darwin/arm64"]])
def test_a_tools_platform_list_limits_a_single_manifest(
        registry: Registry, unique_repo: str, tmp_path: Path,
        top_level: list[str] | None) -> None:
    """Issue 24 #3: an ORAS artifact (one manifest, no platform in its config) with
    `platforms: [linux/amd64]` is locked for linux/amd64 only, never as "*": another
    platform is exit 4, not handed the linux binary. Without a tool list it stays "*"."""
    art = ocitest.oras_artifact({"jq": b"#!/bin/sh\necho linux jq\n"})
    ocitest.push_artifact(registry, unique_repo, "1.6", art)
    ref = registry.ref(unique_repo, "1.6")
    assert_ok(_lock(tmp_path, {"jq": {"ref": ref, "platforms": ["linux/amd64"]},
                               "any": {"ref": ref}}, top_level))
    assert _keys(tmp_path, "jq") == {"linux/amd64": art.digest}
    assert _keys(tmp_path, "any") == {"*": art.digest}
    lockfile = str(tmp_path / "tools.lock.json")
    r = tf_main("which", "--lockfile", lockfile, "--platform", "darwin/arm64", "jq")
    assert_error(r, 4, "jq", "darwin/arm64", "linux/amd64")
    r = tf_main("which", "--lockfile", lockfile, "--platform", "linux/amd64", "jq")
    assert_ok(r)
    assert Path(r.stdout.strip()).read_bytes() == b"#!/bin/sh\necho linux jq\n"


def test_an_older_lockfile_with_both_arm_spellings_says_a_full_lock_rewrites_it(
        example: Path) -> None:
    """Issue 24.18: `fetch` and `lock TOOL` refuse it (exit 2); the message said only "run
    `toolfetch lock`", which, with tool names, refuses it too. A full `lock` rewrites it."""
    data = json.loads(example.read_text())
    platforms = data["tools"]["greet"]["platforms"]
    platforms["linux/arm"] = platforms["linux/arm/v7"] = platforms["linux/amd64"]
    example.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    for argv in (["fetch"], ["lock", "greet"]):
        r = tf_main(argv[0], "--lockfile", example, *argv[1:])
        assert_error(r, 2, "'linux/arm' and 'linux/arm/v7'", "older toolfetch",
                     "a full `toolfetch lock` (no tool names) rewrites it")
    assert_ok(tf_main("lock", "--lockfile", example))
    keys = json.loads(example.read_text())["tools"]["greet"]["platforms"]
    assert "linux/arm" not in keys  # one key at most (here none: tools.yaml has no arm)
