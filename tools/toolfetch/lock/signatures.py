"""Trust at lock time: check each pinned platform of a tool with a ``verify:`` policy.

``lock`` calls :func:`verify_tools` after every resolution and before the lockfile is
written: a platform whose signature does not verify fails the whole lock (exit 3, naming the
tool, platform, what was checked and why) and nothing is written. What verified is recorded
in the lockfile (:class:`~toolfetch.lock.verified.Verified`) and the signature's bytes are
kept in the cache as blobs by sha256, so a later ``lock``, ``lock --check`` or ``toolfetch
verify`` checks the same pin again from the cache, without the network; only a pin that
changed (or a cache that lost the blobs, or a cached signature the policy no longer accepts)
looks for signatures again. ``fetch`` never looks: the digests already pin the bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

from toolfetch.cache.store import Cache
from toolfetch.core.digest import Digest
from toolfetch.core.errors import (
    IntegrityError,
    OutOfDateError,
    ToolfetchError,
    UnreachableError,
    UsageError,
    raise_all,
)
from toolfetch.core.reference import parse_any
from toolfetch.lock.config import Config, VerifyPolicy
from toolfetch.lock.cosign import CosignKey, require, signature_layers
from toolfetch.lock.lockfile import LockedPlatform, LockedTool, Lockfile
from toolfetch.lock.signature_fetch import (
    Blob,
    CosignSignatures,
    cosign_tag,
    fetch_bundle_url,
    fetch_cosign,
    fetch_referred_bundles,
)
from toolfetch.lock.sigstore_bundles import MAX_BUNDLE_BYTES, verify_bundle
from toolfetch.lock.verified import Verified
from toolfetch.oci.manifest import Manifest
from toolfetch.registry.sources import ContentSource, SourceFactory


def describe(policy: VerifyPolicy) -> str:
    """What a policy checks, for messages."""
    if policy.cosign_key is not None:
        return f"cosign-key {policy.cosign_key}"
    who = (f"identity {policy.identity}" if policy.identity is not None
           else f"identity-regexp {policy.identity_regexp!r}")
    return f"sigstore {who}, issuer {policy.issuer}"


class _Checker:
    """One tool's policy, checked platform by platform (key loaded once)."""

    def __init__(self, name: str, policy: VerifyPolicy, base_dir: Path,
                 sources: SourceFactory, cache: Cache | None) -> None:
        self.name = name
        self.policy = policy
        self.base_dir = base_dir  # where the lockfile's relative oci-layout refs start
        self.sources = sources
        self.cache = cache
        what = f"tool {name}: verify"
        self.key: CosignKey | None = None
        if policy.cosign_key is not None:
            self.key = CosignKey.load(policy.cosign_key, what)
        else:
            require("sigstore", what)
            if policy.trusted_root is not None and not policy.trusted_root.is_file():
                raise UsageError(f"{what}: trusted-root {policy.trusted_root} not found")

    def check(self, key: str, entry: LockedPlatform, recorded: Verified | None) -> Verified:
        what = f"tool {self.name} [{key}]: verify {describe(self.policy)}"
        self._check_source(entry, what)
        if recorded is not None and recorded.kind == self.policy.kind:
            try:
                found = self._from_cache(entry, recorded, what)
            except IntegrityError:
                if self.sources.offline:
                    raise
                found = None  # e.g. a new key: the registry may hold newer signatures
            if found is not None:
                return found
        return self._fetched(entry, what)

    def _check_source(self, entry: LockedPlatform, what: str) -> None:
        """A policy the source cannot satisfy is a usage error (exit 2), not a failure."""
        if entry.is_asset and self.policy.cosign_key is not None:
            raise UsageError(f"{what}: an HTTP asset carries no cosign signature tag; use "
                             "`sigstore:` with `bundle:` (where its bundle is)")
        if entry.is_asset and self.policy.bundle is None:
            raise UsageError(f"{what}: an HTTP asset needs `bundle:` (where its Sigstore "
                             "bundle is, e.g. \"{url}.sigstore\")")
        if not entry.is_asset and self.policy.bundle is not None:
            raise UsageError(f"{what}: `bundle:` is for HTTP assets; an OCI tool's bundles "
                             "are found among its manifest's referrers")

    # -- from the cache ---------------------------------------------------------------------
    def _cached(self, digest: Digest) -> bytes | None:
        """A small cached blob, intact; None when absent, damaged (then it is looked for
        again) or larger than any signature (a lockfile may name any blob, e.g. a tool's)."""
        if self.cache is None:
            return None
        try:
            with open(self.cache.blob_path(digest), "rb") as f:
                data = f.read(MAX_BUNDLE_BYTES + 1)
        except OSError:
            return None
        if len(data) > MAX_BUNDLE_BYTES:
            return None
        return data if Digest.of_bytes(data) == digest else None

    def _from_cache(self, entry: LockedPlatform, recorded: Verified,
                    what: str) -> Verified | None:
        subjects = dict((via, subject) for subject, via in _subjects(entry))
        raw = self._cached(recorded.signature)
        if raw is None or recorded.subject not in subjects:
            return None
        subject = subjects[recorded.subject]
        if self.key is None:
            return self._sigstore(Blob(recorded.signature, raw), subject, recorded.subject,
                                  entry, what)
        sig = Manifest.parse(raw, None, what)  # its digest checked above, by _cached
        payloads = []
        for digest, _, _ in signature_layers(sig, what):
            data = self._cached(digest)
            if data is None:
                return None
            payloads.append(Blob(digest, data))
        return self._cosign(CosignSignatures(sig, tuple(payloads)), subject, recorded.subject,
                            entry, what)

    # -- from the network -------------------------------------------------------------------
    def _source_of(self, entry: LockedPlatform) -> list[tuple[str, ContentSource]]:
        return self.sources.sources(parse_any(entry.ref, self.base_dir), upstream_first=True)

    def _fetched(self, entry: LockedPlatform, what: str) -> Verified:
        if entry.is_asset:
            return self._sigstore(self._asset_bundle(entry, what), entry.layers[0].digest,
                                  None, entry, what)
        assert entry.manifest is not None
        reasons: list[str] = []
        for subject, via in _subjects(entry):
            for candidate in self._look(entry, subject, what):
                try:
                    if isinstance(candidate, CosignSignatures):
                        return self._cosign(candidate, subject, via, entry, what)
                    return self._sigstore(candidate, subject, via, entry, what)
                except IntegrityError as e:
                    reasons.append(e.message.removeprefix(f"{what}: "))
        if reasons:
            raise IntegrityError(f"{what}: {'; '.join(reasons)}")
        if self.key is not None:
            looked = " nor ".join(f"{cosign_tag(subject)} (for {via or 'manifest'} {subject})"
                                  for subject, via in _subjects(entry))
            raise IntegrityError(f"{what}: unsigned: no cosign signature tag {looked}")
        looked = " nor ".join(f"{via or 'manifest'} {subject}" for subject, via in
                              _subjects(entry))
        raise IntegrityError(f"{what}: unsigned: no Sigstore bundle among the referrers of "
                             f"{looked}")

    def _asset_bundle(self, entry: LockedPlatform, what: str) -> Blob:
        """The bundle beside the asset: for each of its URLs in order, the policy's
        ``bundle`` with ``{url}`` filled in, until one is served."""
        assert self.policy.bundle is not None
        urls = dict.fromkeys(self.policy.bundle.replace("{url}", u) for u in entry.urls)
        failures: list[ToolfetchError] = []
        for url in urls:
            try:
                return fetch_bundle_url(self.sources, url, what)
            except (IntegrityError, UnreachableError) as e:  # missing, too big, host down
                failures.append(e)
        raise failures[0]

    def _look(self, entry: LockedPlatform, subject: Digest,
              what: str) -> list[Blob | CosignSignatures]:
        """The signatures of ``subject`` the tool's sources hold, as the policy reads them."""
        def cosign(source: ContentSource) -> list[Blob | CosignSignatures]:
            found = fetch_cosign(source, subject, what)
            return [found] if found is not None else []

        def bundles(source: ContentSource) -> list[Blob | CosignSignatures]:
            return list(fetch_referred_bundles(source, subject, what))

        return self.sources.try_in_order(self._source_of(entry), what,
                                         cosign if self.key is not None else bundles)

    def _index_lists_manifest(self, entry: LockedPlatform, what: str) -> None:
        """A signature of the index vouches for a platform only through the index's list of
        manifests: check the index (from the cache, else its source) names this one."""
        assert entry.index is not None and entry.manifest is not None
        index = entry.index
        raw = self._cached(index)
        if raw is None:
            raw = self.sources.try_in_order(self._source_of(entry), what,
                                            lambda s: s.get_manifest(str(index), index).raw)
            self._keep([Blob(index, raw)])
        listed = {d.digest for d in Manifest.parse(raw, None, what).manifests(what)}
        if entry.manifest not in listed:
            raise IntegrityError(f"{what}: digest mismatch: the signed index {index} does not "
                                 f"list manifest {entry.manifest}")

    # -- verification -----------------------------------------------------------------------
    def _keep(self, blobs: list[Blob]) -> None:
        """Into the cache, for re-checks without the network (best effort: a read-only
        cache only means the next check fetches again)."""
        if self.cache is None:
            return
        for blob in blobs:
            def write(f: BinaryIO, data: bytes = blob.data) -> None:
                f.write(data)

            try:
                self.cache.ensure()
                self.cache.store_blob(blob.digest, write, len(blob.data))
            except ToolfetchError:
                return

    def _cosign(self, found: CosignSignatures, subject: Digest, via: str | None,
                entry: LockedPlatform, what: str) -> Verified:
        assert self.key is not None
        by_digest = {p.digest: p.data for p in found.payloads}
        reasons = []
        for digest, _, signature in signature_layers(found.manifest, what):
            try:
                self.key.verify(by_digest[digest], signature, subject, what)
            except IntegrityError as e:
                reasons.append(e.message.removeprefix(f"{what}: "))
                continue
            if via == "index":
                self._index_lists_manifest(entry, what)
            self._keep([Blob(found.manifest.digest, found.manifest.raw), *found.payloads])
            return Verified("cosign-key", found.manifest.digest, key=self.key.fingerprint,
                            subject=via)
        if not reasons:
            raise IntegrityError(f"{what}: unsigned: {cosign_tag(subject)} holds no "
                                 "simple-signing signature")
        raise IntegrityError(f"{what}: no signature verifies ({'; '.join(reasons)})")

    def _sigstore(self, bundle: Blob, subject: Digest, via: str | None, entry: LockedPlatform,
                  what: str) -> Verified:
        signer = verify_bundle(bundle.data, subject, self.policy, what)
        if via == "index":
            self._index_lists_manifest(entry, what)
        self._keep([bundle])
        return Verified("sigstore", bundle.digest, identity=signer.identity,
                        issuer=signer.issuer, subject=via)


def _subjects(entry: LockedPlatform) -> list[tuple[Digest, str | None]]:
    """What a signature of a platform may cover, in order: its manifest, else the index it
    was locked from (cosign signs a multi-platform image's index unless ``--recursive``); an
    asset's sha256."""
    if entry.manifest is None:
        return [(entry.layers[0].digest, None)]
    out: list[tuple[Digest, str | None]] = [(entry.manifest, None)]
    if entry.index is not None:
        out.append((entry.index, "index"))
    return out


def verify_tools(config: Config, lockfile_path: Path, resolved: Mapping[str, LockedTool],
                 sources: SourceFactory, cache: Cache | None,
                 old: Lockfile | None) -> dict[str, LockedTool]:
    """``resolved`` with each platform's ``verified`` record (none for tools without a
    policy). A record of ``old`` is re-checked from the cache while its pin is unchanged."""
    out: dict[str, LockedTool] = {}
    errors: list[ToolfetchError] = []
    for name, tool in resolved.items():
        policy = config.tools[name].verify
        if policy is None:
            out[name] = replace(tool, platforms={k: replace(e, verified=None)
                                                 for k, e in tool.platforms.items()})
            continue
        try:
            checker = _Checker(name, policy, lockfile_path.parent, sources, cache)
            old_tool = old.tools.get(name) if old is not None else None
            platforms = {}
            for key, entry in tool.platforms.items():
                before = old_tool.platforms.get(key) if old_tool is not None else None
                same_pin = before is not None and before.pin == entry.pin
                recorded = before.verified if same_pin and before is not None else None
                platforms[key] = replace(entry, verified=checker.check(key, entry, recorded))
            out[name] = replace(tool, platforms=platforms)
        except ToolfetchError as e:
            errors.append(e)
    raise_all(errors)
    return out


def verify_locked(config: Config, lockfile: Lockfile, names: list[str], sources: SourceFactory,
                  cache: Cache | None) -> list[tuple[str, str, Verified | None]]:
    """``toolfetch verify``: each named (default: every) locked tool's platforms checked
    against tools.yaml's policy again; (tool, platform, record), record None for a tool
    without a policy. A record that is missing or differs from the check is exit 7."""
    out: list[tuple[str, str, Verified | None]] = []
    errors: list[ToolfetchError] = []
    for name in names or list(lockfile.tools):
        tool = lockfile.tool(name)
        spec = config.tools.get(name)
        if spec is None or spec.verify is None:
            out += [(name, key, None) for key in sorted(tool.platforms)]
            continue
        try:
            checker = _Checker(name, spec.verify, lockfile.base_dir, sources, cache)
            for key, entry in sorted(tool.platforms.items()):
                found = checker.check(key, entry, entry.verified)
                if found != entry.verified:
                    raise OutOfDateError(f"tool {name} [{key}]: {lockfile.path} records "
                                         f"{_shown(entry.verified)}, but the check found "
                                         f"{_shown(found)}; run `toolfetch lock`")
                out.append((name, key, found))
        except ToolfetchError as e:
            errors.append(e)
    raise_all(errors)
    return out


def _shown(record: Verified | None) -> str:
    return "no signature" if record is None else f"{record.signer} ({record.signature})"
