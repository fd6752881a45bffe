"""Read-only views of JSON-like data held by the facade's frozen values, and plain copies of
them for the printers (``json`` and ``yaml`` take dicts and lists, not mapping proxies)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any


def read_only(value: Any) -> Any:
    """``value`` with every mapping in it a read-only view of a copy and every list a tuple,
    so a value that holds it cannot be changed through it (nor through the original)."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: read_only(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(read_only(v) for v in value)
    return value


def plain(value: Any) -> Any:
    """A copy of ``value`` (as :func:`read_only` makes it) of dicts and lists again."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value
