"""``RegistryClient.referrers``: the OCI 1.1 referrers API with ``Link`` pagination, its
artifact-type filter, and the ``sha256-<hex>`` tag fallback where the API is missing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import ocitest
import pytest
from loopback import QuietHandler

from toolfetch.core.digest import Digest
from toolfetch.core.errors import IntegrityError
from toolfetch.registry.client import RegistryClient
from toolfetch.registry.transport import Transport

SUBJECT = Digest.of_bytes(b"subject")
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"


def entry(n: int, artifact_type: str) -> dict[str, Any]:
    return {"mediaType": ocitest.OCI_MANIFEST, "digest": str(Digest.of_bytes(b"%d" % n)),
            "size": n, "artifactType": artifact_type}


PAGES = {"": ([entry(1, BUNDLE), entry(2, "application/spdx+json")], "2"),
         "2": ([entry(3, BUNDLE)], None)}
FALLBACK = ocitest.index_manifest([entry(4, BUNDLE)])


class _Registry(QuietHandler):
    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None,
              content_type: str = ocitest.OCI_INDEX) -> None:
        self.send(status, body, headers, content_type)

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        port = self.server.server_address[1]
        repo, _, rest = path.removeprefix("/v2/").partition("/")
        if path == "/v2/":
            self._send(200, b"{}", content_type="application/json")
        elif repo == "paged" and rest.startswith("referrers/"):
            manifests, nxt = PAGES[query.removeprefix("page=")]
            link = {"Link": f'</v2/paged/{rest}?page={nxt}>; rel="next"'} if nxt else {}
            body = {"schemaVersion": 2, "mediaType": ocitest.OCI_INDEX, "manifests": manifests}
            self._send(200, json.dumps(body).encode(), link)
        elif repo == "evil" and rest.startswith("referrers/"):
            link = {"Link": f'<http://localhost:{port}/v2/evil/{rest}?x=1>; rel="next"'}
            self._send(200, json.dumps(ocitest.index_manifest([])).encode(), link)
        elif repo == "old" and rest == f"manifests/sha256-{SUBJECT.hex}":
            self._send(200, ocitest.encode_json(FALLBACK))
        else:  # Distribution 2.8: no referrers route
            self._send(404, b'{"errors": [{"code": "NOT_FOUND"}]}', content_type="text/plain")


@pytest.fixture
def host() -> Iterator[str]:
    with ocitest.loopback_server(_Registry) as h:
        yield h


def digests(descriptors: list[Any]) -> list[str]:
    return [str(d.digest) for d in descriptors]


def test_referrers_api_follows_pages_and_filters(host: str) -> None:
    client = RegistryClient(Transport(), host, "paged")
    assert digests(client.referrers(SUBJECT)) == [e["digest"] for e in
                                                  PAGES[""][0] + PAGES["2"][0]]
    assert digests(client.referrers(SUBJECT, BUNDLE)) == [PAGES[""][0][0]["digest"],
                                                          PAGES["2"][0][0]["digest"]]


def test_no_referrers_api_falls_back_to_the_tag(host: str) -> None:
    client = RegistryClient(Transport(), host, "old")
    assert digests(client.referrers(SUBJECT, BUNDLE)) == [entry(4, BUNDLE)["digest"]]
    assert client.referrers(Digest.of_bytes(b"nobody refers to me")) == []


def test_a_pagination_link_to_another_origin_is_refused(host: str) -> None:
    with pytest.raises(IntegrityError, match="pagination link leaves"):
        RegistryClient(Transport(), host, "evil").referrers(SUBJECT)
