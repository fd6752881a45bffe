"""The token endpoint of the bearer challenge flow: requests, retries, response parsing.

Credentials go as Basic auth on the GET flow, or as an OAuth2 refresh token (``POST``,
falling back to ``GET`` where the endpoint refuses it); a ``registrytoken`` is used as is.
Responses are capped at 1 MiB; nothing secret ends up in a message.

:class:`TokenEndpoint` gets what it needs and nothing more (a session, the retry policy, a
counter), and the credentials as an argument of each request: the transport that owns the
token cache never shows it its fields (as oras-go's ``auth.Client`` and its credential
function).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from toolfetch.core.errors import AuthError, IntegrityError, UnreachableError
from toolfetch.core.urls import shown_url
from toolfetch.registry.auth import Credentials, auth_failure, basic_header
from toolfetch.registry.bodies import ACCEPT_ENCODING, read_capped
from toolfetch.registry.retry import RetryPolicy, attempts_text, is_retry_status
from toolfetch.registry.session import Http

log = logging.getLogger("toolfetch")

MAX_TOKEN_RESPONSE = 1 << 20
DEFAULT_TOKEN_LIFETIME = 60.0


@dataclass(frozen=True)
class TokenEndpoint:
    """Requests tokens from a registry's realm, with retries; thread-safe."""

    session: Http
    policy: RetryPolicy
    on_request: Callable[[], None] = lambda: None  # counts requests (for -v and tests)

    def request(self, realm: str, service: str, scopes: frozenset[str],
                creds: Credentials | None, host: str, rejected: str | None = None
                ) -> tuple[str, float]:
        """(token, seconds it lives) for ``scopes``; ``rejected`` names credentials that
        failed before (for the message)."""
        return _request_token(self, realm, service, scopes, creds, host, rejected)


def _token_call(t: TokenEndpoint, method: str, realm: str, **kw: Any) -> requests.Response:
    """One token-endpoint request with the usual retries (no redirects followed)."""
    kw["headers"] = {"Accept-Encoding": ACCEPT_ENCODING, **(kw.get("headers") or {})}
    shown = shown_url(realm)

    def send() -> requests.Response:
        t.on_request()
        return t.session.request(method, realm, timeout=t.policy.timeout,
                                 allow_redirects=False, stream=True, **kw)

    resp = t.policy.send(send, f"token endpoint {shown}")
    if is_retry_status(resp.status_code):
        resp.close()
        raise UnreachableError(f"token endpoint {shown} answered HTTP {resp.status_code} "
                               f"after {attempts_text(t.policy.attempts)}")
    return resp


def _request_token(t: TokenEndpoint, realm: str, service: str, scopes: frozenset[str],
                   creds: Credentials | None, host: str, rejected: str | None
                   ) -> tuple[str, float]:
    scope_list = sorted(s for s in scopes if s)
    if creds and creds.registry_token:
        return creds.registry_token, 3600.0
    if creds and creds.identity_token:
        form = {"grant_type": "refresh_token", "refresh_token": creds.identity_token,
                "service": service, "client_id": "toolfetch"}
        if scope_list:
            form["scope"] = " ".join(scope_list)
        resp = _token_call(t, "POST", realm, data=form)
        if resp.status_code not in (401, 404, 405):
            return parse_token_answer(t, resp, realm, creds, host, rejected)
        # Registries without the OAuth2 POST endpoint: the GET flow with the token as
        # the password (containerd does the same).
        log.debug("token endpoint %s refused POST (HTTP %d); using GET",
                  shown_url(realm), resp.status_code)
        resp.close()
    params: list[tuple[str, str]] = [("service", service)] if service else []
    params += [("scope", s) for s in scope_list]
    headers = {}
    if creds and creds.has_basic:
        headers["Authorization"] = basic_header(creds)
    elif creds and creds.identity_token:
        headers["Authorization"] = basic_header(
            Credentials(username=creds.username or "<token>", password=creds.identity_token))
    resp = _token_call(t, "GET", realm, params=params, headers=headers)
    return parse_token_answer(t, resp, realm, creds, host, rejected)


def parse_token_answer(t: TokenEndpoint, resp: requests.Response, realm: str,
                       creds: Credentials | None, host: str, rejected: str | None
                       ) -> tuple[str, float]:
    shown = shown_url(realm)
    with resp:
        if resp.status_code != 200:
            raise auth_failure(host, creds, f"token endpoint {shown} answered HTTP "
                               f"{resp.status_code}", rejected)
        try:
            body = read_capped(resp, MAX_TOKEN_RESPONSE, f"token endpoint {shown}", t.policy)
        except IntegrityError as e:
            raise AuthError(f"token endpoint {shown} sent an oversized or corrupt response "
                            f"(at most {MAX_TOKEN_RESPONSE} bytes)") from e
    try:
        data = json.loads(body)
        token = data.get("token") or data.get("access_token")
        expires_in = float(data.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
    except (ValueError, AttributeError, TypeError, RecursionError):
        raise AuthError(f"token endpoint {shown} sent malformed JSON") from None
    if not isinstance(token, str) or not token:
        raise AuthError(f"token endpoint {shown} sent no token")
    if not token.isascii() or not token.isprintable() or " " in token:
        raise AuthError(f"token endpoint {shown} sent a token that cannot be a bearer token "
                        "(white space or control characters); it is not shown")
    if expires_in <= 0 or expires_in != expires_in:
        expires_in = DEFAULT_TOKEN_LIFETIME
    return token, expires_in
