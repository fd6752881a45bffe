"""Issue 26: `lock` verifies who signed a tool before pinning it (docs/signing.md).

OCI tools: pushed to the loopback Distribution with toolfetch, signed here in cosign's format
(ECDSA P-256 over the simple-signing payload, the `sha256-<hex>.sig` tag, the signature in the
layer's annotation). HTTP assets: a real production Sigstore bundle (tests/data/signing) served
beside its file by the loopback asset server.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ocitest
import pytest
from assetserver import AssetServer
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from tf import assert_error, assert_ok, host, script, tf_main, write_config

from toolfetch.core.digest import Digest
from toolfetch.lock.lockfile import Lockfile

DATA = Path(__file__).parent.parent / "data" / "signing"
MODELS = DATA / "pypi-attestations" / "pypi_attestation_models-0.0.4a2.tar.gz"
MODELS_IDENTITY = ("https://github.com/trailofbits/pypi-attestation-models/.github/workflows/"
                   "release.yml@refs/tags/v0.0.4a2")
GITHUB = "https://token.actions.githubusercontent.com"
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"


class Workspace:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = root / "tools.yaml"
        self.lockfile = root / "tools.lock.json"
        root.mkdir(parents=True, exist_ok=True)

    def write(self, tools: dict[str, Any]) -> None:
        write_config(self.config, {"tools": tools})

    def lock(self, *args: str) -> Any:
        return tf_main("lock", "--lockfile", self.lockfile, *args)

    def entry(self, tool: str, key: str) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self.lockfile.read_text())["tools"][tool]["platforms"][key]
        return out


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "ws")


def new_key(ws: Workspace, name: str) -> ec.EllipticCurvePrivateKey:
    key = ec.generate_private_key(ec.SECP256R1())
    (ws.root / f"{name}.pub").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return key


def fingerprint(key: ec.EllipticCurvePrivateKey) -> str:
    return str(Digest.of_bytes(key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)))


def push_tool(reg: ocitest.Registry, repo: str, tag: str, body: bytes, ws: Workspace) -> str:
    """`toolfetch push`; returns the manifest digest it prints."""
    f = ws.root / "tool"
    f.write_bytes(body)
    r = tf_main("push", reg.ref(repo, tag), f)
    assert_ok(r)
    return r.stdout.strip().splitlines()[-1]


def cosign_sign(reg: ocitest.Registry, repo: str, manifest: str,
                key: ec.EllipticCurvePrivateKey, *, names: str | None = None) -> str:
    """What `cosign sign --key` stores: payload blob + `.sig` manifest under `sha256-<hex>.sig`.
    ``names`` is the digest the payload claims (default: ``manifest``)."""
    payload = json.dumps({
        "critical": {"identity": {"docker-reference": f"{reg.host}/{repo}"},
                     "image": {"docker-manifest-digest": names or manifest},
                     "type": "cosign container image signature"},
        "optional": None}).encode()
    signature = base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
    layer = ocitest.push_blob(reg, repo, payload, SIMPLE_SIGNING,
                              {"dev.cosignproject.cosign/signature": signature})
    config = ocitest.push_blob(reg, repo, b"{}", ocitest.OCI_EMPTY)
    sig = {"schemaVersion": 2, "mediaType": ocitest.OCI_MANIFEST, "config": config,
           "layers": [layer]}
    return ocitest.push_manifest(reg, repo, f"sha256-{manifest.split(':')[1]}.sig", sig)


# ---- cosign key-pair signatures on OCI tools ---------------------------------------------


def test_cosign_signed_tool_locks_and_records_the_signature(
        registry: ocitest.Registry, unique_repo: str, ws: Workspace) -> None:
    key = new_key(ws, "cosign")
    manifest = push_tool(registry, unique_repo, "1", script("signed"), ws)
    sig = cosign_sign(registry, unique_repo, manifest, key)
    ws.write({"signed": {"ref": registry.ref(unique_repo, "1"), "path": "tool",
                         "verify": {"cosign-key": "cosign.pub"}}})
    assert_ok(ws.lock())
    entry = ws.entry("signed", "*")
    assert entry["manifest"] == manifest
    assert entry["verified"] == {"kind": "cosign-key", "signature": sig,
                                 "key": fingerprint(key)}
    Lockfile.load(ws.lockfile)  # the schema accepts it
    before = ws.lockfile.read_bytes()
    assert_ok(ws.lock("--check"))
    assert_ok(ws.lock())
    assert ws.lockfile.read_bytes() == before  # deterministic
    r = tf_main("verify", "--lockfile", ws.lockfile)
    assert_ok(r)
    assert r.stdout == f"signed *: signed by cosign key {fingerprint(key)}, signature {sig}\n"


def test_signature_by_another_key_fails_and_writes_nothing(
        registry: ocitest.Registry, unique_repo: str, ws: Workspace) -> None:
    new_key(ws, "ours")
    theirs = new_key(ws, "theirs")
    manifest = push_tool(registry, unique_repo, "1", script("other-key"), ws)
    cosign_sign(registry, unique_repo, manifest, theirs)
    ws.write({"t": {"ref": registry.ref(unique_repo, "1"), "path": "tool"}})
    assert_ok(ws.lock())  # without a policy: pinned
    before = ws.lockfile.read_bytes()
    ws.write({"t": {"ref": registry.ref(unique_repo, "1"), "path": "tool",
                    "verify": {"cosign-key": "ours.pub"}}})
    assert_error(ws.lock(), 3, "tool t [*]", "cosign-key", "ours.pub", "signed by another key")
    assert ws.lockfile.read_bytes() == before
    ws.write({"t": {"ref": registry.ref(unique_repo, "1"), "path": "tool",
                    "verify": {"cosign-key": "theirs.pub"}}})
    r = ws.lock()
    assert_ok(r)  # the pin stays; lock says why the entry changed
    assert f"t (*): {manifest} -> {manifest} (only what was verified" in r.stdout


def test_unsigned_tool_fails(registry: ocitest.Registry, unique_repo: str,
                             ws: Workspace) -> None:
    new_key(ws, "cosign")
    manifest = push_tool(registry, unique_repo, "1", script("unsigned"), ws)
    ws.write({"t": {"ref": registry.ref(unique_repo, "1"), "path": "tool",
                    "verify": {"cosign-key": "cosign.pub"}}})
    assert_error(ws.lock(), 3, "tool t [*]", "unsigned", f"sha256-{manifest[7:]}.sig")
    assert not ws.lockfile.exists()


def test_changed_manifest_with_a_copied_signature_fails(
        registry: ocitest.Registry, unique_repo: str, ws: Workspace) -> None:
    """Hostile: the tag moves to other bytes and the old, valid signature is copied to the
    new manifest's `.sig` tag; its payload still names the old digest."""
    key = new_key(ws, "cosign")
    old = push_tool(registry, unique_repo, "1", script("v1"), ws)
    cosign_sign(registry, unique_repo, old, key)
    ws.write({"t": {"ref": registry.ref(unique_repo, "1"), "path": "tool",
                    "verify": {"cosign-key": "cosign.pub"}}})
    assert_ok(ws.lock())
    before = ws.lockfile.read_bytes()
    new = push_tool(registry, unique_repo, "1", script("v2-evil"), ws)
    cosign_sign(registry, unique_repo, new, key, names=old)
    assert_error(ws.lock(), 3, "tool t [*]", "digest mismatch", old, new)
    assert ws.lockfile.read_bytes() == before


def test_cosign_key_on_an_http_asset_is_a_usage_error(ws: Workspace) -> None:
    server = AssetServer()
    try:
        server.files["/a/tool"] = script("asset")
        new_key(ws, "cosign")
        ws.write({"t": {"platforms": {host(): {"url": server.url("/a/tool")}},
                        "verify": {"cosign-key": "cosign.pub"}}})
        assert_error(ws.lock(), 2, "tool t", "carries no cosign signature")
        assert not ws.lockfile.exists()
    finally:
        server.close()


def test_missing_extra_is_exit_2_naming_it(ws: Workspace, monkeypatch: pytest.MonkeyPatch,
                                            registry: ocitest.Registry,
                                            unique_repo: str) -> None:
    new_key(ws, "cosign")
    push_tool(registry, unique_repo, "1", script("x"), ws)
    ws.write({"t": {"ref": registry.ref(unique_repo, "1"), "path": "tool",
                    "verify": {"cosign-key": "cosign.pub"}}})
    monkeypatch.setitem(sys.modules, "cryptography", None)  # as if not installed
    assert_error(ws.lock(), 2, "tool t", "pip install 'toolfetch[sign]'")


def test_sigstore_bundle_found_by_the_referrers_tag_is_bound_to_the_manifest(
        registry: ocitest.Registry, unique_repo: str, ws: Workspace) -> None:
    """Distribution 2.8 has no referrers API: the bundle is found under `sha256-<hex>`.
    A real bundle for another artifact verifies cryptographically but names another digest."""
    manifest = push_tool(registry, unique_repo, "1", script("referred"), ws)
    bundle_type = "application/vnd.dev.sigstore.bundle.v0.3+json"
    bundle = Path(f"{MODELS}.sigstore").read_bytes()
    layer = ocitest.push_blob(registry, unique_repo, bundle, bundle_type)
    config = ocitest.push_blob(registry, unique_repo, b"{}", ocitest.OCI_EMPTY)
    referrer = {"schemaVersion": 2, "mediaType": ocitest.OCI_MANIFEST,
                "artifactType": bundle_type, "config": config, "layers": [layer],
                "subject": {"mediaType": ocitest.OCI_MANIFEST, "digest": manifest,
                            "size": 1}}
    ref_digest = ocitest.push_manifest(registry, unique_repo, "bundle", referrer)
    raw = ocitest.encode_json(referrer)
    index = ocitest.index_manifest([{"mediaType": ocitest.OCI_MANIFEST, "digest": ref_digest,
                                     "size": len(raw), "artifactType": bundle_type}])
    ocitest.push_manifest(registry, unique_repo, f"sha256-{manifest[7:]}", index)
    ws.write({"t": {"ref": registry.ref(unique_repo, "1"), "path": "tool",
                    "verify": {"sigstore": {"identity": MODELS_IDENTITY, "issuer": GITHUB}}}})
    assert_error(ws.lock(), 3, "tool t [*]", "digest mismatch",
                 f"sha256:{Digest.of_file(MODELS).hex}", manifest)


# ---- Sigstore bundles of HTTP assets -------------------------------------------------------


@pytest.fixture
def server() -> Iterator[AssetServer]:
    s = AssetServer()
    s.files["/r/models.tar.gz"] = MODELS.read_bytes()
    s.files["/r/models.tar.gz.sigstore"] = Path(f"{MODELS}.sigstore").read_bytes()
    yield s
    s.close()


def asset_tool(server: AssetServer, identity: str = MODELS_IDENTITY,
               issuer: str = GITHUB) -> dict[str, Any]:
    return {"models": {
        "platforms": {host(): {"url": server.url("/r/models.tar.gz"),
                               "path": "pypi_attestation_models-0.0.4a2/PKG-INFO"}},
        "verify": {"bundle": "{url}.sigstore",
                   "sigstore": {"identity": identity, "issuer": issuer}}}}


def test_asset_with_its_real_bundle_locks_and_records_the_signer(
        server: AssetServer, ws: Workspace, cache_dir: Path) -> None:
    ws.write(asset_tool(server))
    assert_ok(ws.lock())
    bundle = Digest.of_bytes(Path(f"{MODELS}.sigstore").read_bytes())
    assert ws.entry("models", host())["verified"] == {
        "kind": "sigstore", "signature": str(bundle), "identity": MODELS_IDENTITY,
        "issuer": GITHUB}
    # lock --check, lock and verify re-check from the cache: the server is not asked again.
    asked = len(server.requests())
    del server.files["/r/models.tar.gz.sigstore"]
    assert_ok(ws.lock("--check"))
    r = tf_main("verify", "--lockfile", ws.lockfile, "--offline")
    assert_ok(r)
    assert r.stdout == (f"models {host()}: signed by {MODELS_IDENTITY} (issuer {GITHUB}), "
                        f"signature {bundle}\n")
    assert len(server.requests()) == asked


def test_identity_regexp(server: AssetServer, ws: Workspace) -> None:
    tools = asset_tool(server)
    tools["models"]["verify"]["sigstore"] = {
        "identity-regexp": r"https://github\.com/trailofbits/[^/]+/\.github/workflows/.*",
        "issuer": GITHUB}
    ws.write(tools)
    assert_ok(ws.lock())
    assert ws.entry("models", host())["verified"]["identity"] == MODELS_IDENTITY


def test_asset_bundle_by_another_identity_fails(server: AssetServer, ws: Workspace) -> None:
    evil = MODELS_IDENTITY.replace("trailofbits", "mallory")
    ws.write(asset_tool(server, identity=evil))
    assert_error(ws.lock(), 3, f"tool models [{host()}]", "does not verify", evil)
    assert not ws.lockfile.exists()


def test_tampered_asset_fails(server: AssetServer, ws: Workspace) -> None:
    """Other bytes at the asset's URL (a valid archive with the same path, as an attacker
    would serve): the real bundle names the real file's sha256."""
    server.files["/r/models.tar.gz"] = ocitest.targz(
        {"pypi_attestation_models-0.0.4a2/PKG-INFO": (b"Name: evil\n", 0o644)})
    ws.write(asset_tool(server))
    assert_error(ws.lock(), 3, f"tool models [{host()}]", "digest mismatch")
    assert not ws.lockfile.exists()


def test_missing_bundle_fails(server: AssetServer, ws: Workspace) -> None:
    del server.files["/r/models.tar.gz.sigstore"]
    ws.write(asset_tool(server))
    assert_error(ws.lock(), 3, f"tool models [{host()}]", "bundle missing",
                 "models.tar.gz.sigstore")
    assert not ws.lockfile.exists()


def test_changed_identity_relocks_and_lock_check_says_out_of_date(
        server: AssetServer, ws: Workspace) -> None:
    ws.write(asset_tool(server))
    assert_ok(ws.lock())
    before = ws.lockfile.read_bytes()
    ws.write(asset_tool(server, identity=MODELS_IDENTITY.replace("v0.0.4a2", "v9")))
    assert_error(ws.lock("--check"), 3, "does not verify")
    assert ws.lockfile.read_bytes() == before
    ws.write({"models": {k: v for k, v in asset_tool(server)["models"].items()
                         if k != "verify"}})
    assert_error(ws.lock("--check"), 7, "models")  # the record would go
    assert_ok(ws.lock())
    assert "verified" not in ws.entry("models", host())


def test_cosign_signature_in_an_oci_layout(ws: Workspace) -> None:
    """`oci-layout:` sources carry `.sig` tags too (as `ref.name` annotations)."""
    from toolfetch.oci.layout import LayoutSource
    from toolfetch.oci.manifest import Descriptor

    key = new_key(ws, "cosign")
    (ws.root / "tool").write_bytes(script("in-a-layout"))
    r = tf_main("push", f"oci-layout:{ws.root / 'layout'}:1", ws.root / "tool")
    assert_ok(r)
    manifest = r.stdout.strip().splitlines()[-1]
    ws.write({"t": {"ref": "oci-layout:layout:1", "path": "tool",
                    "verify": {"cosign-key": "cosign.pub"}}})
    assert_error(ws.lock(), 3, "tool t [*]", "unsigned")
    payload = json.dumps({"critical": {"identity": {"docker-reference": "x"},
                                       "image": {"docker-manifest-digest": manifest},
                                       "type": "cosign container image signature"},
                          "optional": None}).encode()
    signature = base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
    layout = LayoutSource(ws.root / "layout")
    layer = ocitest.descriptor(payload, SIMPLE_SIGNING,
                               {"dev.cosignproject.cosign/signature": signature})
    config = ocitest.descriptor(b"{}", ocitest.OCI_EMPTY)
    sig = ocitest.encode_json({"schemaVersion": 2, "mediaType": ocitest.OCI_MANIFEST,
                               "config": config, "layers": [layer]})
    for blob in (payload, b"{}", sig):
        layout.put_bytes(blob)
    layout.tag(Descriptor(ocitest.OCI_MANIFEST, Digest.of_bytes(sig), len(sig)),
               f"sha256-{manifest[7:]}.sig")
    assert_ok(ws.lock())
    assert ws.entry("t", "*")["verified"] == {
        "kind": "cosign-key", "signature": str(Digest.of_bytes(sig)), "key": fingerprint(key)}


def test_verify_without_a_record_is_out_of_date_and_names_unpolicied_tools(
        server: AssetServer, ws: Workspace, registry: ocitest.Registry,
        unique_repo: str) -> None:
    push_tool(registry, unique_repo, "1", script("plain"), ws)
    plain = {"ref": registry.ref(unique_repo, "1"), "path": "tool"}
    unverified = {k: v for k, v in asset_tool(server)["models"].items() if k != "verify"}
    ws.write({"models": unverified, "plain": plain})
    assert_ok(ws.lock())
    ws.write({**asset_tool(server), "plain": plain})
    assert_error(tf_main("verify", "--lockfile", ws.lockfile), 7, f"tool models [{host()}]",
                 "records no signature", MODELS_IDENTITY, "run `toolfetch lock`")
    assert_ok(ws.lock())
    r = tf_main("verify", "--lockfile", ws.lockfile)
    assert_ok(r)
    assert r.stdout.splitlines()[1] == "plain *: no verify policy"
    assert_error(tf_main("verify", "--lockfile", ws.lockfile, "nope"), 4, "no tool 'nope'")


def test_oversized_bundle_is_refused(server: AssetServer, ws: Workspace) -> None:
    """Hostile: a bundle URL serving endless bytes is cut at the cap, not read into memory."""
    server.files["/r/models.tar.gz.sigstore"] = b" " * (1024 * 1024 + 1)
    ws.write(asset_tool(server))
    assert_error(ws.lock(), 3, f"tool models [{host()}]", "more than 1048576 bytes")


def test_oversized_signature_payload_is_refused(ws: Workspace) -> None:
    """Hostile: a `.sig` manifest whose payload layer claims megabytes is refused unread (an
    OCI layout: Distribution would refuse a manifest naming a blob it lacks)."""
    from toolfetch.oci.layout import LayoutSource
    from toolfetch.oci.manifest import Descriptor

    new_key(ws, "cosign")
    (ws.root / "tool").write_bytes(script("big-payload"))
    r = tf_main("push", f"oci-layout:{ws.root / 'layout'}:1", ws.root / "tool")
    assert_ok(r)
    manifest = r.stdout.strip().splitlines()[-1]
    layout = LayoutSource(ws.root / "layout")
    layer = {"mediaType": SIMPLE_SIGNING, "digest": "sha256:" + "ab" * 32, "size": 10 << 20,
             "annotations": {"dev.cosignproject.cosign/signature": "AAAA"}}
    sig = ocitest.encode_json({"schemaVersion": 2, "mediaType": ocitest.OCI_MANIFEST,
                               "config": ocitest.descriptor(b"{}", ocitest.OCI_EMPTY),
                               "layers": [layer]})
    layout.put_bytes(sig)
    layout.tag(Descriptor(ocitest.OCI_MANIFEST, Digest.of_bytes(sig), len(sig)),
               f"sha256-{manifest[7:]}.sig")
    ws.write({"t": {"ref": "oci-layout:layout:1", "path": "tool",
                    "verify": {"cosign-key": "cosign.pub"}}})
    assert_error(ws.lock(), 3, "tool t [*]", "more than 65536")


def test_signature_of_the_index_covers_its_platforms(
        registry: ocitest.Registry, unique_repo: str, ws: Workspace) -> None:
    """cosign signs a multi-platform image's index (unless --recursive): each platform is
    verified through the index that lists its manifest."""
    key = new_key(ws, "cosign")
    for arch in ("amd", "arm"):
        (ws.root / arch).mkdir()
        (ws.root / arch / "tool").write_bytes(script(arch))
    r = tf_main("publish", registry.ref(unique_repo, "1"), "--platform",
                f"linux/amd64={ws.root / 'amd' / 'tool'}", "--platform",
                f"linux/arm64={ws.root / 'arm' / 'tool'}")
    assert_ok(r)
    index = r.stdout.strip().splitlines()[-1]
    sig = cosign_sign(registry, unique_repo, index, key)
    ws.write({"t": {"ref": registry.ref(unique_repo, "1"), "path": "tool",
                    "platforms": ["linux/amd64", "linux/arm64"],
                    "verify": {"cosign-key": "cosign.pub"}}})
    assert_ok(ws.lock())
    for key_ in ("linux/amd64", "linux/arm64"):
        entry = ws.entry("t", key_)
        assert entry["index"] == index
        assert entry["verified"] == {"kind": "cosign-key", "signature": sig,
                                     "key": fingerprint(key), "subject": "index"}
    Lockfile.load(ws.lockfile)
    assert_ok(tf_main("verify", "--lockfile", ws.lockfile, "--offline"))
    # Hostile: a lockfile pairing the signed index with a manifest it does not list.
    data = json.loads(ws.lockfile.read_text())
    data["tools"]["t"]["platforms"]["linux/arm64"]["manifest"] = f"sha256:{'1' * 64}"
    ws.lockfile.write_text(json.dumps(data))
    assert_error(tf_main("verify", "--lockfile", ws.lockfile, "--offline"), 3,
                 "tool t [linux/arm64]", f"the signed index {index} does not list manifest")


def test_trusted_root_file_relative_to_tools_yaml(server: AssetServer, ws: Workspace) -> None:
    """A bundle from Sigstore's staging instance verifies only under the staging root."""
    whl = DATA / "pypi-attestations" / "rfc8785-0.1.2-py3-none-any.whl"
    server.files["/r/rfc8785.whl"] = whl.read_bytes()
    server.files["/r/rfc8785.whl.sigstore"] = Path(f"{whl}.sigstore").read_bytes()
    (ws.root / "roots").mkdir()
    (ws.root / "roots" / "staging.json").write_bytes(
        (DATA / "sigstore-staging-trusted-root.json").read_bytes())
    policy: dict[str, Any] = {"bundle": "{url}.sigstore", "sigstore": {
        "identity": "william@yossarian.net", "issuer": "https://github.com/login/oauth"}}
    tool = {"platforms": {host(): {"url": server.url("/r/rfc8785.whl"), "format": "zip",
                                   "path": "rfc8785/__init__.py"}}}
    ws.write({"rfc8785": {**tool, "verify": policy}})
    assert_error(ws.lock(), 3, "tool rfc8785", "does not verify")  # the production root
    ws.write({"rfc8785": {**tool, "verify": {**policy, "trusted-root": "roots/staging.json"}}})
    assert_ok(ws.lock())
    assert ws.entry("rfc8785", host())["verified"]["identity"] == "william@yossarian.net"
    ws.write({"rfc8785": {**tool, "verify": {**policy, "trusted-root": "roots/missing.json"}}})
    assert_error(ws.lock(), 2, "trusted-root", "missing.json", "not found")


def test_bundle_beside_a_later_url_when_the_first_has_none(server: AssetServer,
                                                           ws: Workspace) -> None:
    server.files["/mirror/models.tar.gz"] = MODELS.read_bytes()
    server.files["/mirror/models.tar.gz.sigstore"] = server.files.pop(
        "/r/models.tar.gz.sigstore")
    tools = asset_tool(server)
    entry = tools["models"]["platforms"][host()]
    entry["urls"] = [entry.pop("url"), server.url("/mirror/models.tar.gz")]
    ws.write(tools)
    assert_ok(ws.lock())
    assert ws.entry("models", host())["verified"]["identity"] == MODELS_IDENTITY


def test_lock_without_a_policy_imports_no_signing_code(server: AssetServer,
                                                       ws: Workspace) -> None:
    import subprocess

    ws.write({"models": {k: v for k, v in asset_tool(server)["models"].items()
                         if k != "verify"}})
    probe = ("import sys; from toolfetch import cli; rc = cli.main(sys.argv[1:]); "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in "
             "('sigstore', 'sigstore_models', 'cryptography') or m.startswith("
             "('toolfetch.lock.signature', 'toolfetch.lock.cosign', "
             "'toolfetch.lock.sigstore')))); sys.exit(rc)")
    p = subprocess.run([sys.executable, "-c", probe, "lock", "--lockfile", str(ws.lockfile)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[-1] == "[]"
