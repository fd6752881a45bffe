"""A small Docker token server (distribution "token" auth) for tests, on loopback.

It issues RS256 JWTs whose header carries the signing certificate (``x5c``); the registry
trusts that self-signed certificate through ``rootcertbundle``. Start a registry with
``make_registry(token_auth=ts.registry_auth(tmp_path))``.

Access policy: a user in ``users`` (GET with Basic auth, or POST ``grant_type=password``) or
holding one of ``identity_tokens`` (POST ``grant_type=refresh_token``) gets pull+push on
every repository; anyone (anonymous included) gets pull on repositories under one of the
``public`` prefixes; otherwise the token grants nothing (the registry then answers 401
``insufficient_scope``). Every request is recorded in :attr:`TokenServer.requests`.

Knobs for fault tests: ``expires_in``, ``refuse_post`` (405 for POST, as registries without
the OAuth2 endpoint), ``oversize`` (a response larger than any sane token), ``fail_next``
(status codes to answer next, one per request).
"""

from __future__ import annotations

import base64
import datetime
import functools
import json
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from loopback import LoopbackHTTPServer

SERVICE = "toolfetch-tests"
ISSUER = "toolfetch-tests-issuer"


@functools.lru_cache(maxsize=1)
def signing_material() -> tuple[Any, bytes, bytes]:
    """(RSA private key, certificate DER, certificate PEM), made once per test session."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "toolfetch test token issuer")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .sign(key, hashes.SHA256())
    )
    return (key, cert.public_bytes(serialization.Encoding.DER),
            cert.public_bytes(serialization.Encoding.PEM))


@dataclass
class TokenRequest:
    method: str
    user: str | None  # None: anonymous
    scopes: list[str]
    grant_type: str | None = None
    status: int = 200


@dataclass
class TokenServer:
    users: Mapping[str, str] = field(default_factory=lambda: {"alice": "wonder land"})
    identity_tokens: Mapping[str, str] = field(default_factory=dict)  # token -> user
    public: Sequence[str] = ("public/",)
    expires_in: int | None = 300
    refuse_post: bool = False
    oversize: bool = False
    fail_next: list[int] = field(default_factory=list)
    requests: list[TokenRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        server = LoopbackHTTPServer(_Handler)
        server.token_server = self  # type: ignore[attr-defined]
        self._server = server
        self.port = int(server.server_address[1])
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> TokenServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def count(self, user: str | bool | None = True) -> int:
        """Requests so far (``user=True``: all; None: anonymous ones; a name: that user's)."""
        with self._lock:
            return sum(1 for r in self.requests if user is True or r.user == user)

    def registry_auth(self, directory: Path) -> dict[str, str]:
        """The ``auth: token:`` section for a Distribution that trusts this server."""
        bundle = directory / f"token-ca-{self.port}.pem"
        directory.mkdir(parents=True, exist_ok=True)
        bundle.write_bytes(signing_material()[2])
        return {"realm": self.realm, "service": SERVICE, "issuer": ISSUER,
                "rootcertbundle": str(bundle)}

    # -- policy -------------------------------------------------------------------------
    def access(self, user: str | None, scopes: Sequence[str]) -> list[dict[str, Any]]:
        out = []
        for scope in scopes:
            parts = scope.split(":")
            if len(parts) < 3 or parts[0] != "repository":
                continue
            name, actions = ":".join(parts[1:-1]), parts[-1].split(",")
            if user is not None:
                granted = [a for a in actions if a in ("pull", "push", "delete", "*")]
            elif any(name.startswith(p) for p in self.public):
                granted = [a for a in actions if a == "pull"]
            else:
                granted = []
            out.append({"type": "repository", "name": name, "actions": granted})
        return out

    def mint(self, user: str | None, scopes: Sequence[str], lifetime: int = 300) -> str:
        """A JWT the registry accepts (also usable directly as a ``registrytoken``)."""
        import jwt

        key, der, _ = signing_material()
        now = int(time.time())
        claims = {
            "iss": ISSUER, "sub": user or "", "aud": SERVICE, "iat": now, "nbf": now - 60,
            "exp": now + max(lifetime, 60),
            "jti": base64.urlsafe_b64encode(os.urandom(12)).decode(),
            "access": self.access(user, scopes),
        }
        headers = {"x5c": [base64.b64encode(der).decode()]}
        return str(jwt.encode(claims, key, algorithm="RS256", headers=headers))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LoopbackHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    @property
    def ts(self) -> TokenServer:
        return self.server.token_server  # type: ignore[attr-defined,no-any-return]

    def _send(self, status: int, body: bytes, ctype: str = "application/json",
              headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.close_connection = True

    def _record(self, req: TokenRequest) -> None:
        with self.ts._lock:
            self.ts.requests.append(req)

    def _basic_user(self) -> tuple[bool, str | None]:
        """(credentials acceptable, user): no header is anonymous, wrong ones are refused."""
        header = self.headers.get("Authorization", "")
        if not header:
            return True, None
        if not header.lower().startswith("basic "):
            return False, None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False, None
        if user == "<token>" and password in self.ts.identity_tokens:
            return True, self.ts.identity_tokens[password]
        if self.ts.users.get(user) == password and password:
            return True, user
        return False, user

    def _issue(self, req: TokenRequest, ok: bool) -> None:
        ts = self.ts
        if ts.fail_next:
            with ts._lock:
                req.status = ts.fail_next.pop(0) if ts.fail_next else 200
            if req.status != 200:
                self._record(req)
                self._send(req.status, b'{"errors":[{"code":"UNAVAILABLE"}]}',
                           headers={"Retry-After": "0"})
                return
        if not ok:
            req.status = 401
            self._record(req)
            self._send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}',
                       headers={"WWW-Authenticate": 'Basic realm="toolfetch-tests"'})
            return
        self._record(req)
        if ts.oversize:
            self._send(200, b'{"token": "' + b"x" * (2 << 20) + b'"}')
            return
        token = ts.mint(req.user, req.scopes, ts.expires_in or 60)
        body: dict[str, Any] = {"token": token, "access_token": token,
                                "issued_at": datetime.datetime.now(datetime.timezone.utc)
                                .isoformat()}
        if ts.expires_in is not None:
            body["expires_in"] = ts.expires_in
        self._send(200, json.dumps(body).encode())

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path != "/token":
            self._send(404, b"{}")
            return
        query = parse_qs(url.query)
        scopes = [s for v in query.get("scope", []) for s in v.split(" ") if s]
        ok, user = self._basic_user()
        self._issue(TokenRequest("GET", user if ok else None, scopes), ok)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode())
        if self.ts.refuse_post:
            self._record(TokenRequest("POST", None, [], None, 405))
            self._send(405, b'{"errors":[{"code":"UNSUPPORTED"}]}')
            return
        grant = (form.get("grant_type") or [""])[0]
        scopes = [s for v in form.get("scope", []) for s in v.split(" ") if s]
        user: str | None = None
        ok = False
        if grant == "refresh_token":
            token = (form.get("refresh_token") or [""])[0]
            user = self.ts.identity_tokens.get(token)
            ok = user is not None
        elif grant == "password":
            name, password = (form.get("username") or [""])[0], (form.get("password") or [""])[0]
            ok = bool(password) and self.ts.users.get(name) == password
            user = name if ok else None
        req = TokenRequest("POST", user, scopes, grant)
        if not ok:
            req.status = 400
            self._record(req)
            self._send(400, b'{"error":"invalid_grant"}')
            return
        self._issue(req, True)
