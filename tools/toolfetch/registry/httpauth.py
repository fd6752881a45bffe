"""Credentials for HTTP release assets on private hosts: request headers per host.

Looked up once per host and command, in this order; the first that answers wins:

1. ``TOOLFETCH_CREDENTIAL_HELPER=PROGRAM``: a program speaking Bazel's credential-helper
   protocol (``bazel --credential_helper``), so one helper serves Bazel and toolfetch alike:
   ``PROGRAM get`` reads ``{"uri": "https://host/…"}`` on stdin and prints
   ``{"headers": {"Authorization": ["Bearer …"]}}``; every header it returns is sent.
2. ``TOOLFETCH_HTTP_AUTH_<HOST>=VALUE``: the ``Authorization`` header for that host, where
   ``<HOST>`` is the host name upper-cased with each character that is not a letter or a
   digit as ``_`` (``github.com`` → ``TOOLFETCH_HTTP_AUTH_GITHUB_COM``; a port is left out).
3. netrc (``$NETRC``, else ``~/.netrc``): ``machine HOST login L password P`` → Basic.

The headers go to the URL's own origin only: a redirect to another host (release pages
redirect to signed storage URLs) drops them (:meth:`Transport.send_following`). Messages
say where credentials came from, never what they are. A value that cannot be a header (a
line break in the variable, in the helper's output) is exit 2 naming its source, not its
value.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from toolfetch.core.errors import UsageError
from toolfetch.core.urls import check_header_value

log = logging.getLogger("toolfetch")
HELPER_ENV = "TOOLFETCH_CREDENTIAL_HELPER"
HOST_ENV_PREFIX = "TOOLFETCH_HTTP_AUTH_"
HELPER_TIMEOUT = 30.0


@dataclass(frozen=True)
class HostAuth:
    """What is sent to one host, and where it came from (for messages)."""

    headers: dict[str, str] = field(default_factory=dict, repr=False)  # secrets
    source: str = ""

    def describe(self) -> str:
        return f"credentials from {self.source}" if self.headers else "no credentials"


def host_env_var(host: str) -> str:
    return HOST_ENV_PREFIX + re.sub(r"[^A-Z0-9]", "_", host.upper())


class HttpAuth:
    """The credentials of each asset host, found once per command; thread-safe."""

    def __init__(self) -> None:
        self._found: dict[str, HostAuth] = {}
        self._lock = threading.Lock()

    def for_url(self, url: str) -> HostAuth:
        host = (urlsplit(url).hostname or "").lower()
        with self._lock:
            if host not in self._found:
                self._found[host] = find(url, host)
            return self._found[host]


def find(url: str, host: str) -> HostAuth:
    helper = os.environ.get(HELPER_ENV, "").strip()
    if helper:
        found = _from_helper(helper, url)
        if found is not None:
            return found
    var = host_env_var(host)
    value = os.environ.get(var, "").strip()
    if value:
        check_header_value(value, var)
        return HostAuth({"Authorization": value}, f"${var}")
    return _from_netrc(host) or HostAuth()


def _from_helper(helper: str, url: str) -> HostAuth | None:
    import subprocess

    try:
        proc = subprocess.run([helper, "get"], input=json.dumps({"uri": url}).encode(),
                              capture_output=True, timeout=HELPER_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        log.warning("credential helper %s failed for %s (%s); trying the next source",
                    helper, urlsplit(url).hostname, type(e).__name__)
        return None
    if proc.returncode != 0:
        log.warning("credential helper %s failed for %s (exit %d); trying the next source",
                    helper, urlsplit(url).hostname, proc.returncode)
        return None
    try:
        headers = json.loads(proc.stdout or b"{}").get("headers") or {}
        sent = {str(k): ", ".join(str(x) for x in v) if isinstance(v, list) else str(v)
                for k, v in headers.items()}
    except (ValueError, AttributeError, RecursionError):
        log.warning("credential helper %s returned malformed output for %s; trying the next "
                    "source", helper, urlsplit(url).hostname)
        return None
    for name, value in sent.items():
        # Sent as they are, a bad name or value would end in an exception quoting it.
        check_header_value(value, f"credential helper {helper}: header {name!r}")
        if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
            raise UsageError(f"credential helper {helper}: {name!r} is not an HTTP header name")
    return HostAuth(sent, f"credential helper {helper}") if sent else None


def _from_netrc(host: str) -> HostAuth | None:
    import netrc

    path = os.environ.get("NETRC") or os.path.join(os.path.expanduser("~"), ".netrc")
    if not os.path.isfile(path):
        return None
    try:
        entry = netrc.netrc(path).authenticators(host)
    except (OSError, netrc.NetrcParseError) as e:
        log.warning("%s: unreadable (%s); not using it", path, type(e).__name__)
        return None
    if entry is None:
        return None
    from toolfetch.registry.auth import Credentials, basic_header

    login, _, password = entry
    basic = basic_header(Credentials(username=login, password=password or ""))
    return HostAuth({"Authorization": basic}, f"netrc ({path})")
