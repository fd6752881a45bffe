"""``toolfetch login`` / ``logout``: docker-compatible credential storage.

``login REGISTRY -u USER --password-stdin`` checks the credentials against the registry
(``GET /v2/`` through the usual challenge flow, never falling back to anonymous access), then
stores them the way ``docker login`` does: with the credential helper ``config.json`` names
for the registry (``credHelpers[key]``, else ``credsStore``), else base64 ``user:password``
in ``auths[key]`` of ``$DOCKER_CONFIG/config.json`` (``~/.docker/config.json``), written
atomically with mode 0600 and every other setting kept. ``key`` is the registry host, or
``https://index.docker.io/v1/`` for Docker Hub. ``logout REGISTRY`` removes what ``login``
stored (every spelling of the key in ``auths``, and the helper's entry).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from toolfetch.core.errors import AuthError, LocalIOError, ToolfetchError, UsageError
from toolfetch.core.fs import atomic_write


def login_hosts(registry: str) -> tuple[str, str]:
    """(API host to contact, config key) for what the user typed."""
    from toolfetch.core.reference import DOCKER_HUB_API
    from toolfetch.registry.auth import config_key, is_docker_hub, normalize_host

    host = normalize_host(registry)
    if not host or any(c.isspace() for c in host) or "@" in host:
        raise UsageError(f"malformed registry {registry!r}: expected host[:port]")
    if is_docker_hub(host):
        return DOCKER_HUB_API, config_key(host)
    return host, config_key(host)


def _config_path() -> Path:
    from toolfetch.registry.auth import docker_config_dir

    return docker_config_dir() / "config.json"


def _load_config(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, RecursionError) as e:  # nested past the parser's depth
        raise UsageError(f"cannot read {path}: {e}") from e
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a JSON object")
    return data


def _write_config(path: Path, data: dict[str, Any]) -> None:
    """Atomically, mode 0600 (it holds secrets), tab-indented as docker writes it."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(path, (json.dumps(data, indent="\t") + "\n").encode(), 0o600, fsync=True)
    except OSError as e:
        raise LocalIOError.of(e, f"cannot write {path}") from e


def _helper_for(config: dict[str, Any], key: str) -> str | None:
    """The helper reads use for ``key`` (registry.auth has docker's precedence)."""
    from toolfetch.registry.auth import credential_helper

    helper = credential_helper(config, key)
    return helper.program if helper is not None else None


def _check(host: str, username: str, password: str) -> None:
    from toolfetch.registry.auth import Credentials
    from toolfetch.registry.transport import Transport

    creds = Credentials(username=username, password=password, source="the login command")
    transport = Transport(credentials=lambda _host: creds, anonymous_fallback=False)
    what = f"login to {host}"
    try:
        resp = transport.request("GET", host, "/v2/", scope="", what=what)
        with resp:
            status = resp.status_code
    finally:
        transport.close()
    if status in (401, 403):
        raise AuthError(f"{what} failed: {host} rejected the credentials for user "
                        f"{username!r} (HTTP {status})")
    if status != 200:
        raise ToolfetchError(f"{what} failed: unexpected HTTP {status} from GET /v2/")


def login(registry: str, username: str, password: str) -> str:
    """Check the credentials against the registry, then store them; returns the config key."""
    from toolfetch.registry.auth import store_with_helper

    if not password:
        raise UsageError("login: empty password")
    host, key = login_hosts(registry)
    _check(host, username, password)
    path = _config_path()
    config = _load_config(path)
    helper = _helper_for(config, key)
    if helper is not None:
        store_with_helper(helper, key, username, password)
        if config.get("credsStore") == helper:
            auths = config.setdefault("auths", {})
            if isinstance(auths, dict):  # docker keeps an empty entry as a marker
                auths[key] = {}
                _write_config(path, config)
    else:
        auths = config.get("auths")
        if not isinstance(auths, dict):
            auths = config["auths"] = {}
        raw = f"{username}:{password}".encode()
        auths[key] = {"auth": base64.b64encode(raw).decode()}
        _write_config(path, config)
    return key


def logout(registry: str) -> tuple[str, bool]:
    """Remove what ``login`` stored; returns the config key and whether anything was there."""
    from toolfetch.registry.auth import erase_with_helper, matching_keys

    _, key = login_hosts(registry)
    path = _config_path()
    config = _load_config(path)
    removed = False
    helper = _helper_for(config, key)
    if helper is not None:
        removed = erase_with_helper(helper, key) or removed
    auths = config.get("auths")
    if isinstance(auths, dict):
        keys = matching_keys([str(k) for k in auths], key)
        for k in keys:
            del auths[k]
        if keys:
            removed = True
            _write_config(path, config)
    return key, removed
