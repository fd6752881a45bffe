"""The two signature verifiers against real signatures nobody here made (tests/data/signing):
containers/image's cosign fixtures and Sigstore bundles from the pypi-attestations sdist."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from toolfetch.core.digest import Digest
from toolfetch.core.errors import IntegrityError, UsageError
from toolfetch.lock.config import VerifyPolicy
from toolfetch.lock.cosign import CosignKey, payload_digest
from toolfetch.lock.sigstore_bundles import verify_bundle

DATA = Path(__file__).parent.parent / "data" / "signing"
COSIGN = DATA / "containers-image"
ASSETS = DATA / "pypi-attestations"
MODELS = ASSETS / "pypi_attestation_models-0.0.4a2.tar.gz"
MODELS_IDENTITY = ("https://github.com/trailofbits/pypi-attestation-models/.github/workflows/"
                   "release.yml@refs/tags/v0.0.4a2")
GITHUB = "https://token.actions.githubusercontent.com"
RFC8785 = ASSETS / "rfc8785-0.1.2-py3-none-any.whl"


def containers_signature(path: Path) -> tuple[bytes, str]:
    """containers/image's on-disk signature: ``\\x00sigstore-json\\n`` + JSON."""
    raw = path.read_bytes()
    prefix = b"\x00sigstore-json\n"
    assert raw.startswith(prefix)
    data = json.loads(raw[len(prefix):])
    return (base64.b64decode(data["payload"]),
            data["annotations"]["dev.cosignproject.cosign/signature"])


def key() -> CosignKey:
    return CosignKey.load(COSIGN / "cosign.pub", "test")


@pytest.mark.parametrize("signature", ["dir-img-cosign-valid/signature-1",
                                       "dir-img-cosign-valid-2/signature-2"])
def test_real_cosign_signatures_verify_for_their_manifest(signature: str) -> None:
    manifest = Digest.of_bytes((COSIGN / "dir-img-cosign-valid" / "manifest.json").read_bytes())
    payload, sig = containers_signature(COSIGN / signature)
    assert payload_digest(payload, "t") == manifest
    key().verify(payload, sig, manifest, "t")  # no exception


def test_cosign_signature_refused_for_a_modified_manifest() -> None:
    modified = Digest.of_bytes(
        (COSIGN / "dir-img-cosign-modified-manifest" / "manifest.json").read_bytes())
    payload, sig = containers_signature(COSIGN / "dir-img-cosign-valid" / "signature-1")
    with pytest.raises(IntegrityError, match="digest mismatch: the signature is for manifest "
                                             "sha256:634a8f35"):
        key().verify(payload, sig, modified, "t")


def test_cosign_signature_by_an_unknown_key_refused() -> None:
    manifest = Digest.of_bytes((COSIGN / "dir-img-cosign-valid" / "manifest.json").read_bytes())
    payload, sig = containers_signature(COSIGN / "unknown-cosign-key.signature")
    with pytest.raises(IntegrityError, match="signed by another key"):
        key().verify(payload, sig, manifest, "t")


def test_cosign_payload_altered_after_signing_refused() -> None:
    """Hostile: the payload's digest swapped for the one being pinned keeps the signature."""
    modified = Digest.of_bytes(
        (COSIGN / "dir-img-cosign-modified-manifest" / "manifest.json").read_bytes())
    payload, sig = containers_signature(COSIGN / "dir-img-cosign-valid" / "signature-1")
    forged = payload.replace(b"634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00",
                             modified.hex.encode())
    with pytest.raises(IntegrityError, match="signed by another key"):
        key().verify(forged, sig, modified, "t")


def test_cosign_key_fingerprint_and_bad_keys(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    der = serialization.load_pem_public_key((COSIGN / "cosign.pub").read_bytes()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert key().fingerprint == Digest.of_bytes(der)
    (tmp_path / "bad.pub").write_text("not a key")
    with pytest.raises(UsageError, match="not a PEM public key"):
        CosignKey.load(tmp_path / "bad.pub", "t")
    with pytest.raises(UsageError, match="cannot read cosign-key"):
        CosignKey.load(tmp_path / "missing.pub", "t")


def policy(identity: str = MODELS_IDENTITY, issuer: str = GITHUB, *,
           regexp: str | None = None, trusted_root: Path | None = None) -> VerifyPolicy:
    return VerifyPolicy(identity=None if regexp else identity, identity_regexp=regexp,
                        issuer=issuer, trusted_root=trusted_root)


def test_real_production_bundle_verifies_with_its_identity() -> None:
    signer = verify_bundle(Path(f"{MODELS}.sigstore").read_bytes(), Digest.of_file(MODELS),
                           policy(), "t")
    assert (signer.identity, signer.issuer) == (MODELS_IDENTITY, GITHUB)


def test_identity_regexp_matches_in_full_and_records_the_real_identity() -> None:
    signer = verify_bundle(Path(f"{MODELS}.sigstore").read_bytes(), Digest.of_file(MODELS),
                           policy(regexp=r"https://github\.com/trailofbits/.*@refs/tags/v.*"),
                           "t")
    assert signer.identity == MODELS_IDENTITY
    with pytest.raises(IntegrityError, match="do not match"):  # a prefix is not a match
        verify_bundle(Path(f"{MODELS}.sigstore").read_bytes(), Digest.of_file(MODELS),
                      policy(regexp=r"https://github\.com/trailofbits/"), "t")


@pytest.mark.parametrize("identity,issuer", [
    ("https://github.com/evil/pypi-attestation-models/.github/workflows/release.yml"
     "@refs/tags/v0.0.4a2", GITHUB),
    (MODELS_IDENTITY, "https://gitlab.com"),
])
def test_real_bundle_with_another_identity_or_issuer_refused(identity: str, issuer: str) -> None:
    with pytest.raises(IntegrityError, match="does not verify"):
        verify_bundle(Path(f"{MODELS}.sigstore").read_bytes(), Digest.of_file(MODELS),
                      policy(identity, issuer), "t")


def test_real_bundle_for_a_tampered_file_refused() -> None:
    tampered = MODELS.read_bytes() + b"\0"
    with pytest.raises(IntegrityError, match="digest mismatch"):
        verify_bundle(Path(f"{MODELS}.sigstore").read_bytes(), Digest.of_bytes(tampered),
                      policy(), "t")


def test_bundle_without_a_transparency_log_entry_refused() -> None:
    """Hostile: a keyless bundle stripped of its log entry has no verified signing time."""
    data = json.loads(Path(f"{MODELS}.sigstore").read_text())
    data["verificationMaterial"]["tlogEntries"] = []
    with pytest.raises(IntegrityError):
        verify_bundle(json.dumps(data).encode(), Digest.of_file(MODELS), policy(), "t")


def test_tampered_bundle_signature_refused() -> None:
    data = json.loads(Path(f"{MODELS}.sigstore").read_text())
    sig = data["dsseEnvelope"]["signatures"][0]
    raw = bytearray(base64.b64decode(sig["sig"]))
    raw[-1] ^= 1
    sig["sig"] = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(IntegrityError):
        verify_bundle(json.dumps(data).encode(), Digest.of_file(MODELS), policy(), "t")


def test_garbage_is_not_a_bundle() -> None:
    with pytest.raises(IntegrityError, match="not a valid Sigstore bundle"):
        verify_bundle(b"{}", Digest.of_file(MODELS), policy(), "t")


def test_staging_bundle_needs_the_staging_trusted_root() -> None:
    bundle = Path(f"{RFC8785}.sigstore").read_bytes()
    staging = policy("william@yossarian.net", "https://github.com/login/oauth")
    with pytest.raises(IntegrityError, match="does not verify"):  # production root: refused
        verify_bundle(bundle, Digest.of_file(RFC8785), staging, "t")
    signer = verify_bundle(bundle, Digest.of_file(RFC8785), policy(
        "william@yossarian.net", "https://github.com/login/oauth",
        trusted_root=DATA / "sigstore-staging-trusted-root.json"), "t")
    assert signer.identity == "william@yossarian.net"


# ---- the policy in tools.yaml ---------------------------------------------------------------


def _config(tmp_path: Path, verify: object) -> object:
    from toolfetch.lock.config import Config

    data = {"tools": {"t": {"ref": "registry.example/t:1", "path": "t", "verify": verify}}}
    return Config.from_data(data, tmp_path / "tools.yaml")


def test_policies_parse_with_paths_relative_to_tools_yaml(tmp_path: Path) -> None:
    from toolfetch.lock.config import Config

    config = _config(tmp_path, {"cosign-key": "keys/cosign.pub"})
    assert isinstance(config, Config)
    assert config.tools["t"].verify == VerifyPolicy(cosign_key=tmp_path / "keys/cosign.pub")
    config = _config(tmp_path, {"sigstore": {"identity-regexp": "^x$", "issuer": "https://i"},
                                "trusted-root": "root.json"})
    assert isinstance(config, Config)
    assert config.tools["t"].verify == VerifyPolicy(
        identity_regexp="^x$", issuer="https://i", trusted_root=tmp_path / "root.json")


@pytest.mark.parametrize("verify", [
    {},
    {"cosign-key": "k.pub", "sigstore": {"identity": "a", "issuer": "b"}},
    {"cosign-key": "k.pub", "bundle": "{url}.sigstore"},
    {"sigstore": {"identity": "a"}},
    {"sigstore": {"issuer": "b"}},
    {"sigstore": {"identity": "a", "identity-regexp": "a", "issuer": "b"}},
    {"sigstore": {"identity-regexp": "(", "issuer": "b"}},
    {"sigstore": {"identity": "a", "issuer": "b"}, "bundle": "bundle.json"},
    {"sigstore": {"identity": "a", "issuer": "b", "extra": 1}},
])
def test_malformed_policies_are_usage_errors(tmp_path: Path, verify: object) -> None:
    with pytest.raises(UsageError, match=r"verify|tools\.t"):
        _config(tmp_path, verify)
