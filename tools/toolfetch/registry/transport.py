"""HTTP transport shared by every registry client of one command.

Owns the ``requests`` session, scheme selection (HTTPS, or plain HTTP for insecure registries),
the command's one :class:`~toolfetch.registry.retry.RetryPolicy` (read from the environment
once, here; every request, token request, asset and download of the command goes through
it), manual redirects (``Authorization`` never leaves the registry's origin), and the
bearer-token cache. Retries sit under authentication (as oras-go's retry transport under its
auth client): the token handshake is not a failed attempt. No filesystem access here.

Credentials are scoped to the origin they were configured for: a 401/403 from where the
registry redirected (object storage) is that origin's answer (exit 5 naming it), never read as
a challenge, so a token realm is trusted only when the registry itself named it.

Retries (which answers and failures, how often, how long: :mod:`toolfetch.registry.retry`,
docs/auth.md): 401/403/404 are never retried, except for the one re-authentication of the
token handshake.

Tokens: one per (host, scope set), fetched once even when several threads meet the same
challenge, reused by every request of the command until shortly before ``expires_in``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import requests

from toolfetch.core.errors import AuthError, ToolfetchError, UnreachableError
from toolfetch.registry.auth import (
    Challenge,
    Credentials,
    auth_failure,
    basic_header,
    describe_attempt,
    find_credentials,
)
from toolfetch.registry.retry import RetryPolicy
from toolfetch.registry.session import Http, is_insecure_host, listed_insecure, same_origin
from toolfetch.registry.tokens import TokenEndpoint

log = logging.getLogger("toolfetch")
CredentialsFor = Callable[[str], Credentials | None]
T = TypeVar("T")

MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class _Body:
    """Remembers where a request body starts so a retry can send it again."""

    def __init__(self, data: Any) -> None:
        self.data = data
        self.start: int | None = None
        self.replayable = data is None or isinstance(data, bytes | bytearray | str | dict |
                                                     list | tuple)
        if not self.replayable and hasattr(data, "seek") and hasattr(data, "tell"):
            try:
                self.start = int(data.tell())
                self.replayable = True
            except (OSError, ValueError):
                self.replayable = False

    def rewind(self) -> bool:
        if self.start is not None:
            try:
                self.data.seek(self.start)
            except (OSError, ValueError):
                return False
        return self.replayable


class Transport:
    """One per command; thread-safe for parallel fetches."""

    def __init__(self, policy: RetryPolicy | None = None, *,
                 credentials: CredentialsFor = find_credentials,
                 anonymous_fallback: bool = True) -> None:
        """``credentials(host)`` finds the credentials for a host (stored ones by default;
        ``login`` passes the ones it checks), called at most once per host and command;
        ``anonymous_fallback=False`` makes rejected credentials an error, never a retry."""
        self.policy = policy or RetryPolicy.from_env()
        self.session = Http()
        self.anonymous_fallback = anonymous_fallback
        self._find_credentials = credentials
        self.tokens = TokenEndpoint(self.session, self.policy, self._count_token_request)
        self._bases: dict[str, str] = {}
        self._tokens: dict[tuple[str, frozenset[str]], tuple[str, float]] = {}
        self._needed: dict[tuple[str, str], frozenset[str]] = {}
        self._basic: dict[str, str] = {}
        self._creds: dict[str, Credentials | None] = {}
        self.rejected: dict[str, str] = {}
        self.lock = threading.Lock()
        self._flights: dict[tuple[str, ...], threading.Lock] = {}
        self.token_requests = 0
        self.requests_made = 0
        self.clock: Callable[[], float] = time.monotonic  # token expiry; tests replace it

    def close(self) -> None:
        self.session.close()

    def _count_token_request(self) -> None:
        with self.lock:
            self.token_requests += 1

    @contextlib.contextmanager
    def _flight(self, *key: str) -> Iterator[None]:
        """Serialise work on ``key`` (token fetches, credential lookups) across threads."""
        with self.lock:
            lock = self._flights.setdefault(key, threading.Lock())
        with lock:
            yield

    # -- origin ---------------------------------------------------------------------------
    def _once(self, table: dict[str, T], kind: str, key: str, compute: Callable[[], T]) -> T:
        """``table[key]``, computed once per command: other threads wait for the first."""
        with self.lock:
            if key in table:
                return table[key]
        with self._flight(kind, key):
            with self.lock:
                if key in table:
                    return table[key]
            value = compute()
            with self.lock:
                table[key] = value
        return value

    def base_url(self, host: str) -> str:
        return self._once(self._bases, "base", host, lambda: self._probe_insecure(host)
                          if is_insecure_host(host) else f"https://{host}")

    def _probe_insecure(self, host: str) -> str:
        """As docker: HTTPS without verification, falling back to plain HTTP."""
        try:
            resp = self.session.request("GET", f"https://{host}/v2/", verify=False,
                                        timeout=(min(3.0, self.policy.connect_timeout),
                                                 min(10.0, self.policy.read_timeout)),
                                        allow_redirects=False)
            resp.close()
            return f"https://{host}"
        except requests.exceptions.RequestException:
            return f"http://{host}"

    def credentials(self, host: str) -> Credentials | None:
        """Credentials for ``host``, looked up once per command (a helper runs once)."""
        return self._once(self._creds, "creds", host, lambda: self._find_credentials(host))

    def describe_auth(self, host: str) -> str:
        """What was tried against ``host``, for error messages (never a secret)."""
        return describe_attempt(self.credentials(host), self.rejected.get(host))

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
        """Send with auth, retries and safe redirects; returns any final response.

        ``scope`` is the space-separated token scope the request needs. ``data`` is resent
        on a retry when it is bytes or a seekable file; other bodies are sent once.
        """
        url = self.base_url(host) + path
        what = what or f"{method} {url}"
        body = _Body(data)
        reauthenticated = False
        while True:
            hdrs = dict(headers or {})
            sent = self._authorization(host, scope)
            if sent:
                hdrs["Authorization"] = sent
            # Retries sit under authentication: the handshake is not a failed attempt.
            resp = self.policy.send(
                functools.partial(self.send_following, method, url, hdrs, stream, data, params,
                                  follow_redirects, what),
                f"{what}: registry {host}", body.rewind)
            status = resp.status_code
            if status in (401, 403) and not same_origin(url, resp.url):
                resp.close()
                raise _foreign_refusal(what, host, resp)
            challenge = resp.headers.get("WWW-Authenticate", "")
            if (status == 401 or (status == 403 and "insufficient_scope" in challenge)) and (
                not reauthenticated
            ):
                reauthenticated = True
                resp.close()
                self._handle_challenge(host, challenge, scope, sent, what)
                if not body.rewind():
                    raise ToolfetchError(f"{what}: cannot resend the request body after "
                                         "authenticating")
                continue
            return resp

    def send_following(self, method: str, url: str, headers: dict[str, str], stream: bool,
                       data: Any, params: Mapping[str, str] | None, follow: bool,
                       what: str, private: Iterable[str] = ()) -> requests.Response:
        """One request, following redirects (``follow``) to HTTP(S) only; ``Authorization``
        and the ``private`` headers (credentials) are dropped once a redirect leaves the first
        URL's origin. No retries."""
        origin = url
        secret = {"authorization", *(h.lower() for h in private)}
        for _ in range(MAX_REDIRECTS + 1):
            with self.lock:
                self.requests_made += 1
            resp = self.session.request(
                method, url, headers=headers, stream=stream, data=data, params=params,
                allow_redirects=False, timeout=self.policy.timeout,
            )
            params = None
            if not follow or resp.status_code not in REDIRECT_STATUSES:
                return resp
            location = resp.headers.get("Location")
            resp.close()
            if not location:
                return resp
            url = urljoin(url, location)
            if urlsplit(url).scheme not in ("http", "https"):
                raise UnreachableError(f"{what}: refusing a redirect to a non-HTTP URL "
                                       f"({urlsplit(url).scheme}:)")
            if not same_origin(origin, url):
                # Object storage redirects carry their own signature; never leak our token.
                headers = {k: v for k, v in headers.items() if k.lower() not in secret}
            if resp.status_code == 303 or (resp.status_code in (301, 302) and method == "POST"):
                method, data = "GET", None
        raise UnreachableError(f"{what}: more than {MAX_REDIRECTS} redirects")

    # -- auth -----------------------------------------------------------------------------
    def _needed_scopes(self, host: str, scope: str) -> frozenset[str]:
        return self._needed.get((host, scope)) or normalize_scopes(scope.split())

    def _authorization(self, host: str, scope: str) -> str | None:
        with self.lock:
            if host in self._basic:
                return self._basic[host]
            needed = self._needed_scopes(host, scope)
            now = self.clock()
            best: str | None = None
            for (h, scopes), (token, expiry) in self._tokens.items():
                if h == host and scopes_cover(scopes, needed) and now < expiry:
                    best = token  # the newest covering token wins
        return f"Bearer {best}" if best else None

    def _handle_challenge(self, host: str, header: str, scope: str, sent: str | None,
                          what: str) -> None:
        challenges = Challenge.parse_all(header)
        bearer = next((c for c in challenges if c.scheme == "bearer"), None)
        if bearer is not None:
            frozen = normalize_scopes([*self._needed_scopes(host, scope),
                                       *bearer.params.get("scope", "").split()])
            with self.lock:
                if frozen != normalize_scopes(scope.split()):  # e.g. insufficient_scope
                    self._needed[(host, scope)] = frozen
            with self._flight("token", host, *sorted(frozen)):
                current = self._authorization(host, scope)
                if current is not None and current != sent:
                    return  # another thread fetched a fresh token meanwhile
                self.fetch_token(host, bearer, frozen, what)
            return
        if any(c.scheme == "basic" for c in challenges):
            creds = self.credentials(host)
            if creds is None or not creds.has_basic:
                raise auth_failure(host, creds, f"{what} needs a username and password",
                                   self.rejected.get(host))
            value = basic_header(creds)
            with self.lock:
                current = self._basic.get(host)
                if current is not None and current != sent:
                    return
                if sent == value:
                    raise auth_failure(host, creds, f"{what}: credentials rejected (HTTP 401)")
                self._basic[host] = value
            return
        shown = ", ".join(sorted({c.scheme for c in challenges})) or "none"
        raise auth_failure(host, self.credentials(host),
                           f"{what}: HTTP 401 with no usable challenge (schemes: {shown})",
                           self.rejected.get(host))

    def fetch_token(self, host: str, challenge: Challenge, scopes: frozenset[str],
                    what: str) -> None:
        """A token for ``scopes`` from the realm ``challenge`` names (trusted only as the
        registry's own, never a downgrade to plain HTTP), remembered for the command."""
        realm = challenge.params.get("realm", "")
        parts = urlsplit(realm)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise AuthError(f"{what}: registry {host} sent a bearer challenge without a "
                            "usable realm")
        if (self.base_url(host).startswith("https://") and parts.scheme == "http"
                and parts.netloc not in listed_insecure()):
            raise AuthError(f"{what}: registry {host} is HTTPS but its token realm {realm} is "
                            "plain HTTP; refusing to send credentials or trust tokens over it "
                            "(list the realm host in TOOLFETCH_INSECURE_REGISTRIES to allow)")
        service = challenge.params.get("service", "")
        creds = self.credentials(host)
        try:
            token, expires_in = self.tokens.request(realm, service, scopes, creds, host)
        except AuthError as e:
            if creds is None or not self.anonymous_fallback:
                raise
            # Stale stored credentials are the most common failure on public pulls.
            log.warning("%s: the token server rejected the credentials from %s; retrying "
                        "anonymously", host, creds.source)
            log.debug("%s: %s", host, e)
            with self.lock:
                self._creds[host] = None
                self.rejected[host] = creds.source
            token, expires_in = self.tokens.request(realm, service, scopes, None, host,
                                                    creds.source)
        self.remember_token(host, scopes, token, expires_in)

    def remember_token(self, host: str, scopes: frozenset[str], token: str,
                       expires_in: float) -> None:
        """Use ``token`` for requests to ``host`` that ``scopes`` cover, until shortly before
        it expires (the newest covering token wins)."""
        now = self.clock()
        margin = min(10.0, expires_in * 0.1)
        with self.lock:
            self._tokens = {k: v for k, v in self._tokens.items() if v[1] > now}
            self._tokens[(host, scopes)] = (token, now + max(expires_in - margin, 0.0))


def _foreign_refusal(what: str, host: str, resp: requests.Response) -> AuthError:
    """A 401/403 from where ``host`` redirected: that origin's own answer, never a challenge
    of the registry (credentials stay with the origin they were configured for)."""
    parts = urlsplit(resp.url)
    origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    return AuthError(f"{what}: {origin}, where registry {host} redirected the request, "
                     f"answered HTTP {resp.status_code}; credentials for {host} are never sent "
                     "to another origin or to a token realm it names")


def _parse_scopes(scopes: Iterable[str]) -> dict[tuple[str, str], set[str]]:
    """``type:name:a,b`` scopes as {(type, name): actions}; the name may contain ``:``."""
    merged: dict[tuple[str, str], set[str]] = {}
    for scope in scopes:
        head, sep, actions = scope.rpartition(":")
        kind, _, name = head.partition(":")
        if not sep or not name:
            merged.setdefault((scope, ""), set())
            continue
        merged.setdefault((kind, name), set()).update(a for a in actions.split(",") if a)
    return merged


def normalize_scopes(scopes: Iterable[str]) -> frozenset[str]:
    """One canonical spelling per resource: ``repository:a:push,pull`` and
    ``repository:a:pull`` become ``repository:a:pull,push`` (registries reorder actions)."""
    out = set()
    for (kind, name), actions in _parse_scopes(scopes).items():
        out.add(f"{kind}:{name}:{','.join(sorted(actions))}" if name else kind)
    return frozenset(out)


def scopes_cover(have: Iterable[str], need: Iterable[str]) -> bool:
    """Whether a token granted ``have`` allows every action of ``need``."""
    granted = _parse_scopes(have)
    return all(actions <= granted.get(key, set()) and key in granted
               for key, actions in _parse_scopes(need).items())
