"""Validate what toolfetch writes against the OCI image-spec v1.1.1 JSON Schemas.

The schemas (draft-04) live in ``../shared/oci-image-spec-v1.1.1`` beside the repository
(``$OCI_IMAGE_SPEC_DIR`` overrides) and refer to each other by file name, sometimes under
nested ``id`` base URIs; every reference is resolved by its last path component. Independent
of toolfetch's own code. Without them the tests that need them skip, or fail when ``CI`` is
set and ``$OCI_IMAGE_SPEC_DIR`` names a directory that lacks them.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest

SPEC_DIR = Path(os.environ.get("OCI_IMAGE_SPEC_DIR") or
                Path(__file__).resolve().parents[3] / "shared" / "oci-image-spec-v1.1.1")
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@cache
def _validator(name: str) -> Any:
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    if not (SPEC_DIR / name).is_file():
        if os.environ.get("OCI_IMAGE_SPEC_DIR"):
            pytest.fail(f"OCI_IMAGE_SPEC_DIR={SPEC_DIR} holds no {name}", pytrace=False)
        pytest.skip(f"OCI schemas not found in {SPEC_DIR}")

    def retrieve(uri: str) -> Resource[Any]:
        base = uri.split("#", 1)[0].rsplit("/", 1)[-1]
        if not base.endswith(".json"):
            base += ".json"
        return Resource.from_contents(json.loads((SPEC_DIR / base).read_text()),
                                      default_specification=DRAFT4)

    schema = json.loads((SPEC_DIR / name).read_text())
    return jsonschema.Draft4Validator(schema, registry=Registry(retrieve=retrieve))  # type: ignore[call-arg]


def validate(instance: Any, schema_file: str) -> None:
    errors = sorted(_validator(schema_file).iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, f"{schema_file}: " + "; ".join(
        f"{list(e.path)}: {e.message}" for e in errors[:5])


def validate_manifest(raw: bytes | dict[str, Any]) -> dict[str, Any]:
    data = json.loads(raw) if isinstance(raw, bytes) else raw
    media_type = data.get("mediaType")
    if media_type == OCI_INDEX or "manifests" in data:
        validate(data, "image-index-schema.json")
    else:
        validate(data, "image-manifest-schema.json")
    return data  # type: ignore[no-any-return]


def validate_layout(root: Path, complete: bool = True) -> dict[str, Any]:
    """Check ``oci-layout``, ``index.json`` and every manifest reachable from it.

    Every blob present must hash to its name; with ``complete`` every referenced blob must
    be present. Returns index.json.
    """
    validate(json.loads((root / "oci-layout").read_text()), "image-layout-schema.json")
    index = json.loads((root / "index.json").read_text())
    validate(index, "image-index-schema.json")
    blobs = root / "blobs" / "sha256"
    for blob in blobs.iterdir():
        if not blob.name.startswith("."):
            assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name, blob
    stack = list(index["manifests"])
    while stack:
        desc = stack.pop()
        path = blobs / desc["digest"].partition(":")[2]
        if not path.exists():
            assert not complete, f"{desc['digest']} is referenced but missing"
            continue
        assert path.stat().st_size == desc["size"], desc
        if desc["mediaType"] in (OCI_INDEX, OCI_MANIFEST):
            data = validate_manifest(path.read_bytes())
            if "manifests" in data:
                stack.extend(data["manifests"])
            else:
                stack.extend([data["config"], *data["layers"]])
    return index  # type: ignore[no-any-return]
