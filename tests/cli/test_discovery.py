"""Configuration discovery: tools.yaml in lockfiles/ or at the repository root, or named by
TOOLFETCH_CONFIG / --config with the lockfile beside it; boolean variables are read one way
on both paths and a malformed value is exit 2 naming the variable."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tf import REPO, assert_error, assert_ok, run_toolfetch, tf_main

from toolfetch.cli import hitpath
from toolfetch.core import host


def _repo(tmp_path: Path, sub: str) -> Path:
    """A repository (``.git``) with the example's tools.yaml and registry under ``sub``."""
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    where = root / sub if sub else root
    where.mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO / "lockfiles" / "tools.yaml", where / "tools.yaml")
    shutil.copytree(REPO / "lockfiles" / "registry", where / "registry")
    return root


@pytest.mark.parametrize("sub", ["", "lockfiles"])
def test_tools_yaml_is_found_at_the_root_or_in_lockfiles(
        tmp_path: Path, sub: str, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _repo(tmp_path, sub)
    (root / "src").mkdir()
    monkeypatch.chdir(root / "src")
    assert_ok(tf_main("lock"))
    where = root / sub if sub else root
    assert (where / "tools.lock.json").is_file()
    assert host.default_lockfile() == str(where / "tools.lock.json")
    assert_ok(tf_main("which", "say"))


def test_lockfiles_dir_wins_over_the_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    root = _repo(tmp_path, "lockfiles")
    (root / "tools.yaml").write_text("tools: {}\n")
    monkeypatch.chdir(root)
    assert host.default_config() == str(root / "lockfiles" / "tools.yaml")


def test_toolfetch_config_and_config_name_the_file_and_the_lockfile_beside_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _repo(tmp_path, "ci")
    (root / "ci" / "tools.yaml").rename(root / "ci" / "build-tools.yml")
    monkeypatch.chdir(root)
    assert_ok(tf_main("lock", "--config", "ci/build-tools.yml"))
    assert (root / "ci" / "build-tools.lock.json").is_file()
    (root / "ci" / "build-tools.lock.json").unlink()
    monkeypatch.setenv("TOOLFETCH_CONFIG", "ci/build-tools.yml")
    assert_ok(tf_main("lock"))
    assert (root / "ci" / "build-tools.lock.json").is_file()
    r = run_toolfetch("which", "say", cwd=root)  # the hit path agrees (after the full path)
    assert_ok(r)
    again = run_toolfetch("which", "say", cwd=root)
    assert again.stdout == r.stdout
    assert hitpath.try_hit(["which", "say"]) == 0


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes", "On"])
def test_offline_accepts_true_words(example: Path, value: str,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    text = example.read_text().replace("oci-layout:registry:say-1.0", "127.0.0.1:9/t/say:1.0")
    example.write_text(text)  # say now needs the network (a closed loopback port)
    monkeypatch.setenv("TOOLFETCH_OFFLINE", value)
    assert_error(tf_main("fetch", "--lockfile", example, "say"), 6, "forbids the network")
    monkeypatch.setenv("TOOLFETCH_OFFLINE", "0")
    r = tf_main("fetch", "--lockfile", example, "say")
    assert r.returncode == 6 and "forbids the network" not in r.stderr


@pytest.mark.parametrize("value", ["0", "false", "No", "off", ""])
def test_offline_accepts_false_words(example: Path, value: str,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLFETCH_OFFLINE", value)
    assert_ok(tf_main("fetch", "--lockfile", example))


@pytest.mark.parametrize("value", ["2", "y", "enable", "truee", "1 1"])
def test_a_malformed_boolean_is_exit_2_naming_the_variable_on_both_paths(
        example: Path, value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert_ok(tf_main("fetch", "--lockfile", example))  # cached: the next fetch is a hit
    monkeypatch.setenv("TOOLFETCH_OFFLINE", value)
    assert hitpath.try_hit(["fetch", "--lockfile", str(example)]) is None
    for argv in (["fetch"], ["which", "say"], ["list"]):
        r = run_toolfetch(*argv, "--lockfile", example)
        assert_error(r, 2, "TOOLFETCH_OFFLINE", repr(value))
