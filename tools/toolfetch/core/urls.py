"""URLs and host names as input: checked before any request, shown without their secrets.

A URL may carry ``user:password@`` and a signed query; a header value, a token. Every
message shows a URL through :func:`shown_url` (scheme, host, port and path only), also for
a URL that does not parse, and an input that no request could be made of is exit 2
(:func:`check_url`, :func:`host_problem`) before ``requests`` sees it: its exceptions quote
the URL or header whole.
"""

from __future__ import annotations

import ipaddress
import re

from toolfetch.core.errors import UsageError

_FORBIDDEN = re.compile(r"[\x00-\x20\x7f/\\@%\[\]<>\"'`{}|^]")
MAX_HOST_NAME = 253


def shown_url(url: str) -> str:
    """``url`` without userinfo, query or fragment: what messages may print of it (works on
    malformed URLs, which ``urlsplit`` may refuse)."""
    text = url.split("#", 1)[0].split("?", 1)[0]
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "", text
    authority, slash, path = rest.partition("/")
    authority = authority.rpartition("@")[2]
    return f"{scheme}{sep}{authority}{slash}{path}"


def host_problem(host: str) -> str | None:
    """Why ``host[:port]`` (a name, an IPv4 address or a bracketed IPv6 address) cannot be
    connected to, or None: ports 1-65535, DNS labels of 1-63 characters, names of at most
    253."""
    name, port = host, ""
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            return "unclosed IPv6 bracket"
        name, rest = host[1:end], host[end + 1:]
        if rest and not rest.startswith(":"):
            return "unexpected text after the IPv6 address"
        port = rest[1:] if rest else ""
        try:
            ipaddress.IPv6Address(name)
        except ValueError:
            return f"{name!r} is not an IPv6 address"
        name = ""
    elif ":" in host:
        name, _, port = host.partition(":")
    if host.endswith(":") or (port and not port.isdigit()):
        return "the port is not a number"
    if port and not 0 < int(port) <= 65535:
        return f"port {port} is out of range (1-65535)"
    if not name:
        return None if host.startswith("[") else "no host name"
    if len(name.rstrip(".")) > MAX_HOST_NAME:
        return f"the host name is too long (over {MAX_HOST_NAME} characters)"
    for label in name.rstrip(".").split("."):
        if not label:
            return "the host name has an empty label"
        if len(label) > 63:
            return f"host name label {label[:20]}… is too long (over 63 characters)"
        if _FORBIDDEN.search(label):
            return f"host name label {label!r} holds characters a host name cannot"
    return None


def url_problem(url: str) -> str | None:
    """Why ``url`` is not an ``http(s)://`` URL a request can be made of, or None."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        return "not an http:// or https:// URL"
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return "contains white space or control characters"
    return host_problem(re.split(r"[/?#]", rest, maxsplit=1)[0].rpartition("@")[2])


def check_url(url: str, what: str) -> None:
    """UsageError (exit 2) naming ``what`` unless ``url`` is an ``http(s)://`` URL a request
    can be made of. The message shows the URL without its secrets."""
    problem = url_problem(url)
    if problem is not None:
        raise UsageError(f"{what}: {shown_url(url)}: {problem}")


def check_header_value(value: str, what: str) -> None:
    """UsageError naming ``what`` (never the value) unless ``value`` can be sent as an HTTP
    header value (no line breaks or other control characters, no leading white space)."""
    if value != value.lstrip() or any((ord(c) < 32 and c != "\t") or ord(c) == 127
                                      for c in value):
        raise UsageError(f"{what}: not a valid HTTP header value (line break, control "
                         "character or leading white space); its value is not shown")
