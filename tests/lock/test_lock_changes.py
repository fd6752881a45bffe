"""Issue 24 #5: a pin never changes silently. `lock` prints every pin it adds, removes or
moves (tool, platform, old -> new) and why; `lock --check` names the real cause (a tag that
moved upstream is not "tools.yaml changed"); a registry outage during `lock --check` is exit 6
saying the check needs the registry."""

from __future__ import annotations

import json
from pathlib import Path

import ocitest
from ocitest import Registry
from tf import assert_error, assert_ok, tf_main, write_config


def _push(registry: Registry, repo: str, tag: str, body: bytes) -> str:
    art = ocitest.oras_artifact({"jq": body})
    ocitest.push_artifact(registry, repo, tag, art)
    return art.digest


def test_a_moved_tag_is_reported_by_lock_and_named_by_check(
        registry: Registry, unique_repo: str, tmp_path: Path) -> None:
    first = _push(registry, unique_repo, "1.6", b"#!/bin/sh\necho 1.6 build 1\n")
    lockfile = tmp_path / "tools.lock.json"
    write_config(tmp_path / "tools.yaml", {"tools": {"jq": {"ref": registry.ref(unique_repo,
                                                                              "1.6")}}})
    r = tf_main("lock", "--lockfile", lockfile)
    assert_ok(r)
    assert "jq: added locked (new in tools.yaml)" in r.stdout
    second = _push(registry, unique_repo, "1.6", b"#!/bin/sh\necho 1.6 build 2\n")
    before = lockfile.read_bytes()

    r = tf_main("lock", "--check", "--lockfile", lockfile)
    assert_error(r, 7, "jq (*)", first, second, "moved upstream")
    assert "tools.yaml changed" not in r.stderr
    assert lockfile.read_bytes() == before

    r = tf_main("lock", "--lockfile", lockfile)
    assert_ok(r)
    assert f"jq (*): {first} -> {second} (the tag 1.6 of" in r.stdout
    assert "moved upstream" in r.stdout
    assert json.loads(lockfile.read_text())["tools"]["jq"]["platforms"]["*"]["manifest"] \
        == second
    r = tf_main("lock", "--lockfile", lockfile)  # nothing moved: nothing reported
    assert_ok(r)
    assert "->" not in r.stdout and "0 pins changed" in r.stdout


def test_an_edit_of_tools_yaml_is_named_as_such(
        registry: Registry, unique_repo: str, tmp_path: Path) -> None:
    one = _push(registry, unique_repo, "1", b"one")
    two = _push(registry, unique_repo, "2", b"two")
    lockfile = tmp_path / "tools.lock.json"
    config = tmp_path / "tools.yaml"
    write_config(config, {"tools": {"jq": {"ref": registry.ref(unique_repo, "1")}}})
    assert_ok(tf_main("lock", "--lockfile", lockfile))
    write_config(config, {"tools": {"jq": {"ref": registry.ref(unique_repo, "2")}}})
    assert_error(tf_main("lock", "--check", "--lockfile", lockfile), 7, one, two,
                 "tools.yaml changed: ref")
    r = tf_main("lock", "--lockfile", lockfile)
    assert_ok(r)
    assert f"jq (*): {one} -> {two} (tools.yaml changed: ref" in r.stdout
    write_config(config, {"tools": {"yq": {"ref": registry.ref(unique_repo, "2")}}})
    r = tf_main("lock", "--lockfile", lockfile)
    assert_ok(r)
    assert "jq: removed" in r.stdout and "yq: added" in r.stdout


def test_lock_check_with_the_registry_down_is_exit_6_saying_why(tmp_path: Path) -> None:
    lockfile = tmp_path / "tools.lock.json"
    write_config(tmp_path / "tools.yaml", {"tools": {"jq": {"ref": "127.0.0.1:9/t/jq:1"}}})
    lockfile.write_text(json.dumps({"version": 1, "tools": {}}))
    r = tf_main("lock", "--check", "--lockfile", lockfile)
    assert_error(r, 6, "lock --check resolves every tag against its registry", "127.0.0.1:9")
