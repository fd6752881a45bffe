"""HTTP transport shared by every registry client of one command.

Owns the ``requests`` session, scheme selection (HTTPS, or plain HTTP for insecure registries),
retries with backoff, manual redirects (``Authorization`` never leaves the registry's origin),
and the bearer-token cache. No filesystem access here.
"""

from __future__ import annotations

import email.utils
import ipaddress
import json
import logging
import os
import random
import threading
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from toolfetch.auth import Challenge, Credentials, auth_failure, basic_header, find_credentials
from toolfetch.errors import AuthError, UnreachableError

log = logging.getLogger("toolfetch")

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_TOKEN_RESPONSE = 1 << 20
MAX_REDIRECTS = 5


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 10.0
    max_retry_after: float = 30.0
    connect_timeout: float = 10.0
    read_timeout: float = 60.0

    @classmethod
    def from_env(cls) -> RetryPolicy:
        """``TOOLFETCH_RETRIES``, ``TOOLFETCH_RETRY_DELAY`` and ``TOOLFETCH_TIMEOUT`` tune it."""
        default = cls()
        return cls(
            attempts=max(1, int(os.environ.get("TOOLFETCH_RETRIES", default.attempts))),
            base_delay=float(os.environ.get("TOOLFETCH_RETRY_DELAY", default.base_delay)),
            read_timeout=float(os.environ.get("TOOLFETCH_TIMEOUT", default.read_timeout)),
        )

    def delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            seconds = _parse_retry_after(retry_after)
            if seconds is not None:
                return min(max(seconds, 0.0), self.max_retry_after)
        backoff = min(self.base_delay * 2.0**attempt, self.max_delay)
        return backoff / 2 + random.uniform(0, backoff / 2)


def _parse_retry_after(value: str) -> float | None:
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - time.time()


def is_insecure_host(host: str) -> bool:
    """Loopback hosts and ``TOOLFETCH_INSECURE_REGISTRIES`` get TLS-unverified/plain HTTP."""
    listed = {h.strip() for h in os.environ.get("TOOLFETCH_INSECURE_REGISTRIES", "").split(",")}
    if host in listed:
        return True
    hostname = urlsplit(f"//{host}").hostname or host
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


class _NoNetrc(requests.auth.AuthBase):
    """A no-op auth: stops requests from injecting ~/.netrc credentials."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        return r


def same_origin(a: str, b: str) -> bool:
    sa, sb = urlsplit(a), urlsplit(b)
    return (sa.scheme, sa.hostname, sa.port) == (sb.scheme, sb.hostname, sb.port)


class Transport:
    """One per command; thread-safe enough for parallel fetches."""

    def __init__(self, policy: RetryPolicy | None = None) -> None:
        self.policy = policy or RetryPolicy.from_env()
        self.session = requests.Session()
        self.session.auth = _NoNetrc()
        self.session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        adapter = requests.adapters.HTTPAdapter(pool_connections=8, pool_maxsize=32, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers["User-Agent"] = "toolfetch/0.1"
        self._bases: dict[str, str] = {}
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}
        self._basic: dict[str, str] = {}
        self._creds: dict[str, Credentials | None] = {}
        self._anonymous_only: set[str] = set()
        self._lock = threading.Lock()
        self.token_requests = 0
        self.requests_made = 0

    # -- origin ---------------------------------------------------------------------------
    def base_url(self, host: str) -> str:
        with self._lock:
            if host in self._bases:
                return self._bases[host]
        base = self._probe_insecure(host) if is_insecure_host(host) else f"https://{host}"
        with self._lock:
            self._bases[host] = base
        return base

    def _probe_insecure(self, host: str) -> str:
        """As docker: HTTPS without verification, falling back to plain HTTP."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
            try:
                self.session.get(f"https://{host}/v2/", verify=False, timeout=(3, 10),
                                 allow_redirects=False)
                return f"https://{host}"
            except requests.exceptions.RequestException:
                return f"http://{host}"

    def credentials(self, host: str) -> Credentials | None:
        with self._lock:
            if host in self._creds:
                return self._creds[host]
        creds = None if host in self._anonymous_only else find_credentials(host)
        with self._lock:
            self._creds[host] = creds
        return creds

    # -- requests -------------------------------------------------------------------------
    def request(
        self,
        method: str,
        host: str,
        path: str,
        *,
        scope: str,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        data: Any = None,
        params: Mapping[str, str] | None = None,
        follow_redirects: bool = True,
        what: str = "",
    ) -> requests.Response:
        """Send with auth, retries and safe redirects; returns any final response."""
        url = self.base_url(host) + path
        what = what or f"{method} {url}"
        reauthenticated = False
        attempt = 0
        while True:
            hdrs = dict(headers or {})
            auth = self._authorization(host, scope)
            if auth:
                hdrs["Authorization"] = auth
            try:
                resp = self._send_following(method, url, hdrs, stream, data, params,
                                            follow_redirects)
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                    requests.exceptions.ChunkedEncodingError) as e:
                attempt += 1
                if attempt >= self.policy.attempts:
                    raise UnreachableError(
                        f"{what}: registry {host} unreachable after {attempt} attempts"
                    ) from e
                time.sleep(self.policy.delay(attempt, None))
                continue
            if resp.status_code == 401 and not reauthenticated:
                reauthenticated = True
                challenge_header = resp.headers.get("WWW-Authenticate", "")
                resp.close()
                self._handle_challenge(host, challenge_header, scope, what)
                continue
            if resp.status_code in RETRY_STATUSES and attempt + 1 < self.policy.attempts:
                attempt += 1
                delay = self.policy.delay(attempt, resp.headers.get("Retry-After"))
                log.debug("%s: HTTP %d, retrying in %.1fs", what, resp.status_code, delay)
                resp.close()
                time.sleep(delay)
                continue
            return resp

    def _send_following(self, method: str, url: str, headers: dict[str, str], stream: bool,
                        data: Any, params: Mapping[str, str] | None,
                        follow: bool) -> requests.Response:
        origin = url
        for _ in range(MAX_REDIRECTS + 1):
            self.requests_made += 1
            verify = not is_insecure_host(urlsplit(url).netloc)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
                resp = self.session.request(
                    method, url, headers=headers, stream=stream, data=data, params=params,
                    allow_redirects=False, verify=verify,
                    timeout=(self.policy.connect_timeout, self.policy.read_timeout),
                )
            params = None
            if not follow or resp.status_code not in (301, 302, 303, 307, 308):
                return resp
            location = resp.headers.get("Location")
            resp.close()
            if not location:
                return resp
            url = urljoin(url, location)
            if not same_origin(origin, url):
                # Object storage redirects carry their own signature; never leak our token.
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            if resp.status_code == 303:
                method, data = "GET", None
        raise UnreachableError(f"too many redirects from {origin}")

    # -- auth -----------------------------------------------------------------------------
    def _authorization(self, host: str, scope: str) -> str | None:
        with self._lock:
            if host in self._basic:
                return self._basic[host]
            wanted = set(scope.split())
            for (h, scopes), (token, expiry) in self._tokens.items():
                if h == host and wanted <= set(scopes.split()) and time.monotonic() < expiry:
                    return f"Bearer {token}"
        return None

    def _handle_challenge(self, host: str, header: str, scope: str, what: str) -> None:
        challenges = Challenge.parse_all(header)
        creds = self.credentials(host)
        bearer = next((c for c in challenges if c.scheme == "bearer"), None)
        if bearer is not None:
            scopes = set(scope.split())  # several scopes: a cross-repository mount
            if bearer.params.get("scope"):
                scopes.update(bearer.params["scope"].split(" "))
            self._fetch_token(host, bearer, " ".join(sorted(s for s in scopes if s)), creds)
            return
        if any(c.scheme == "basic" for c in challenges):
            if creds is None or not creds.has_basic:
                raise auth_failure(host, creds, f"{what} needs credentials")
            with self._lock:
                if self._basic.get(host) == basic_header(creds):
                    raise auth_failure(host, creds, f"{what}: credentials rejected")
                self._basic[host] = basic_header(creds)
            return
        raise auth_failure(host, creds, f"{what}: unsupported challenge {header[:100]!r}")

    def _fetch_token(self, host: str, challenge: Challenge, scopes: str,
                     creds: Credentials | None) -> None:
        realm = challenge.params.get("realm", "")
        base = self.base_url(host)
        if not realm.startswith(("https://", "http://")):
            raise AuthError(f"registry {host} sent a bearer challenge without a usable realm")
        if base.startswith("https://") and realm.startswith("http://") and not is_insecure_host(
            urlsplit(realm).netloc
        ):
            raise AuthError(f"registry {host} token realm {realm} downgrades https to http")
        service = challenge.params.get("service", "")
        try:
            token, expires_in = self._request_token(realm, service, scopes, creds)
        except AuthError:
            if creds is None:
                raise
            # Stale stored credentials are the most common failure on public pulls.
            log.warning("stored credentials for %s (%s) were rejected; retrying anonymously",
                        host, creds.source)
            token, expires_in = self._request_token(realm, service, scopes, None)
            with self._lock:
                self._creds[host] = None
        with self._lock:
            self._tokens[(host, scopes)] = (token, time.monotonic() + max(expires_in - 10, 5))

    def _request_token(self, realm: str, service: str, scopes: str,
                       creds: Credentials | None) -> tuple[str, float]:
        scope_list = [s for s in scopes.split(" ") if s]
        self.token_requests += 1
        timeout = (self.policy.connect_timeout, self.policy.read_timeout)
        host = urlsplit(realm).netloc
        verify = not is_insecure_host(host)
        if creds and creds.registry_token:
            return creds.registry_token, 300.0
        if creds and creds.identity_token:
            form = {"grant_type": "refresh_token", "refresh_token": creds.identity_token,
                    "service": service, "client_id": "toolfetch", "scope": " ".join(scope_list)}
            resp = self.session.post(realm, data=form, timeout=timeout, verify=verify,
                                     allow_redirects=False, stream=True)
            if resp.status_code not in (404, 405):
                return self._parse_token(resp, realm, creds)
            resp.close()
        params: list[tuple[str, str]] = [("service", service)] if service else []
        params += [("scope", s) for s in scope_list]
        headers = {}
        if creds and creds.has_basic:
            headers["Authorization"] = basic_header(creds)
        resp = self.session.get(realm, params=params, headers=headers, timeout=timeout,
                                verify=verify, allow_redirects=False, stream=True)
        return self._parse_token(resp, realm, creds)

    def _parse_token(self, resp: requests.Response, realm: str,
                     creds: Credentials | None) -> tuple[str, float]:
        with resp:
            if resp.status_code in (401, 403):
                raise auth_failure(urlsplit(realm).netloc, creds,
                                   f"token endpoint {realm} answered HTTP {resp.status_code}")
            if resp.status_code != 200:
                raise AuthError(f"token endpoint {realm} answered HTTP {resp.status_code}")
            body = resp.raw.read(MAX_TOKEN_RESPONSE + 1, decode_content=True)
        if len(body) > MAX_TOKEN_RESPONSE:
            raise AuthError(f"token endpoint {realm} sent an oversized response")
        try:
            data = json.loads(body)
            token = data.get("token") or data.get("access_token")
            expires_in = float(data.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError) as e:
            raise AuthError(f"token endpoint {realm} sent malformed JSON") from e
        if not isinstance(token, str) or not token:
            raise AuthError(f"token endpoint {realm} sent no token")
        return token, expires_in
