"""Registry credentials and the bearer-token challenge flow.

Credentials are looked up, first match wins, in:

1. ``TOOLFETCH_REGISTRY_USERNAME`` + ``TOOLFETCH_REGISTRY_PASSWORD`` (or
   ``TOOLFETCH_REGISTRY_TOKEN``, an identity/refresh token) for the hosts listed in
   ``TOOLFETCH_REGISTRY_HOST`` (comma-separated; required so CI secrets never go to another
   registry). Explicit environment beats files, as CI users expect.
2. docker's ``config.json`` (``$DOCKER_CONFIG`` or ``~/.docker``): ``credHelpers[host]``, then
   ``credsStore``, then ``auths`` (keys with or without ``https://``; Docker Hub as
   ``https://index.docker.io/v1/``).
3. ``$REGISTRY_AUTH_FILE``, then podman's ``$XDG_RUNTIME_DIR/containers/auth.json`` and
   ``~/.config/containers/auth.json``.

Secrets never appear in messages or reprs.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from toolfetch.errors import AuthError, UsageError

log = logging.getLogger("toolfetch")

DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io",
                   "registry-1.docker.io")


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


def _host_keys(host: str) -> list[str]:
    if host in DOCKER_HUB_KEYS:
        return list(DOCKER_HUB_KEYS)
    return [host, f"https://{host}", f"http://{host}", f"https://{host}/v1/", f"https://{host}/v2/"]


def _read_json(path: Path) -> dict[str, object] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read credentials file {path}: {e}") from e
    return data if isinstance(data, dict) else None


def _from_auths(data: dict[str, object], host: str, source: str) -> Credentials | None:
    auths = data.get("auths")
    if not isinstance(auths, dict):
        return None
    for key in _host_keys(host):
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


def run_credential_helper(helper: str, host: str) -> Credentials | None:
    """``docker-credential-<helper> get``; a failing helper warns and yields nothing."""
    program = f"docker-credential-{helper}"
    try:
        proc = subprocess.run(
            [program, "get"], input=host.encode(), capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        log.warning("credential helper %s failed for %s (%s); continuing anonymously",
                    program, host, type(e).__name__)
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
    except (ValueError, KeyError, TypeError):
        log.warning("credential helper %s returned malformed output for %s", program, host)
        return None
    if user == "<token>":
        return Credentials(identity_token=secret, source=f"credential helper {program}")
    return Credentials(username=user, password=secret, source=f"credential helper {program}")


def _from_env(host: str) -> Credentials | None:
    hosts = [h.strip() for h in os.environ.get("TOOLFETCH_REGISTRY_HOST", "").split(",")]
    if host not in hosts and not (host in DOCKER_HUB_KEYS and "docker.io" in hosts):
        return None
    return Credentials(
        username=os.environ.get("TOOLFETCH_REGISTRY_USERNAME", ""),
        password=os.environ.get("TOOLFETCH_REGISTRY_PASSWORD", ""),
        identity_token=os.environ.get("TOOLFETCH_REGISTRY_TOKEN", ""),
        source="environment TOOLFETCH_REGISTRY_*",
    )


def find_credentials(host: str) -> Credentials | None:
    """Stored credentials for ``host`` (host[:port]), or None for anonymous access."""
    creds = _from_env(host)
    if creds:
        return creds
    config_path = docker_config_dir() / "config.json"
    config = _read_json(config_path)
    if config:
        helpers = config.get("credHelpers")
        if isinstance(helpers, dict):
            for key in _host_keys(host):
                if isinstance(helpers.get(key), str):
                    return run_credential_helper(str(helpers[key]), host)
        store = config.get("credsStore")
        if isinstance(store, str) and store:
            creds = run_credential_helper(store, host)
            if creds:
                return creds
        creds = _from_auths(config, host, str(config_path))
        if creds:
            return creds
    candidates = []
    if os.environ.get("REGISTRY_AUTH_FILE"):
        candidates.append(Path(os.environ["REGISTRY_AUTH_FILE"]))
    if os.environ.get("XDG_RUNTIME_DIR"):
        candidates.append(Path(os.environ["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    candidates.append(Path.home() / ".config" / "containers" / "auth.json")
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


def auth_failure(host: str, creds: Credentials | None, detail: str) -> AuthError:
    tried = f"credentials from {creds.source}" if creds else "anonymous access (no credentials)"
    return AuthError(f"authentication to {host} failed: {detail}; tried {tried}")
