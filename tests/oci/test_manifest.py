"""Tests for toolfetch.oci.manifest: manifest bytes checked against their digest and size
cap, and platform selection in an index."""

from __future__ import annotations

import json

import pytest

from toolfetch.core.digest import Digest
from toolfetch.core.errors import IntegrityError, NotFoundError
from toolfetch.core.platform import Platform
from toolfetch.oci.manifest import (
    MAX_MANIFEST_BYTES,
    OCI_INDEX,
    OCI_MANIFEST,
    Manifest,
    verify_manifest_bytes,
)

P = Platform.parse


def test_verify_manifest_bytes() -> None:
    raw = b'{"schemaVersion":2}'
    assert verify_manifest_bytes(raw, None, "m") == Digest.of_bytes(raw)
    assert verify_manifest_bytes(raw, Digest.of_bytes(raw), "m") == Digest.of_bytes(raw)
    with pytest.raises(IntegrityError, match="manifest digest mismatch"):
        verify_manifest_bytes(raw + b" ", Digest.of_bytes(raw), "m")
    with pytest.raises(IntegrityError, match="larger than"):
        verify_manifest_bytes(b" " * (MAX_MANIFEST_BYTES + 1), None, "m")


def _index(entries: list[dict[str, object]]) -> Manifest:
    raw = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
    return Manifest.parse(raw, OCI_INDEX, "test index")


def _entry(n: int, platform: dict[str, str] | None) -> dict[str, object]:
    e: dict[str, object] = {"mediaType": OCI_MANIFEST, "digest": "sha256:" + f"{n:x}" * 64,
                            "size": 100 + n}
    if platform is not None:
        e["platform"] = platform
    return e


def test_index_selection_skips_attestations_and_unplatformed_entries() -> None:
    idx = _index([
        _entry(1, {"os": "unknown", "architecture": "unknown"}),  # buildkit attestation
        _entry(2, None),
        _entry(3, {"os": "linux", "architecture": "arm", "variant": "v6"}),
        _entry(4, {"os": "linux", "architecture": "amd64"}),
    ])
    assert [str(d.platform) for d in idx.platform_manifests("i")] == ["linux/arm/v6",
                                                                       "linux/amd64"]
    assert idx.select(P("linux/amd64"), "i").size == 104
    assert idx.select(P("linux/arm/v7"), "i").size == 103
    with pytest.raises(NotFoundError) as exc:
        idx.select(P("darwin/arm64"), "i")
    assert "linux/arm/v6, linux/amd64" in str(exc.value)
    assert "unknown" not in str(exc.value)


def test_index_entry_arm_without_variant_is_not_served_to_v6() -> None:
    idx = _index([_entry(1, {"os": "linux", "architecture": "arm"}),
                  _entry(2, {"os": "linux", "architecture": "amd64"})])
    assert idx.select(P("linux/arm/v7"), "i").size == 101
    for host in ("linux/arm/v6", "linux/arm/v5"):
        with pytest.raises(NotFoundError, match="offers: linux/arm, linux/amd64"):
            idx.select(P(host), "i")
