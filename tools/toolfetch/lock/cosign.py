"""cosign key-pair signatures: the simple-signing payload and its ECDSA signature.

cosign (``specs/SIGNATURE_SPEC.md``) signs the JSON payload ``{"critical": {"identity":
{"docker-reference": …}, "image": {"docker-manifest-digest": "sha256:…"}, "type": "cosign
container image signature"}, "optional": …}`` with the private key; the base64 DER signature
over the payload's SHA-256 sits in the ``dev.cosignproject.cosign/signature`` annotation of
the payload's layer in the ``sha256-<hex>.sig`` manifest. A signature counts only if it
verifies under the policy's key *and* its payload names exactly the manifest being pinned;
``docker-reference`` is not compared (mirrors and copies serve one digest under many names,
and the digest is what the lockfile pins). Needs ``cryptography`` (``toolfetch[sign]``).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolfetch.core.digest import Digest
from toolfetch.core.errors import IntegrityError, UsageError
from toolfetch.oci.manifest import Manifest

SIMPLE_SIGNING_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
PAYLOAD_TYPE = "cosign container image signature"
MAX_PAYLOAD_BYTES = 64 * 1024  # a payload is a few hundred bytes; refuse anything huge
SIGN_EXTRA = "pip install 'toolfetch[sign]'"


def require(module: str, what: str) -> None:
    """Refuse (exit 2, naming the extra) when the optional signing dependencies are absent."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError as e:
        raise UsageError(f"{what}: checking signatures needs the `{module.split('.')[0]}` "
                         f"package; install the extra: {SIGN_EXTRA}") from e


@dataclass(frozen=True)
class CosignKey:
    """A cosign public key (PEM); ``fingerprint`` is the sha256 of its DER
    SubjectPublicKeyInfo, what the lockfile records."""

    key: Any  # cryptography's public key
    fingerprint: Digest

    @classmethod
    def load(cls, path: Path, what: str) -> CosignKey:
        require("cryptography", what)
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        try:
            pem = path.read_bytes()
        except OSError as e:
            raise UsageError(f"{what}: cannot read cosign-key {path}: {e}") from e
        try:
            key = serialization.load_pem_public_key(pem)
        except ValueError as e:
            raise UsageError(f"{what}: cosign-key {path} is not a PEM public key: {e}") from e
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise UsageError(f"{what}: cosign-key {path} is not an ECDSA key (cosign's "
                             "key pairs are ECDSA P-256)")
        der = key.public_bytes(serialization.Encoding.DER,
                               serialization.PublicFormat.SubjectPublicKeyInfo)
        return cls(key, Digest.of_bytes(der))

    def verify(self, payload: bytes, signature_b64: str, manifest: Digest, what: str) -> None:
        """Exit 3 unless ``signature_b64`` is this key's signature of ``payload`` and the
        payload names ``manifest``."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        try:
            signature = base64.b64decode(signature_b64, validate=True)
        except (binascii.Error, ValueError) as e:
            raise IntegrityError(f"{what}: the signature annotation is not base64") from e
        try:
            self.key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise IntegrityError(f"{what}: signed by another key, not cosign-key "
                                 f"{self.fingerprint} (or the payload was altered)") from None
        named = payload_digest(payload, what)
        if named != manifest:
            raise IntegrityError(f"{what}: digest mismatch: the signature is for manifest "
                                 f"{named}, not {manifest}")


def payload_digest(payload: bytes, what: str) -> Digest:
    """The manifest digest a simple-signing payload names (exit 3 when malformed)."""
    try:
        critical = json.loads(payload)["critical"]
        kind = critical["type"]
        digest = Digest.parse(str(critical["image"]["docker-manifest-digest"]))
    except (ValueError, KeyError, TypeError, UsageError) as e:
        raise IntegrityError(f"{what}: malformed simple-signing payload: {e}") from e
    if kind != PAYLOAD_TYPE:
        raise IntegrityError(f"{what}: payload type is {kind!r}, not {PAYLOAD_TYPE!r}")
    return digest


def signature_layers(sig_manifest: Manifest, what: str) -> list[tuple[Digest, int, str]]:
    """The (payload digest, size, base64 signature) of each simple-signing layer of a
    ``.sig`` manifest; layers of other types (attachments) are skipped."""
    out = []
    for desc in sig_manifest.layers(what):
        signature = desc.annotations.get(SIGNATURE_ANNOTATION)
        if desc.media_type != SIMPLE_SIGNING_TYPE or not signature:
            continue
        if desc.size > MAX_PAYLOAD_BYTES:
            raise IntegrityError(f"{what}: signature payload {desc.digest} is {desc.size} "
                                 f"bytes (more than {MAX_PAYLOAD_BYTES})")
        out.append((desc.digest, desc.size, signature))
    return out
