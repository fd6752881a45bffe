"""Registry credentials and the bearer-token challenge flow.

Credentials are looked up, first match wins, in:

1. ``TOOLFETCH_REGISTRY_USERNAME`` + ``TOOLFETCH_REGISTRY_PASSWORD`` (or
   ``TOOLFETCH_REGISTRY_TOKEN``, an identity/refresh token) for the hosts listed in
   ``TOOLFETCH_REGISTRY_HOST`` (comma-separated; required so CI secrets never go to another
   registry). Explicit environment beats files, as CI users expect.
2. docker's ``config.json`` (``$DOCKER_CONFIG`` or ``~/.docker``): ``credHelpers[host]``, then
   ``credsStore``, then ``auths`` (keys with or without a scheme or path; Docker Hub as
   ``https://index.docker.io/v1/``).
3. ``$REGISTRY_AUTH_FILE``, then podman's ``$XDG_RUNTIME_DIR/containers/auth.json`` and
   ``$XDG_CONFIG_HOME/containers/auth.json`` (``~/.config/containers/auth.json``).

A credential helper that fails is warned about and skipped (anonymous access). Secrets never
appear in messages or reprs. See docs/auth.md.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from toolfetch.core.errors import AuthError, UsageError

log = logging.getLogger("toolfetch")

DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io",
                   "registry-1.docker.io")
ENV_HOST = "TOOLFETCH_REGISTRY_HOST"
ENV_USERNAME = "TOOLFETCH_REGISTRY_USERNAME"
ENV_PASSWORD = "TOOLFETCH_REGISTRY_PASSWORD"
ENV_TOKEN = "TOOLFETCH_REGISTRY_TOKEN"
HELPER_TIMEOUT = 30.0


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)
    registry_token: str = field(default="", repr=False)
    source: str = ""

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, source={self.source!r}, secret=<redacted>)"

    @property
    def has_basic(self) -> bool:
        return bool(self.username and self.password)


@dataclass(frozen=True)
class Challenge:
    scheme: str
    params: dict[str, str]

    @classmethod
    def parse_all(cls, header: str) -> list[Challenge]:
        """Parse a WWW-Authenticate header with one or more challenges."""
        challenges: list[Challenge] = []
        token = re.compile(
            r'\s*([A-Za-z][A-Za-z0-9_-]*)(?:\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*))?\s*(,|$)'
        )
        pos = 0
        current: Challenge | None = None
        while pos < len(header):
            m = re.compile(r"\s*([A-Za-z][A-Za-z0-9_-]*)\s+(?=[A-Za-z][A-Za-z0-9_-]*\s*=)").match(
                header, pos
            )
            if m:  # "Bearer realm=..." starts a challenge
                current = Challenge(m.group(1).lower(), {})
                challenges.append(current)
                pos = m.end()
                continue
            m = token.match(header, pos)
            if not m or m.end() == pos:
                break
            name, value = m.group(1), m.group(2)
            if value is None:  # a bare scheme such as "Basic"
                current = Challenge(name.lower(), {})
                challenges.append(current)
            elif current is not None:
                if value.startswith('"'):
                    value = re.sub(r"\\(.)", r"\1", value[1:-1])
                current.params[name.lower()] = value
            pos = m.end()
        return challenges


def docker_config_dir() -> Path:
    env = os.environ.get("DOCKER_CONFIG")
    return Path(env) if env else Path.home() / ".docker"


def is_docker_hub(host: str) -> bool:
    return normalize_host(host) in DOCKER_HUB_KEYS


def normalize_host(key: str) -> str:
    """A config key or registry argument as docker compares them: no scheme, no path."""
    key = key.strip()
    for scheme in ("https://", "http://"):
        if key.lower().startswith(scheme):
            key = key[len(scheme):]
            break
    return key.split("/", 1)[0].lower()


def config_key(host: str) -> str:
    """The key docker writes for ``host`` in ``auths`` (and passes to helpers)."""
    return DOCKER_HUB_KEYS[0] if is_docker_hub(host) else normalize_host(host)


def matching_keys(keys: list[str], host: str) -> list[str]:
    """Keys of a config mapping that name ``host``: exact spellings first, then normalised."""
    wanted = {normalize_host(host)}
    if is_docker_hub(host):
        wanted = {normalize_host(k) for k in DOCKER_HUB_KEYS}
    exact = [k for k in (host, config_key(host), f"https://{host}") if k in keys]
    rest = [k for k in keys if k not in exact and normalize_host(k) in wanted]
    return list(dict.fromkeys(exact + rest))


def _read_json(path: Path) -> dict[str, object] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError) as e:  # nested past the parser's depth
        raise UsageError(f"cannot read credentials file {path}: {e}") from e
    return data if isinstance(data, dict) else None


def _from_auths(data: dict[str, object], host: str, source: str) -> Credentials | None:
    auths = data.get("auths")
    if not isinstance(auths, dict):
        return None
    for key in matching_keys([str(k) for k in auths], host):
        entry = auths.get(key)
        if not isinstance(entry, dict):
            continue
        user, password = str(entry.get("username", "")), str(entry.get("password", ""))
        if entry.get("auth"):
            try:
                decoded = base64.b64decode(str(entry["auth"])).decode("utf-8")
            except ValueError as e:
                raise UsageError(
                    f"{source}: auths[{key!r}].auth is not base64 user:password"
                ) from e
            user, _, password = decoded.partition(":")
        creds = Credentials(
            username=user,
            password=password,
            identity_token=str(entry.get("identitytoken", "")),
            registry_token=str(entry.get("registrytoken", "")),
            source=f"{source} auths[{key!r}]",
        )
        if creds.has_basic or creds.identity_token or creds.registry_token:
            return creds
    return None


def _helper_program(helper: str) -> str:
    return f"docker-credential-{helper}"


def _call_helper(helper: str, action: str, payload: bytes,
                 host: str) -> subprocess.CompletedProcess[bytes] | None:
    program = _helper_program(helper)
    try:
        return subprocess.run([program, action], input=payload, capture_output=True,
                              timeout=HELPER_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        reason = "not found on PATH" if isinstance(e, FileNotFoundError) else type(e).__name__
        log.warning("credential helper %s %s failed for %s (%s)", program, action, host, reason)
        return None


def run_credential_helper(helper: str, host: str) -> Credentials | None:
    """``docker-credential-<helper> get``; a failing helper warns and yields nothing."""
    program = _helper_program(helper)
    proc = _call_helper(helper, "get", config_key(host).encode()
                        if is_docker_hub(host) else host.encode(), host)
    if proc is None:
        log.warning("continuing without credentials for %s", host)
        return None
    if proc.returncode != 0:
        out = proc.stdout.decode(errors="replace").strip()
        if "credentials not found" not in out.lower():
            log.warning("credential helper %s failed for %s (exit %d); continuing anonymously",
                        program, host, proc.returncode)
        return None
    try:
        data = json.loads(proc.stdout)
        user, secret = str(data["Username"]), str(data["Secret"])
    except (ValueError, KeyError, TypeError, RecursionError):
        log.warning("credential helper %s returned malformed output for %s; continuing "
                    "anonymously", program, host)
        return None
    if not secret:
        return None
    source = f"credential helper {program}"
    if user == "<token>":  # docker's convention: the secret is an identity (refresh) token
        return Credentials(identity_token=secret, source=source)
    return Credentials(username=user, password=secret, source=source)


def store_with_helper(helper: str, server: str, username: str, secret: str) -> None:
    """``docker-credential-<helper> store`` (as ``docker login`` with a helper)."""
    payload = json.dumps({"ServerURL": server, "Username": username, "Secret": secret})
    proc = _call_helper(helper, "store", payload.encode(), server)
    if proc is None or proc.returncode != 0:
        detail = "" if proc is None else f" (exit {proc.returncode})"
        raise AuthError(f"credential helper {_helper_program(helper)} could not store the "
                        f"credentials for {server}{detail}")


def erase_with_helper(helper: str, server: str) -> bool:
    """``docker-credential-<helper> erase``; False when it had nothing or failed."""
    proc = _call_helper(helper, "erase", server.encode(), server)
    return proc is not None and proc.returncode == 0


def _from_env(host: str) -> Credentials | None:
    hosts = [h.strip() for h in os.environ.get(ENV_HOST, "").split(",") if h.strip()]
    wanted = {normalize_host(h) for h in hosts}
    if normalize_host(host) not in wanted and not (
        is_docker_hub(host) and any(is_docker_hub(h) for h in hosts)
    ):
        return None
    creds = Credentials(
        username=os.environ.get(ENV_USERNAME, ""),
        password=os.environ.get(ENV_PASSWORD, ""),
        identity_token=os.environ.get(ENV_TOKEN, ""),
        source=f"environment ({ENV_HOST}, {ENV_USERNAME}/{ENV_PASSWORD}/{ENV_TOKEN})",
    )
    return creds if creds.has_basic or creds.identity_token else None


@dataclass(frozen=True)
class ConfiguredHelper:
    """The credential helper a docker ``config.json`` names for a registry."""

    program: str  # the name after docker-credential-
    per_host: bool  # from credHelpers: its answer is final, else credsStore (auths next)


def credential_helper(config: Mapping[str, object], host: str) -> ConfiguredHelper | None:
    """Docker's precedence, the one copy of it (reads here, ``login``/``logout`` in ops):
    ``credHelpers`` under any spelling of ``host``, else ``credsStore``, else None."""
    helpers = config.get("credHelpers")
    if isinstance(helpers, dict):
        for key in matching_keys([str(k) for k in helpers], host):
            if isinstance(helpers.get(key), str) and helpers[key]:
                return ConfiguredHelper(str(helpers[key]), per_host=True)
    store = config.get("credsStore")
    return ConfiguredHelper(store, per_host=False) if isinstance(store, str) and store else None


def find_credentials(host: str) -> Credentials | None:
    """Stored credentials for ``host`` (host[:port]), or None for anonymous access."""
    creds = _from_env(host)
    if creds:
        return creds
    config_path = docker_config_dir() / "config.json"
    config = _read_json(config_path)
    if config:
        helper = credential_helper(config, host)
        if helper is not None:
            creds = run_credential_helper(helper.program, host)
            if creds or helper.per_host:
                return creds
        creds = _from_auths(config, host, str(config_path))
        if creds:
            return creds
    candidates = []
    if os.environ.get("REGISTRY_AUTH_FILE"):
        candidates.append(Path(os.environ["REGISTRY_AUTH_FILE"]))
    if os.environ.get("XDG_RUNTIME_DIR"):
        candidates.append(Path(os.environ["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    xdg_config = os.environ.get("XDG_CONFIG_HOME")
    candidates.append((Path(xdg_config) if xdg_config else Path.home() / ".config")
                      / "containers" / "auth.json")
    for path in candidates:
        data = _read_json(path)
        if data:
            creds = _from_auths(data, host, str(path))
            if creds:
                return creds
    return None


def basic_header(creds: Credentials) -> str:
    raw = f"{creds.username}:{creds.password}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def describe_attempt(creds: Credentials | None, rejected: str | None = None) -> str:
    """What was tried, for messages: never a secret, only where credentials came from."""
    if creds is not None:
        return f"credentials from {creds.source}"
    if rejected:
        return f"credentials from {rejected} (rejected), then anonymous access"
    return "anonymous access (no stored credentials; see `toolfetch login` or docs/auth.md)"


def auth_failure(host: str, creds: Credentials | None, detail: str,
                 rejected: str | None = None) -> AuthError:
    tried = describe_attempt(creds, rejected)
    return AuthError(f"authentication to {host} failed: {detail}; tried {tried}")
