"""The ``requests`` session a command shares, and which registries are insecure.

One session per command (:class:`toolfetch.transport.Transport` owns it): pooled connections,
no retries of its own (the transport retries), no ``~/.netrc`` credentials, no cookies. HTTPS
to an insecure registry is unverified, as docker does for its insecure registries; such
connections use one TLS context that loads no CA certificates, because urllib3 would
otherwise load the whole system store for every connection only to ignore it (~60 ms each
on a small CI machine: the cost of the TLS probe of a loopback registry).
"""

from __future__ import annotations

import ipaddress
import os
import ssl
import threading
from http.cookiejar import DefaultCookiePolicy
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import requests

if TYPE_CHECKING:
    from requests.adapters import _HostParams, _PoolKwargs  # the stubs' names for the pair

USER_AGENT = "toolfetch/0.1"
_context_lock = threading.Lock()
_unverified: ssl.SSLContext | None = None


def listed_insecure() -> set[str]:
    """``TOOLFETCH_INSECURE_REGISTRIES=host:port,…``."""
    return {h.strip() for h in os.environ.get("TOOLFETCH_INSECURE_REGISTRIES", "").split(",")
            if h.strip()}


def is_insecure_host(host: str) -> bool:
    """Loopback hosts and ``TOOLFETCH_INSECURE_REGISTRIES`` get TLS-unverified/plain HTTP."""
    if host in listed_insecure():
        return True
    hostname = urlsplit(f"//{host}").hostname or host
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def same_origin(a: str, b: str) -> bool:
    sa, sb = urlsplit(a), urlsplit(b)
    return (sa.scheme, sa.hostname, sa.port) == (sb.scheme, sb.hostname, sb.port)


def unverified_context() -> ssl.SSLContext:
    """The one TLS client context for unverified connections (no CA store loaded)."""
    global _unverified
    with _context_lock:
        if _unverified is None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            _unverified = context
        return _unverified


class _NoNetrc(requests.auth.AuthBase):
    """A no-op auth: stops requests from injecting ~/.netrc credentials."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        return r


class _Adapter(requests.adapters.HTTPAdapter):
    """Gives unverified HTTPS pools :func:`unverified_context` (requests' documented hook)."""

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: bool | str,
        cert: str | tuple[str, str] | None = None,
    ) -> tuple[_HostParams, _PoolKwargs]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert)
        if verify is False and host_params.get("scheme") == "https":
            pool_kwargs["ssl_context"] = unverified_context()
        return host_params, pool_kwargs


def new_session() -> requests.Session:
    session = requests.Session()
    session.auth = _NoNetrc()
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    adapter = _Adapter(pool_connections=8, pool_maxsize=32, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session
