"""Distribution-spec v1.1 client for one repository: manifests, blobs, tags. HTTP only.

Blobs are written to a caller-supplied file object while being hashed; there is no second
pass. An interrupted blob resumes with ``Range`` against the registry URL (redirects are
re-resolved) and only a matching ``206`` is accepted; anything else restarts the stream.
"""

from __future__ import annotations

import logging
from typing import BinaryIO

import requests

from toolfetch.core.digest import Digest, StreamVerifier
from toolfetch.core.errors import (
    AuthError,
    IntegrityError,
    NotFoundError,
    ToolfetchError,
    UnreachableError,
)
from toolfetch.core.progress import ByteReport
from toolfetch.oci.manifest import (
    ACCEPT,
    MAX_MANIFEST_BYTES,
    OCI_INDEX,
    Descriptor,
    Manifest,
    verify_manifest_bytes,
)
from toolfetch.registry.blobstream import stream_verified
from toolfetch.registry.bodies import ACCEPT_ENCODING, read_capped
from toolfetch.registry.transport import Transport

log = logging.getLogger("toolfetch")

MAX_TAG_PAGES = 100
MAX_TAG_PAGE_BYTES = 4 * 1024 * 1024
MAX_TAG_BYTES = 16 * 1024 * 1024
MAX_REFERRER_PAGES = 20


class RegistryClient:
    """Operations on ``host/repository`` through a shared :class:`Transport`."""

    def __init__(self, transport: Transport, host: str, repository: str) -> None:
        self.transport = transport
        self.host = host
        self.repository = repository

    def __str__(self) -> str:
        return f"{self.host}/{self.repository}"

    @property
    def pull_scope(self) -> str:
        return f"repository:{self.repository}:pull"

    def error_for(self, resp: requests.Response, what: str, suffix: str = "") -> ToolfetchError:
        """The error an unexpected answer to a request of ``what`` means (by its status);
        ``suffix`` ends its message (the registry's own error text, say)."""
        status = resp.status_code
        if status == 404:
            return NotFoundError(f"{what}: not found (HTTP 404){suffix}")
        if status in (401, 403):
            tried = self.transport.describe_auth(self.host)
            return AuthError(f"{what}: access denied by {self.host} (HTTP {status}); tried "
                             f"{tried}{suffix}")
        if status >= 500 or status in (408, 429):
            return UnreachableError(f"{what}: registry {self.host} answered HTTP {status}"
                                    f"{suffix}")
        return ToolfetchError(f"{what}: unexpected HTTP {status} from {self.host}{suffix}")

    # -- manifests ------------------------------------------------------------------------
    def get_manifest(self, target: str, expected: Digest | None = None) -> Manifest:
        """GET a manifest by tag or digest; bytes are verified against ``expected``."""
        what = f"manifest {self}:{target}" if expected is None else f"manifest {self}@{target}"
        resp = self.transport.request(
            "GET", self.host, f"/v2/{self.repository}/manifests/{target}",
            scope=self.pull_scope, headers={"Accept": ACCEPT, "Accept-Encoding": ACCEPT_ENCODING},
            stream=True, what=what,
        )
        with resp:
            if resp.status_code != 200:
                raise self.error_for(resp, what)
            raw = read_capped(resp, MAX_MANIFEST_BYTES, what, self.transport.policy)
            media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
        if expected is None and target.startswith("sha256:"):
            expected = Digest.parse(target)
        verify_manifest_bytes(raw, expected, what)
        return Manifest.parse(raw, media_type, what)

    def manifest_exists(self, target: str) -> Digest | None:
        what = f"manifest {self}:{target}"
        resp = self.transport.request(
            "HEAD", self.host, f"/v2/{self.repository}/manifests/{target}",
            scope=self.pull_scope, headers={"Accept": ACCEPT}, what=what,
        )
        with resp:
            if resp.status_code == 404:
                return None
            if resp.status_code != 200:
                raise self.error_for(resp, what)
            advisory = resp.headers.get("Docker-Content-Digest")
        return Digest.parse(advisory) if advisory else None

    # -- blobs ----------------------------------------------------------------------------
    def fetch_blob(self, digest: Digest, size: int, sink: BinaryIO, what: str,
                   progress: ByteReport | None = None) -> None:
        """Stream a blob into ``sink`` (positioned at 0), verifying size and digest.

        An interrupted stream resumes with ``Range: bytes=N-`` against the registry URL (so
        redirects are resolved afresh); only a ``206`` whose ``Content-Range`` starts at N
        and ends at the declared size is appended, anything else restarts from byte 0. The
        digest is computed over the final bytes as one stream. A blob longer than its
        descriptor is an integrity failure; bytes the sink cannot take (``OSError``, e.g.
        ENOSPC) propagate unchanged.
        """
        path = f"/v2/{self.repository}/blobs/{digest}"

        def get(headers: dict[str, str]) -> requests.Response:
            return self.transport.request("GET", self.host, path, scope=self.pull_scope,
                                          headers=headers, stream=True, what=what)

        with StreamVerifier(digest, size, what) as verifier:
            stream_verified(get, lambda resp: self.error_for(resp, what), verifier, sink, progress,
                            self.transport.policy, self.host)

    def read_blob_head(self, digest: Digest, length: int = 512) -> bytes:
        """The first bytes of a blob (for format sniffing at lock time)."""
        what = f"blob {self}@{digest}"
        resp = self.transport.request(
            "GET", self.host, f"/v2/{self.repository}/blobs/{digest}", scope=self.pull_scope,
            headers={"Range": f"bytes=0-{length - 1}", "Accept-Encoding": "identity"},
            stream=True, what=what,
        )
        with resp:
            if resp.status_code not in (200, 206):
                raise self.error_for(resp, what)
            return bytes(resp.raw.read(length, decode_content=False))

    def blob_exists(self, digest: Digest) -> bool:
        what = f"blob {self}@{digest}"
        resp = self.transport.request("HEAD", self.host, f"/v2/{self.repository}/blobs/{digest}",
                                      scope=self.pull_scope, what=what)
        with resp:
            if resp.status_code == 404:
                return False
            if resp.status_code != 200:
                raise self.error_for(resp, what)
            return True

    # -- tags and referrers ---------------------------------------------------------------
    def list_tags(self) -> list[str]:
        """All tags, following same-origin ``Link`` pagination.

        Each page is read capped at :data:`MAX_TAG_PAGE_BYTES` (decoded), all pages together at
        :data:`MAX_TAG_BYTES` and :data:`MAX_TAG_PAGES`: a hostile registry cannot make a
        command hold more than that in memory.
        """
        what = f"tags of {self}"
        pages = self._pages(f"/v2/{self.repository}/tags/list", what, {}, MAX_TAG_PAGES,
                            MAX_TAG_PAGE_BYTES, MAX_TAG_BYTES)
        assert pages is not None
        return [tag for body in pages for tag in _tag_page(body, what)]

    def referrers(self, digest: Digest, artifact_type: str | None = None) -> list[Descriptor]:
        """What refers to the manifest ``digest`` (its ``subject``): the OCI 1.1 referrers
        API (``Link`` pagination), else, on registries without it (Distribution 2.8), the
        index under the fallback tag ``sha256-<hex>``; [] when neither has any. Filtered by
        ``artifact_type`` here too: a registry may ignore the filter."""
        what = f"referrers of {self}@{digest}"
        pages = self._pages(f"/v2/{self.repository}/referrers/{digest}", what,
                            {"Accept": OCI_INDEX}, MAX_REFERRER_PAGES, MAX_MANIFEST_BYTES,
                            MAX_REFERRER_PAGES * MAX_MANIFEST_BYTES, unsupported=(404, 405, 501))
        if pages is not None:
            entries = [d for body in pages
                       for d in Manifest.parse(body, OCI_INDEX, what).manifests(what)]
        else:
            try:
                index = self.get_manifest(digest.tag)
            except NotFoundError:
                return []
            entries = index.manifests(what) if index.is_index else []
        return [d for d in entries if artifact_type is None or d.artifact_type == artifact_type]

    def _pages(self, path: str, what: str, headers: dict[str, str], max_pages: int,
               page_bytes: int, total_bytes: int, unsupported: tuple[int, ...] = ()
               ) -> list[bytes] | None:
        """The bodies of a paginated GET, following same-origin ``Link: <…>; rel="next"``;
        None when the first page answers a status in ``unsupported`` (no such API)."""
        base = self.transport.base_url(self.host)
        bodies: list[bytes] = []
        total = 0
        for _ in range(max_pages):
            resp = self.transport.request(
                "GET", self.host, path, scope=self.pull_scope, stream=True, what=what,
                headers={**headers, "Accept-Encoding": ACCEPT_ENCODING})
            with resp:
                if resp.status_code in unsupported and not bodies:
                    return None
                if resp.status_code != 200:
                    raise self.error_for(resp, what)
                body = read_capped(resp, min(page_bytes, total_bytes - total), what,
                                   self.transport.policy)
                link = resp.links.get("next", {}).get("url")
            total += len(body)
            bodies.append(body)
            if not link:
                return bodies
            next_url = requests.compat.urljoin(base + path, link)
            if not next_url.startswith(base + "/"):
                raise IntegrityError(f"{what}: pagination link leaves {base}: {link}")
            path = next_url[len(base):]
        raise IntegrityError(f"{what}: more than {max_pages} pages")


def _tag_page(body: bytes, what: str) -> list[str]:
    import json

    try:
        page = json.loads(body)
        tags = page.get("tags") or []
        if not isinstance(tags, list):
            raise ValueError("tags is not a list")
    except (ValueError, AttributeError, RecursionError) as e:
        raise IntegrityError(f"{what}: malformed tag list: {e}") from e
    return [str(t) for t in tags]
