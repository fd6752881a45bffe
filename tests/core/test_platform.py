"""Unit tests of toolfetch.core.platform."""

from __future__ import annotations

import pytest

from toolfetch.core import host as hitpath
from toolfetch.core.errors import NotFoundError, UsageError
from toolfetch.core.platform import (
    Platform,
    bazel_constraints,
    buck2_constraints,
    host_platform,
    select_platform,
)

P = Platform.parse


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("linux/amd64", Platform("linux", "amd64")),
        ("darwin/arm64", Platform("darwin", "arm64")),
        ("windows/amd64", Platform("windows", "amd64")),
        ("linux/arm/v7", Platform("linux", "arm", "v7")),
        ("Linux/AMD64", Platform("linux", "amd64")),
    ],
)
def test_parse_and_str(text: str, expected: Platform) -> None:
    assert P(text) == expected
    assert str(P(text)) == text.lower()


@pytest.mark.parametrize(
    "text",
    ["linux", "linux/", "/amd64", "linux//v7", "linux/arm/v7/x", " linux/amd64", "linux/am d64",
     "linux/amd64;x", ""],
)
def test_malformed_platforms(text: str) -> None:
    with pytest.raises(UsageError) as exc:
        P(text)
    assert exc.value.exit_code == 2
    assert repr(text) in str(exc.value)


@pytest.mark.parametrize(
    ("sys_platform", "machine", "expected"),
    [
        ("linux", "x86_64", "linux/amd64"),
        ("linux", "aarch64", "linux/arm64"),
        ("darwin", "arm64", "darwin/arm64"),
        ("darwin", "x86_64", "darwin/amd64"),
        ("win32", "AMD64", "windows/amd64"),
        ("linux", "armv7l", "linux/arm/v7"),
    ],
)
def test_host_detection_maps_uname(
    monkeypatch: pytest.MonkeyPatch, sys_platform: str, machine: str, expected: str
) -> None:
    monkeypatch.setattr(hitpath.sys, "platform", sys_platform)
    monkeypatch.setattr(hitpath, "machine", lambda: machine.lower())
    assert str(host_platform()) == expected


def test_host_platform_on_this_machine_is_well_formed() -> None:
    host = host_platform()
    assert P(str(host)) == host
    assert host.arch not in ("x86_64", "aarch64")  # mapped to OCI names


@pytest.mark.parametrize(
    ("wanted", "offered", "ok"),
    [
        ("linux/amd64", "linux/amd64", True),
        ("linux/amd64", "linux/arm64", False),
        ("linux/amd64", "darwin/amd64", False),
        # arm64: no variant is the same as v8, both ways
        ("linux/arm64", "linux/arm64/v8", True),
        ("linux/arm64/v8", "linux/arm64", True),
        # arm chain: v7 runs v6 and v5 binaries, never the other way round
        ("linux/arm/v7", "linux/arm/v7", True),
        ("linux/arm/v7", "linux/arm/v6", True),
        ("linux/arm/v7", "linux/arm/v5", True),
        ("linux/arm/v6", "linux/arm/v7", False),
        ("linux/arm/v5", "linux/arm/v6", False),
        # arm without a variant is v7 (as OCI and containerd normalise it): v7 hosts only
        ("linux/arm/v7", "linux/arm", True),
    ],
)
def test_accepts(wanted: str, offered: str, ok: bool) -> None:
    assert P(wanted).accepts(P(offered)) is ok


def test_arm_without_variant_means_v7() -> None:
    """An index entry {os: linux, architecture: arm} is a v7 binary: never handed to a v6 or
    v5 host, as arm64 without a variant is v8."""
    bare = Platform.from_descriptor({"os": "linux", "architecture": "arm"})
    assert bare == P("linux/arm")
    assert P("linux/arm/v7").accepts(bare) and P("linux/arm/v8").accepts(bare)
    assert not P("linux/arm/v6").accepts(bare)
    assert not P("linux/arm/v5").accepts(bare)
    # and a wanted linux/arm is v7 too: it runs v7, v6 and v5 binaries, not v8 ones
    assert P("linux/arm").accepts(P("linux/arm/v6"))
    assert not P("linux/arm").accepts(P("linux/arm/v8"))
    assert P("linux/arm").preference(P("linux/arm/v7")) == 0
    with pytest.raises(NotFoundError, match="linux/arm/v6"):
        select_platform(P("linux/arm/v6"), [bare], "x")
    # a v6 host takes the v6 entry beside it, a v7 host the bare (v7) one
    assert select_platform(P("linux/arm/v6"), [bare, P("linux/arm/v6")], "x") == 1
    assert select_platform(P("linux/arm/v7"), [P("linux/arm/v6"), bare], "x") == 1
    assert bazel_constraints(bare) == ("@platforms//os:linux", "@platforms//cpu:armv7")


def test_select_first_match_wins() -> None:
    offered = [P("linux/arm64"), P("linux/amd64"), P("linux/amd64")]
    assert select_platform(P("linux/amd64"), offered, "x") == 1


def test_select_prefers_exact_arm_variant_then_nearest_older() -> None:
    offered = [P("linux/arm/v5"), P("linux/arm/v7"), P("linux/arm/v6")]
    assert select_platform(P("linux/arm/v7"), offered, "x") == 1
    assert select_platform(P("linux/arm/v7"), [offered[0], offered[2]], "x") == 1  # v6 over v5
    assert select_platform(P("linux/arm/v6"), offered, "x") == 2


def test_select_arm64_with_or_without_v8() -> None:
    assert select_platform(P("linux/arm64"), [P("linux/amd64"), P("linux/arm64/v8")], "x") == 1
    assert select_platform(P("linux/arm64/v8"), [P("linux/arm64")], "x") == 0


def test_no_match_lists_what_is_offered() -> None:
    offered = [P("linux/amd64"), P("darwin/arm64")]
    with pytest.raises(NotFoundError) as exc:
        select_platform(P("windows/amd64"), offered, "index of thing")
    msg = str(exc.value)
    assert exc.value.exit_code == 4
    assert "index of thing" in msg and "windows/amd64" in msg
    assert "linux/amd64" in msg and "darwin/arm64" in msg
    with pytest.raises(NotFoundError, match="none"):
        select_platform(P("linux/amd64"), [], "empty index")


@pytest.mark.parametrize(
    ("text", "bazel", "buck2"),
    [
        ("linux/amd64", ("@platforms//os:linux", "@platforms//cpu:x86_64"),
         ("prelude//os:linux", "prelude//cpu:x86_64")),
        ("linux/arm64", ("@platforms//os:linux", "@platforms//cpu:aarch64"),
         ("prelude//os:linux", "prelude//cpu:arm64")),
        ("darwin/amd64", ("@platforms//os:osx", "@platforms//cpu:x86_64"),
         ("prelude//os:macos", "prelude//cpu:x86_64")),
        ("darwin/arm64", ("@platforms//os:osx", "@platforms//cpu:aarch64"),
         ("prelude//os:macos", "prelude//cpu:arm64")),
        ("windows/amd64", ("@platforms//os:windows", "@platforms//cpu:x86_64"),
         ("prelude//os:windows", "prelude//cpu:x86_64")),
    ],
)
def test_build_system_constraints(
    text: str, bazel: tuple[str, str], buck2: tuple[str, str]
) -> None:
    assert bazel_constraints(P(text)) == bazel
    assert buck2_constraints(P(text)) == buck2


def test_bazel_arm_v7() -> None:
    assert bazel_constraints(P("linux/arm/v7")) == ("@platforms//os:linux",
                                                    "@platforms//cpu:armv7")
