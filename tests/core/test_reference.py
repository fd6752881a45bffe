"""Unit tests of toolfetch.core.reference: registry references and oci-layout references."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from toolfetch.core.digest import Digest
from toolfetch.core.errors import UsageError
from toolfetch.core.reference import (
    LayoutReference,
    Reference,
    parse_any,
    rebase_layout_ref,
)

HEX = hashlib.sha256(b"reference tests").hexdigest()
DIGEST = f"sha256:{HEX}"


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "api_host"),
    [
        ("ghcr.io/acme/tools/protoc:25.1", "ghcr.io", "acme/tools/protoc", "25.1", "ghcr.io"),
        ("127.0.0.1:5000/a/b", "127.0.0.1:5000", "a/b", "latest", "127.0.0.1:5000"),
        ("localhost/tool:v1", "localhost", "tool", "v1", "localhost"),
        ("localhost:5000/x_y/z-w.q:1.2-rc_3", "localhost:5000", "x_y/z-w.q", "1.2-rc_3",
         "localhost:5000"),
        ("[::1]:5000/a:t", "[::1]:5000", "a", "t", "[::1]:5000"),
        # Docker Hub short names are normalised; the API lives at registry-1.docker.io
        ("alpine", "docker.io", "library/alpine", "latest", "registry-1.docker.io"),
        ("alpine:3.19", "docker.io", "library/alpine", "3.19", "registry-1.docker.io"),
        ("user/img:1", "docker.io", "user/img", "1", "registry-1.docker.io"),
        ("index.docker.io/library/busybox:1", "docker.io", "library/busybox", "1",
         "registry-1.docker.io"),
        ("registry-1.docker.io/foo/bar", "docker.io", "foo/bar", "latest",
         "registry-1.docker.io"),
    ],
)
def test_parse_registry_reference(
    text: str, registry: str, repository: str, tag: str, api_host: str
) -> None:
    ref = Reference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        registry, repository, tag, None)
    assert ref.api_host == api_host
    assert ref.target == tag
    assert ref.name == f"{registry}/{repository}"
    assert str(ref) == f"{registry}/{repository}:{tag}"
    # the normalised form parses back to the same reference
    assert Reference.parse(str(ref)) == ref


def test_digest_reference_targets_the_digest() -> None:
    ref = Reference.parse(f"ghcr.io/acme/protoc@{DIGEST}")
    assert ref.tag is None
    assert ref.digest == Digest(HEX)
    assert ref.target == DIGEST
    assert str(ref) == f"ghcr.io/acme/protoc@{DIGEST}"


def test_tag_and_digest_keeps_both_and_pins_the_digest() -> None:
    ref = Reference.parse(f"ghcr.io/acme/protoc:25.1@{DIGEST}")
    assert ref.tag == "25.1"
    assert ref.digest == Digest(HEX)
    assert ref.target == DIGEST
    assert str(ref) == f"ghcr.io/acme/protoc:25.1@{DIGEST}"


def test_with_digest_and_with_repository() -> None:
    ref = Reference.parse("ghcr.io/acme/protoc:25.1")
    pinned = ref.with_digest(Digest(HEX))
    assert pinned.target == DIGEST and pinned.tag == "25.1"
    assert ref.digest is None  # frozen: the original is unchanged
    moved = ref.with_repository("mirror:5000", "ghcr/acme/protoc")
    assert str(moved) == "mirror:5000/ghcr/acme/protoc:25.1"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty"),
        (" ghcr.io/a:1", "whitespace"),
        ("ghcr.io/a:1 ", "whitespace"),
        ("ghcr.io/Acme/tool:1", "lowercase"),
        ("ghcr.io/acme//tool:1", "repository"),
        ("ghcr.io/acme/tool:-bad", "bad tag"),
        ("ghcr.io/acme/tool:" + "x" * 129, "bad tag"),
        ("ghcr.io/acme/tool@sha256:abc", "malformed digest"),
        (f"ghcr.io/acme/tool@sha512:{HEX}", "only sha256"),
        (f"ghcr.io/acme/tool@sha256:{HEX.upper()}", "malformed digest"),
        ("bad_host.io/acme/tool:1", "bad registry host"),
        ("-host.io/acme/tool", "bad registry host"),
    ],
)
def test_malformed_references_are_usage_errors(text: str, needle: str) -> None:
    with pytest.raises(UsageError) as exc:
        Reference.parse(text)
    assert exc.value.exit_code == 2
    assert needle in str(exc.value)
    if text.strip():
        assert repr(text) in str(exc.value)  # the message quotes the reference


def test_layout_reference_with_tag_relative_to_base(tmp_path: Path) -> None:
    ref = LayoutReference.parse("oci-layout:registry:hello", base_dir=tmp_path)
    assert ref.path == tmp_path / "registry"
    assert ref.tag == "hello"
    assert ref.digest is None
    assert ref.target == "hello"


def test_layout_reference_absolute_path_ignores_base(tmp_path: Path) -> None:
    ref = LayoutReference.parse(f"oci-layout:{tmp_path}/lay@{DIGEST}", base_dir=Path("/other"))
    assert ref.path == tmp_path / "lay"
    assert ref.digest == Digest(HEX)
    assert ref.target == DIGEST
    assert str(ref) == f"oci-layout:{tmp_path}/lay@{DIGEST}"


def test_layout_reference_without_tag_targets_latest() -> None:
    ref = LayoutReference.parse("oci-layout:some/dir")
    assert ref.path == Path("some/dir")
    assert ref.tag is None
    assert ref.target == "latest"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("oci-layout:", "missing directory"),
        ("oci-layout:dir:-x", "bad tag"),
        ("oci-layout:dir@sha256:00", "malformed digest"),
        ("layout:dir", "must start with oci-layout:"),
    ],
)
def test_malformed_layout_references(text: str, needle: str) -> None:
    with pytest.raises(UsageError, match=needle):
        LayoutReference.parse(text)


def test_parse_any_dispatches_on_prefix(tmp_path: Path) -> None:
    assert isinstance(parse_any("ghcr.io/a/b:1"), Reference)
    layout = parse_any("oci-layout:lay:t", tmp_path)
    assert isinstance(layout, LayoutReference)
    assert layout.path == tmp_path / "lay"


def test_rebase_layout_ref_moves_relative_dirs(tmp_path: Path) -> None:
    config_dir = tmp_path / "conf"
    lock_dir = tmp_path / "out" / "locks"
    config_dir.mkdir()
    lock_dir.mkdir(parents=True)
    rebased = rebase_layout_ref("oci-layout:registry:hello", config_dir, lock_dir)
    assert rebased == "oci-layout:../../conf/registry:hello"
    # and it resolves to the same directory from the lockfile's side
    assert LayoutReference.parse(rebased, lock_dir).path.resolve() == config_dir / "registry"
    pinned = rebase_layout_ref(f"oci-layout:r@{DIGEST}", config_dir, config_dir)
    assert pinned == f"oci-layout:r@{DIGEST}"


def test_rebase_leaves_registry_and_absolute_refs_alone(tmp_path: Path) -> None:
    assert rebase_layout_ref("ghcr.io/a/b:1", tmp_path, tmp_path / "x") == "ghcr.io/a/b:1"
    absolute = f"oci-layout:{tmp_path}/lay:t"
    assert rebase_layout_ref(absolute, tmp_path / "a", tmp_path / "b") == absolute
