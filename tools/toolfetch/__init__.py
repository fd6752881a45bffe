"""toolfetch: a hermetic, OCI-native tool fetcher for build systems.

As a library (docs/python-api.md)::

    import toolfetch

    with toolfetch.Client() as client:
        protoc = client.which("protoc")

Every name below but ``__version__`` is loaded on first use (a module ``__getattr__``), so
``import toolfetch`` costs what the command line's start-up costs and imports no
``requests``, ``yaml`` or ``jsonschema``; the hit path (``toolfetch.cli.hitpath``) never
loads the facade at all.
"""

from __future__ import annotations

from toolfetch.core.version import __version__

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing on the hit path
if TYPE_CHECKING:  # what type checkers see; at run time __getattr__ loads them
    from typing import Any

    from toolfetch.api.artifacts import ArtifactInfo, LayerInfo, WasmInfo
    from toolfetch.api.cache_check import CacheCheck, CacheProblem
    from toolfetch.api.cache_methods import CachedTree, CacheInfo
    from toolfetch.api.client import Client
    from toolfetch.api.registry_results import ArtifactRef, LogoutResult, PullResult, Referrer
    from toolfetch.api.tool_results import (
        ImportedTools,
        ListedTool,
        SignatureCheck,
        ToolLocation,
    )
    from toolfetch.cache.gc import GcReport
    from toolfetch.core.errors import (
        AuthError,
        IntegrityError,
        LocalIOError,
        MultipleErrors,
        NotFoundError,
        OutOfDateError,
        ToolfetchError,
        UnreachableError,
        UsageError,
    )
    from toolfetch.lock.changes import Change
    from toolfetch.lock.update import LockResult, Upgrade
    from toolfetch.ops.bootstrap import BootstrapReport
    from toolfetch.ops.export_import import BundleStats

# name -> the module that defines it
_LAZY = {
    "Client": "toolfetch.api.client",
    "ToolLocation": "toolfetch.api.tool_results",
    "ListedTool": "toolfetch.api.tool_results",
    "SignatureCheck": "toolfetch.api.tool_results",
    "ImportedTools": "toolfetch.api.tool_results",
    "Upgrade": "toolfetch.lock.update",
    "ArtifactInfo": "toolfetch.api.artifacts",
    "LayerInfo": "toolfetch.api.artifacts",
    "WasmInfo": "toolfetch.api.artifacts",
    "CacheCheck": "toolfetch.api.cache_check",
    "CacheProblem": "toolfetch.api.cache_check",
    **{name: "toolfetch.api.cache_methods" for name in ("CacheInfo", "CachedTree")},
    **{name: "toolfetch.api.registry_results" for name in (
        "ArtifactRef", "LogoutResult", "PullResult", "Referrer")},
    "GcReport": "toolfetch.cache.gc",
    "LockResult": "toolfetch.lock.update",
    "Change": "toolfetch.lock.changes",
    "BootstrapReport": "toolfetch.ops.bootstrap",
    "BundleStats": "toolfetch.ops.export_import",
    **{name: "toolfetch.core.errors" for name in (
        "ToolfetchError", "UsageError", "IntegrityError", "NotFoundError", "AuthError",
        "UnreachableError", "OutOfDateError", "LocalIOError", "MultipleErrors")},
}

__all__ = [  # the facade: each name is loaded by __getattr__ on first use
    "ArtifactInfo",
    "ArtifactRef",
    "AuthError",
    "BootstrapReport",
    "BundleStats",
    "CacheCheck",
    "CacheInfo",
    "CacheProblem",
    "CachedTree",
    "Change",
    "Client",
    "GcReport",
    "ImportedTools",
    "IntegrityError",
    "LayerInfo",
    "ListedTool",
    "LocalIOError",
    "LockResult",
    "LogoutResult",
    "MultipleErrors",
    "NotFoundError",
    "OutOfDateError",
    "PullResult",
    "Referrer",
    "SignatureCheck",
    "ToolLocation",
    "ToolfetchError",
    "UnreachableError",
    "Upgrade",
    "UsageError",
    "WasmInfo",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'toolfetch' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
