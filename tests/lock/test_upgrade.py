"""Version constraints over tags and ``lock --upgrade``."""

from __future__ import annotations

import json
from pathlib import Path

import ocitest
import pytest
from ocitest import Registry
from tf import assert_error, assert_ok, script, tf_main, write_config

from toolfetch.core.errors import UsageError
from toolfetch.lock.versions import Constraint, Version, select_tag

TAGS = ["24.9", "25.0", "v25.1", "25.1.1", "25.2-rc1", "26.0", "26.0-rc2", "latest", "stable",
        "25.3-linux-amd64", "1.2.3.4.5"]


@pytest.mark.parametrize(("constraint", "expected"), [
    (">=25,<26", "25.1.1"),
    ("25", "25.1.1"),
    ("25.*", "25.1.1"),
    ("25.0", "25.0"),
    ("==25.0", "25.0"),
    ("==25", "25.0"),  # exact, zero-padded
    ("~=25.0", "25.1.1"),
    ("~=25.1.0", "25.1.1"),
    ("^25.0", "25.1.1"),
    ("~25.1", "25.1.1"),
    (">=25, <26, !=25.1.1", "v25.1"),
    ("!=25.*", "26.0"),
    (">25.1.1", "26.0"),
    ("<=25.0", "25.0"),
    (">=25.2-rc1,<26", "25.2-rc1"),  # naming a pre-release admits pre-releases
    (">=27", None),
])
def test_select_tag(constraint: str, expected: str | None) -> None:
    assert select_tag(TAGS, Constraint.parse(constraint)) == expected


def v(text: str) -> Version:
    parsed = Version.parse(text)
    assert parsed is not None, text
    return parsed


def test_versions() -> None:
    assert v("v1.28.1") == Version((1, 28, 1))
    assert v("26.0-rc2") == Version((26, 0), "rc2")
    assert Version.parse("latest") is None and Version.parse("1.2.3.4.5") is None
    assert v("1.0-rc1").key() < v("1.0").key() == v("1.0.0").key()
    assert v("1.0-rc2").key() < v("1.0-rc10").key()
    caret = Constraint.parse("^0.2.3")
    assert [t for t in ("0.2.3", "0.2.9", "0.3.0") if caret.matches(v(t))] == ["0.2.3", "0.2.9"]


@pytest.mark.parametrize("bad", ["", ">=", "~=1", "abc", ">=1.*", ">=1,,<2"])
def test_malformed_constraints(bad: str) -> None:
    with pytest.raises(UsageError, match="malformed version constraint"):
        Constraint.parse(bad)


def push_tags(reg: Registry, repo: str, tags: list[str]) -> dict[str, str]:
    digests = {}
    for tag in tags:
        art = ocitest.oras_artifact({"protoc": script(f"protoc-{tag}")},
                                    layer_media_type="application/octet-stream")
        digests[tag] = ocitest.push_artifact(reg, repo, tag, art)
    return digests


def locked(lockfile: Path) -> tuple[str, str]:
    entry = json.loads(lockfile.read_text())["tools"]["protoc"]["platforms"]["*"]
    return entry["ref"], entry["manifest"]


def test_lock_and_upgrade(registry: Registry, unique_repo: str, tmp_path: Path) -> None:
    digests = push_tags(registry, unique_repo, ["24.9", "25.0", "25.1", "26.0", "latest"])
    base = f"{registry.host}/{unique_repo}"
    config = tmp_path / "ws" / "tools.yaml"
    lockfile = config.with_name("tools.lock.json")
    tool = {"ref": base, "version": ">=25,<26", "path": "protoc"}
    write_config(config, {"tools": {"protoc": tool}})
    assert_ok(tf_main("lock", "--lockfile", lockfile))
    assert locked(lockfile) == (f"{base}:25.1", digests["25.1"])
    data = json.loads(lockfile.read_text())["tools"]["protoc"]
    assert data["ref"] == base and data["version"] == ">=25,<26"
    # a newer matching tag appears: lock and lock --check keep what is locked
    digests.update(push_tags(registry, unique_repo, ["25.3"]))
    assert_ok(tf_main("lock", "--check", "--lockfile", lockfile))
    before = lockfile.read_bytes()
    assert_ok(tf_main("lock", "--lockfile", lockfile))
    assert lockfile.read_bytes() == before
    # --upgrade moves to the highest match and says so
    r = tf_main("lock", "--upgrade", "--lockfile", lockfile)
    assert_ok(r)
    assert r.stdout == f"protoc: {base}:25.1 -> {base}:25.3\n"
    assert locked(lockfile) == (f"{base}:25.3", digests["25.3"])
    assert_ok(tf_main("lock", "--check", "--lockfile", lockfile))
    r = tf_main("lock", "--upgrade", "--lockfile", lockfile, "protoc")
    assert r.stdout == f"protoc: {base}:25.3 (up to date)\n"
    which = tf_main("which", "--lockfile", lockfile, "protoc")
    assert Path(which.stdout.strip()).read_bytes() == script("protoc-25.3")
    # a changed constraint makes the lock out of date; lock then picks anew
    write_config(config, {"tools": {"protoc": {**tool, "version": "^26"}}})
    assert_error(tf_main("lock", "--check", "--lockfile", lockfile), 7, "protoc")
    assert_ok(tf_main("lock", "--lockfile", lockfile))
    assert locked(lockfile) == (f"{base}:26.0", digests["26.0"])
    # nothing matches: not found, naming the tags there are
    write_config(config, {"tools": {"protoc": {**tool, "version": ">=30"}}})
    assert_error(tf_main("lock", "--upgrade", "--lockfile", lockfile), 4, ">=30", "25.3")
    assert_error(tf_main("lock", "--upgrade", "--check", "--lockfile", lockfile), 2)


def test_version_needs_an_untagged_ref(registry: Registry, unique_repo: str,
                                       tmp_path: Path) -> None:
    config = tmp_path / "tools.yaml"
    write_config(config, {"tools": {"protoc": {
        "ref": f"{registry.host}/{unique_repo}:25.1", "version": ">=25", "path": "protoc"}}})
    assert_error(tf_main("lock", "--lockfile", tmp_path / "tools.lock.json"), 2,
                 "without a tag")
    write_config(config, {"tools": {"protoc": {
        "ref": f"{registry.host}/{unique_repo}", "version": ">=x", "path": "protoc"}}})
    assert_error(tf_main("lock", "--lockfile", tmp_path / "tools.lock.json"), 2,
                 "$.tools.protoc.version", "malformed version constraint")


def test_upgrade_in_an_oci_layout(tmp_path: Path) -> None:
    layout = tmp_path / "ws" / "registry"
    exe = tmp_path / "protoc"
    for tag in ("1.9", "1.10", "2.0"):
        exe.write_bytes(script(f"protoc-{tag}"))
        assert_ok(tf_main("push", f"oci-layout:{layout}:{tag}", exe))
    config = write_config(tmp_path / "ws" / "tools.yaml", {"tools": {"protoc": {
        "ref": "oci-layout:registry", "version": "1.*"}}})
    assert_ok(tf_main("lock", "--lockfile", config.with_name("tools.lock.json")))
    assert locked(config.with_name("tools.lock.json"))[0] == "oci-layout:registry:1.10"
