"""Sigstore bundles: keyless signatures checked offline with sigstore-python.

A bundle (``application/vnd.dev.sigstore.bundle.v0.x+json``) carries a short-lived Fulcio
certificate naming who signed (identity = its SAN, issuer = the OIDC issuer extension), the
signature (over the artifact's digest, or a DSSE envelope holding an in-toto statement whose
``subject`` names the artifact's digest), and the transparency-log entry with its inclusion
proof or promise. sigstore's :class:`Verifier` checks the certificate chain against the trusted
root at the time the log proves, the SCT, the log entry and the signature; a bundle without a
log entry gives no verified time, so it is refused. The trusted root is a file: the policy's
``trusted-root``, else the production root embedded in the installed ``sigstore`` package
(pinned by its version; never fetched at lock time, so no TUF refresh happens here).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from toolfetch.core.digest import Digest
from toolfetch.core.errors import IntegrityError, UsageError
from toolfetch.lock.config import VerifyPolicy
from toolfetch.lock.cosign import require

BUNDLE_MEDIA_TYPE_PREFIX = "application/vnd.dev.sigstore.bundle"
IN_TOTO = "application/vnd.in-toto+json"
MAX_BUNDLE_BYTES = 1024 * 1024
_PRODUCTION = ("_store", "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev", "trusted_root.json")


@dataclass(frozen=True)
class Signer:
    identity: str
    issuer: str


def _trusted_root(policy: VerifyPolicy, what: str) -> Any:
    from sigstore.models import TrustedRoot

    if policy.trusted_root is not None:
        path = str(policy.trusted_root)
    else:
        root = resources.files("sigstore")
        for part in _PRODUCTION:
            root = root.joinpath(part)
        path = str(root)
    try:
        return TrustedRoot.from_file(path)
    except FileNotFoundError as e:
        raise UsageError(f"{what}: trusted root {path} not found") from e
    except Exception as e:  # pydantic or JSON errors: the file is not a trusted root
        raise UsageError(f"{what}: {path} is not a Sigstore trusted root: {e}") from e


class _IdentityRegexp:
    """sigstore's ``Identity`` policy with a regular expression (matched in full) instead
    of an exact SAN; the issuer is exact."""

    def __init__(self, pattern: str, issuer: str) -> None:
        from sigstore.verify.policy import OIDCIssuer

        self._pattern = re.compile(pattern)
        self._issuer = OIDCIssuer(issuer)

    def verify(self, cert: Any) -> None:
        from sigstore.errors import VerificationError

        self._issuer.verify(cert)
        sans = certificate_identities(cert)
        if not any(self._pattern.fullmatch(san) for san in sans):
            raise VerificationError(f"Certificate's SANs do not match "
                                    f"{self._pattern.pattern}; actual SANs: {sorted(sans)}")


def certificate_identities(cert: Any) -> set[str]:
    """Every identity a Fulcio certificate names: e-mail, URI and Sigstore other-name SANs."""
    from cryptography import x509

    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    out = set(san.get_values_for_type(x509.RFC822Name))
    out.update(san.get_values_for_type(x509.UniformResourceIdentifier))
    out.update(o.value.decode(errors="replace") for o in san.get_values_for_type(x509.OtherName)
               if o.type_id.dotted_string == "1.3.6.1.4.1.57264.1.7")
    return out


def verify_bundle(raw: bytes, subject: Digest, policy: VerifyPolicy, what: str) -> Signer:
    """Exit 3 unless ``raw`` is a bundle that signs ``subject`` (a sha256) by the policy's
    identity and issuer, with a transparency-log entry, under the trusted root."""
    require("sigstore", what)
    from sigstore.errors import Error as SigstoreError
    from sigstore.hashes import Hashed
    from sigstore.models import Bundle
    from sigstore.verify import Verifier
    from sigstore.verify.policy import Identity
    from sigstore_models.common.v1 import HashAlgorithm

    assert policy.issuer is not None
    if policy.identity_regexp is not None:
        rule: Any = _IdentityRegexp(policy.identity_regexp, policy.issuer)
        wanted = f"identity matching {policy.identity_regexp!r}"
    else:
        assert policy.identity is not None
        rule = Identity(identity=policy.identity, issuer=policy.issuer)
        wanted = f"identity {policy.identity}"
    wanted += f" from issuer {policy.issuer}"
    try:
        data = json.loads(raw)
        bundle = Bundle.from_json(raw)
    except (ValueError, SigstoreError) as e:  # pydantic's errors are ValueErrors
        raise IntegrityError(f"{what}: not a valid Sigstore bundle: {_first_line(e)}") from e
    verifier = Verifier(trusted_root=_trusted_root(policy, what))
    try:
        if isinstance(data, dict) and "dsseEnvelope" in data:
            payload_type, payload = verifier.verify_dsse(bundle, rule)
            _check_statement(payload_type, payload, subject, what)
        else:
            hashed = Hashed(algorithm=HashAlgorithm.SHA2_256, digest=bytes.fromhex(subject.hex))
            verifier.verify_artifact(hashed, bundle, rule)
    except SigstoreError as e:
        raise IntegrityError(f"{what}: the bundle does not verify for {subject} and "
                             f"{wanted}: {_first_line(e)}") from e
    cert = bundle.signing_certificate
    identities = certificate_identities(cert)
    if policy.identity is not None:
        identity = policy.identity
    else:
        assert policy.identity_regexp is not None
        identity = sorted(s for s in identities if re.fullmatch(policy.identity_regexp, s))[0]
    return Signer(identity, policy.issuer)


def _check_statement(payload_type: str, payload: bytes, subject: Digest, what: str) -> None:
    """A DSSE bundle signs an in-toto statement: it must name ``subject`` among its subjects."""
    if payload_type != IN_TOTO:
        raise IntegrityError(f"{what}: the bundle's DSSE payload is {payload_type!r}, not an "
                             "in-toto statement")
    try:
        subjects = json.loads(payload)["subject"]
        digests = {str(s["digest"]["sha256"]).lower() for s in subjects
                   if isinstance(s, dict) and "sha256" in s.get("digest", {})}
    except (ValueError, KeyError, TypeError) as e:
        raise IntegrityError(f"{what}: malformed in-toto statement in the bundle: {e}") from e
    if subject.hex not in digests:
        shown = ", ".join(f"sha256:{d}" for d in sorted(digests)) or "none"
        raise IntegrityError(f"{what}: digest mismatch: the bundle's statement names "
                             f"{shown}, not {subject}")


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]

