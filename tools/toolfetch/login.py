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

import argparse
import base64
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from toolfetch.errors import AuthError, ToolfetchError, UsageError

Command = Callable[[str, str], argparse.ArgumentParser]
log = logging.getLogger("toolfetch")


def register(command: Command) -> None:
    p = command("login", "check and store credentials for a registry (as docker login)")
    p.add_argument("registry", metavar="REGISTRY", help="host[:port] (docker.io for Docker Hub)")
    p.add_argument("-u", "--username", metavar="USER", required=True)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--password-stdin", action="store_true",
                   help="read the password (or token) from standard input")
    g.add_argument("-p", "--password", metavar="PASSWORD",
                   help="insecure: visible to other users and in shell history")
    p.set_defaults(run=cmd_login)

    p = command("logout", "remove stored credentials for a registry")
    p.add_argument("registry", metavar="REGISTRY")
    p.set_defaults(run=cmd_logout)


def _hosts(registry: str) -> tuple[str, str]:
    """(API host to contact, config key) for what the user typed."""
    from toolfetch.auth import config_key, is_docker_hub, normalize_host
    from toolfetch.reference import DOCKER_HUB_API

    host = normalize_host(registry)
    if not host or any(c.isspace() for c in host) or "@" in host:
        raise UsageError(f"malformed registry {registry!r}: expected host[:port]")
    if is_docker_hub(host):
        return DOCKER_HUB_API, config_key(host)
    return host, config_key(host)


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.read()
        password = password[:-1] if password.endswith("\n") else password
        password = password[:-1] if password.endswith("\r") else password
    elif args.password is not None:
        log.warning("using --password on the command line is insecure; use --password-stdin")
        password = args.password
    elif sys.stdin.isatty():
        import getpass

        password = getpass.getpass("Password: ")
    else:
        raise UsageError("login: give the password with --password-stdin")
    if not password:
        raise UsageError("login: empty password")
    return password


def _config_path() -> Path:
    from toolfetch.auth import docker_config_dir

    return docker_config_dir() / "config.json"


def _load_config(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read {path}: {e}") from e
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a JSON object")
    return data


def _write_config(path: Path, data: dict[str, Any]) -> None:
    """Atomically, mode 0600 (it holds secrets), tab-indented as docker writes it."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".config.json.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(json.dumps(data, indent="\t") + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as e:
        raise ToolfetchError(f"cannot write {path}: {e.strerror or e}") from None


def _helper_for(config: dict[str, Any], key: str) -> str | None:
    helpers = config.get("credHelpers")
    if isinstance(helpers, dict) and isinstance(helpers.get(key), str) and helpers[key]:
        return str(helpers[key])
    store = config.get("credsStore")
    return store if isinstance(store, str) and store else None


def _check(host: str, username: str, password: str) -> None:
    from toolfetch.auth import Credentials
    from toolfetch.transport import Transport

    creds = Credentials(username=username, password=password, source="the login command")
    transport = Transport(credentials={host: creds}, anonymous_fallback=False)
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


def cmd_login(args: argparse.Namespace) -> int:
    from toolfetch.auth import store_with_helper

    host, key = _hosts(args.registry)
    password = _read_password(args)
    _check(host, args.username, password)
    path = _config_path()
    config = _load_config(path)
    helper = _helper_for(config, key)
    if helper is not None:
        store_with_helper(helper, key, args.username, password)
        if config.get("credsStore") == helper:
            auths = config.setdefault("auths", {})
            if isinstance(auths, dict):  # docker keeps an empty entry as a marker
                auths[key] = {}
                _write_config(path, config)
    else:
        auths = config.get("auths")
        if not isinstance(auths, dict):
            auths = config["auths"] = {}
        raw = f"{args.username}:{password}".encode()
        auths[key] = {"auth": base64.b64encode(raw).decode()}
        _write_config(path, config)
    print("Login Succeeded")
    return 0


def cmd_logout(args: argparse.Namespace) -> int:
    from toolfetch.auth import erase_with_helper, matching_keys

    _, key = _hosts(args.registry)
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
    if removed:
        print(f"Removing login credentials for {key}")
    else:
        print(f"Not logged in to {key}")
    return 0
