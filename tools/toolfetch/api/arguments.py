"""Checks of the facade's arguments that every method shares: list arguments, and the
offline switch on references.

A list argument given a bare string (``client.tag(ref, "latest")``, ``client.lock("protoc")``)
is one item, never the string's characters: iterating a ``str`` would tag ``l``, ``a``, …
and write them to a registry. ``offline`` refuses a registry reference before any request
(exit 6), as ``fetch --offline`` refuses a blob the cache lacks; an ``oci-layout:``
reference is local and always allowed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from toolfetch.core.errors import UnreachableError
from toolfetch.core.reference import AnyReference, LayoutReference

PathArg = str | os.PathLike[str]


def items(value: str | Iterable[str]) -> list[str]:
    """A list of strings (tools, tags, repositories); a bare string is one item."""
    return [value] if isinstance(value, str) else list(value)


def paths(value: PathArg | Iterable[PathArg]) -> list[str]:
    """A list of paths as strings (files to push, lockfiles, DotSlash files); a bare path
    (``str`` or ``os.PathLike``) is one item."""
    if isinstance(value, (str, os.PathLike)):
        return [os.fspath(value)]
    return [os.fspath(v) for v in value]


def refuse_offline(what: str, *refs: AnyReference) -> None:
    """UnreachableError (exit 6) for the first registry reference among ``refs``: the
    caller is offline and ``what`` would need that registry."""
    for ref in refs:
        if not isinstance(ref, LayoutReference):
            raise UnreachableError(
                f"{what} {ref}: needs the registry {ref.registry}, and offline (--offline, "
                "TOOLFETCH_OFFLINE=1 or Client(offline=True)) forbids the network")
