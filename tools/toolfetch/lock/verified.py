"""The lockfile's per-platform ``verified`` record: what ``lock`` checked a signature of.

It names the signature (the cosign ``.sig`` manifest, or the Sigstore bundle) by digest, so
``lock --check`` and ``toolfetch verify`` re-check it from the cache without the network,
and the signer (a cosign key's fingerprint, or a certificate's identity and issuer), so a
reviewer sees in the diff who vouched for a new pin. ``fetch`` and the rule shims ignore it:
the digests beside it already pin the bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolfetch.core.digest import Digest
from toolfetch.core.errors import UsageError

KINDS = ("cosign-key", "sigstore")


@dataclass(frozen=True)
class Verified:
    kind: str  # one of KINDS
    signature: Digest  # the .sig manifest (cosign) or the bundle (sigstore)
    key: Digest | None = None  # cosign: sha256 of the public key's DER SubjectPublicKeyInfo
    identity: str | None = None  # sigstore: the certificate's identity (SAN)
    issuer: str | None = None  # sigstore: the OIDC issuer named in the certificate
    # "index": the signature covers the index the platform was locked from (which lists its
    # manifest), as cosign signs a multi-platform image; None: the manifest or asset itself.
    subject: str | None = None

    @property
    def signer(self) -> str:
        """Who signed, for people: the key fingerprint, or identity and issuer."""
        if self.kind == "cosign-key":
            return f"cosign key {self.key}"
        return f"{self.identity} (issuer {self.issuer})"

    def to_json(self) -> dict[str, str]:
        out = {"kind": self.kind, "signature": str(self.signature)}
        if self.key is not None:
            out["key"] = str(self.key)
        if self.identity is not None and self.issuer is not None:
            out.update(identity=self.identity, issuer=self.issuer)
        if self.subject is not None:
            out["subject"] = self.subject
        return out

    @classmethod
    def from_json(cls, raw: Any, path: Path, where: str) -> Verified:
        """Hand-checked (the schema checks it too, when it runs)."""
        if not isinstance(raw, dict) or raw.get("kind") not in KINDS:
            raise UsageError(f"{path}: {where}.kind: expected one of {', '.join(KINDS)}")
        try:
            signature = Digest.parse(str(raw.get("signature")))
            key = Digest.parse(str(raw["key"])) if raw["kind"] == "cosign-key" else None
        except (UsageError, KeyError) as e:
            raise UsageError(f"{path}: {where}: malformed signature or key digest") from e
        subject = raw.get("subject")
        if subject not in (None, "index"):
            raise UsageError(f"{path}: {where}.subject: expected \"index\" or nothing")
        identity, issuer = raw.get("identity"), raw.get("issuer")
        if raw["kind"] == "sigstore" and not (isinstance(identity, str) and identity
                                              and isinstance(issuer, str) and issuer):
            raise UsageError(f"{path}: {where}: a sigstore record names identity and issuer")
        return cls(raw["kind"], signature, key, identity if key is None else None,
                   issuer if key is None else None, subject)
