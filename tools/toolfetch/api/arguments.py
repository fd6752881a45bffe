"""Checks of the facade's arguments that every method shares: list arguments.

A list argument given a bare string (``client.tag(ref, "latest")``, ``client.lock("protoc")``)
is one item, never the string's characters: iterating a ``str`` would tag ``l``, ``a``, …
and write them to a registry.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

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
