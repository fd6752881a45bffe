"""The HTTP session a command shares, and which registries are insecure.

One :class:`Http` per command (:class:`toolfetch.registry.transport.Transport` owns it):
pooled connections, no retries of its own (the transport retries), no ``~/.netrc``
credentials, no cookies. HTTPS to an insecure registry is unverified, as docker does for its
insecure registries; such connections use one TLS context that loads no CA certificates,
because urllib3 would otherwise load the whole system store for every connection only to
ignore it (~60 ms each on a small CI machine: the cost of the TLS probe of a loopback
registry).

The environment ``requests`` honours (``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY``,
``NO_PROXY``, ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``) is honoured the same, but read once
per origin instead of on every request: requests re-reads it per request, which was a third
of the time of a small blob GET on loopback.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
import threading
import warnings
from http.cookiejar import DefaultCookiePolicy
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
import urllib3

from toolfetch.core.errors import UsageError
from toolfetch.core.urls import shown_url

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
    session.trust_env = False  # no netrc; proxies and CA bundle: see Http.request
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    adapter = _Adapter(pool_connections=8, pool_maxsize=32, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


# A request that cannot even be made: bad input, never a network failure (they are OSErrors,
# which callers would take for the local file system's).
_MALFORMED = (requests.exceptions.InvalidURL, requests.exceptions.InvalidHeader,
              requests.exceptions.InvalidSchema, requests.exceptions.MissingSchema,
              requests.exceptions.URLRequired, urllib3.exceptions.LocationValueError)


class Http:
    """A :func:`new_session` that reads the environment once per origin; thread-safe."""

    def __init__(self) -> None:
        self.session = new_session()
        self._origins: dict[tuple[str, str], tuple[dict[str, str], bool | str]] = {}

    def request(self, method: str, url: str, *, verify: bool | None = None,
                **kw: Any) -> requests.Response:
        """``session.request`` with the origin's proxies and TLS verification (loopback and
        listed insecure hosts are unverified); ``verify=False`` forces unverified."""
        parts = urlsplit(url)
        origin = (parts.scheme, parts.netloc)
        settings = self._origins.get(origin)
        if settings is None:  # two threads may both compute it: same answer, no lock needed
            settings = self._origins[origin] = _origin_settings(url, parts.netloc)
        proxies, default_verify = settings
        try:
            return self.session.request(method, url, proxies=proxies,
                                        verify=default_verify if verify is None else verify,
                                        **kw)
        except _MALFORMED as e:
            # Their text quotes the whole URL or header value: user:password, a token.
            kind = "header" if isinstance(e, requests.exceptions.InvalidHeader) else "URL"
            raise UsageError(f"{method} {shown_url(url)}: invalid {kind} "
                             f"({type(e).__name__}; the value is not shown)") from None

    def close(self) -> None:
        self.session.close()


def _origin_settings(url: str, netloc: str) -> tuple[dict[str, str], bool | str]:
    proxies: dict[str, str] = requests.utils.get_environ_proxies(url, no_proxy=None)
    verify: bool | str = not is_insecure_host(netloc)
    if verify:
        verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    return proxies, verify


# Unverified HTTPS is only ever used where the user asked for it (loopback and listed insecure
# registries, as docker does); saying so on every request would only bury real messages.
warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
