"""Errors said once: no ``caused by:`` repeating what was said, no traceback for a documented
exit code (also with -v), and platform spelling hints."""

from __future__ import annotations

import io
from contextlib import redirect_stderr
from pathlib import Path

import ocitest
import pytest
from tf import TRACEBACK, assert_error, run_toolfetch, script, tf_main, write_config

from toolfetch.cli.app import print_error
from toolfetch.core.errors import UsageError
from toolfetch.core.platform import spelling_hint


def _printed(error: BaseException, verbose: int = 0) -> str:
    err = io.StringIO()
    with redirect_stderr(err):
        print_error(error, verbose)
    return err.getvalue()


def _chain(message: str, *causes: BaseException) -> UsageError:
    error = UsageError(message)
    current: BaseException = error
    for cause in causes:
        current.__cause__ = cause
        current = cause
    return error


def test_a_cause_the_error_already_says_is_not_repeated() -> None:
    parser = ValueError("expected ',' or '}',\n  but got ':'")
    text = _printed(_chain("tools.yaml: invalid YAML: expected ',' or '}', but got ':'", parser))
    assert text == "error: tools.yaml: invalid YAML: expected ',' or '}', but got ':'\n"
    same = _chain("digest mismatch sha256:aa vs sha256:bb",
                  UsageError("digest mismatch sha256:aa vs sha256:bb"))
    assert _printed(same).count("sha256:aa") == 1


def test_a_cause_that_adds_something_is_kept_and_v_names_its_type() -> None:
    error = _chain("registry.example: unreachable", OSError("connection refused"))
    assert _printed(error) == "error: registry.example: unreachable\n" \
                              "  caused by: connection refused\n"
    verbose = _printed(error, verbose=1)
    assert "  caused by: OSError: connection refused\n" in verbose
    assert TRACEBACK not in verbose


def test_v_gives_no_traceback_for_exit_6_and_7(example: Path) -> None:
    text = example.read_text().replace("oci-layout:registry:say-1.0", "127.0.0.1:9/t/say:1.0")
    example.write_text(text)
    env = {"TOOLFETCH_RETRIES": "1", "TOOLFETCH_RETRY_DELAY": "0"}
    r = run_toolfetch("-v", "fetch", "--lockfile", example, "say", env=env)
    assert_error(r, 6, "127.0.0.1:9")
    (example.parent / "tools.yaml").write_text(
        "tools:\n  say: {ref: 'oci-layout:registry:say-1.0'}\n")  # hello and greet: gone
    r = run_toolfetch("-v", "lock", "--check", "--lockfile", example)
    assert r.returncode == 7 and TRACEBACK not in r.stderr, r.stderr


def test_v_never_prints_a_query_holding_a_parenthesis(tmp_path: Path) -> None:
    """The network's own words for a refused asset URL (urllib3's "with url: /path?…"):
    the query was cut at its `)`, and -v printed `/storage/x)MORE&a=TAIL`."""
    url = "http://127.0.0.1:1/storage/x?X-Amz-Signature=SEC(RET)MORE&a=TAIL"
    write_config(tmp_path / "tools.yaml",
                 {"tools": {"t": {"platforms": {"linux/amd64": {"url": url}}}}})
    env = {"TOOLFETCH_RETRIES": "1", "TOOLFETCH_RETRY_DELAY": "0"}
    r = run_toolfetch("-v", "lock", "--lockfile", tmp_path / "tools.lock.json", env=env)
    assert_error(r, 6, "http://127.0.0.1:1/storage/x")
    assert "with url: /storage/x (Caused by" in r.stderr, r.stderr
    for secret in ("SEC", "RET", "MORE", "TAIL"):
        assert secret not in r.stderr


@pytest.mark.parametrize(("given", "meant"), [
    ("darwin/aarch64", "darwin/arm64"), ("macos/arm64", "darwin/arm64"),
    ("Linux/x86_64", "linux/amd64"), ("osx/x86_64", "darwin/amd64"),
    ("linux/armv7l", "linux/arm/v7"), ("windows/x64", "windows/amd64")])
def test_not_locked_for_a_misspelt_platform_says_what_was_meant(
        example: Path, given: str, meant: str) -> None:
    r = tf_main("which", "--platform", given, "--lockfile", example, "hello")
    assert_error(r, 4, "not locked for platform", f"did you mean {meant}?")


@pytest.mark.parametrize(("given", "meant"), [("macos", "darwin/"), ("linux", "linux/")])
def test_a_malformed_platform_says_what_was_meant(example: Path, given: str,
                                                   meant: str) -> None:
    r = tf_main("fetch", "--platform", given, "--lockfile", example)
    assert_error(r, 2, f"malformed platform {given!r}", f"did you mean {meant}")


def test_no_hint_for_a_correct_spelling() -> None:
    assert spelling_hint("linux/amd64") == "" and spelling_hint("darwin/arm64") == ""
    assert spelling_hint("plan9/mips") == ""


def test_a_wrong_sha256_from_the_only_source_is_said_once(
        fresh_registry: ocitest.Registry, unique_repo: str, tmp_path: Path) -> None:
    art = ocitest.oras_artifact({"t": script("t")})
    ocitest.push_artifact(fresh_registry, unique_repo, "1", art)
    lockfile = tmp_path / "lockfiles" / "tools.lock.json"
    write_config(lockfile.parent / "tools.yaml",
                 {"tools": {"t": {"ref": fresh_registry.ref(unique_repo, "1")}}})
    assert tf_main("lock", "--lockfile", lockfile).returncode == 0
    ocitest.corrupt_blob(fresh_registry, art.layers[0]["digest"])
    r = tf_main("fetch", "--lockfile", lockfile)
    assert_error(r, 3, "no source served verified content")
    assert "trying the next source" not in r.stderr and "caused by" not in r.stderr
    assert [line[:6] for line in r.stderr.splitlines()] == ["error:"], r.stderr
