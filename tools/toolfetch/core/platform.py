"""OCI platform strings, host detection, index matching, build-system constraints.

One spelling everywhere: ``os/arch[/variant]`` (``linux/amd64``, ``linux/arm/v7``).
Standard library only. The ``uname`` table lives in :mod:`toolfetch.core.host`, which the
cache-hit path uses without importing this module; the hints for platforms spelled with
uname's or a vendor's words (:func:`spelling_hint`) live here, with the parser that gives
them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from toolfetch.core.errors import NotFoundError, UsageError
from toolfetch.core.host import MACHINE_TO_ARCH, SYS_TO_OS, host_parts

# The one mapping table: OCI os/arch -> (Bazel @platforms, Buck2 prelude) constraints.
# rules/bazel/platforms.bzl and rules/buck2/platforms.bzl mirror it; a test keeps them equal.
BAZEL_OS = {"linux": "linux", "darwin": "osx", "windows": "windows"}
BAZEL_CPU = {"amd64": "x86_64", "arm64": "aarch64", "arm/v7": "armv7"}
BUCK2_OS = {"linux": "linux", "darwin": "macos", "windows": "windows"}
BUCK2_CPU = {"amd64": "x86_64", "arm64": "arm64"}

# Other spellings of operating systems users type, mapped to OCI's (hints only).
OS_ALIASES = {"macos": "darwin", "osx": "darwin", "mac": "darwin", "macosx": "darwin",
              "apple": "darwin", "win": "windows", "win32": "windows", "win64": "windows",
              "cygwin": "windows", "gnu/linux": "linux"}
ARCH_ALIASES = {"x64": "amd64", "x86-64": "amd64", "aarch_64": "arm64", "armv8": "arm64"}


def spelling_hint(text: str) -> str:
    """``; did you mean darwin/arm64?`` for a platform spelled with uname's or a vendor's
    words (``macos/aarch64``), or ``""`` when there is nothing to suggest."""
    parts = text.strip().lower().split("/")
    if len(parts) == 1:
        word = parts[0]
        if word in (*SYS_TO_OS.values(), *OS_ALIASES):
            return f"; did you mean {OS_ALIASES.get(word, word)}/{host_parts()[1]}?"
        return ""
    os_name = OS_ALIASES.get(parts[0], parts[0])
    arch = ARCH_ALIASES.get(parts[1], MACHINE_TO_ARCH.get(parts[1], (parts[1], ""))[0])
    variant = MACHINE_TO_ARCH.get(parts[1], ("", ""))[1]
    rest = parts[2:] or ([variant] if variant else [])
    suggested = "/".join([os_name, arch, *rest])
    return f"; did you mean {suggested}?" if suggested != text else ""


_ARM_CHAIN = ["v8", "v7", "v6", "v5"]


@dataclass(frozen=True, order=True)
class Platform:
    os: str
    arch: str
    variant: str = ""

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(p and p == p.strip() for p in parts):
            raise UsageError(f"malformed platform {text!r}: expected os/arch[/variant]"
                             f"{spelling_hint(text) or ', e.g. linux/amd64'}")
        if any(not p.replace("_", "").replace("-", "").isalnum() for p in parts):
            raise UsageError(f"malformed platform {text!r}: unexpected characters"
                             f"{spelling_hint(text)}")
        return cls(parts[0].lower(), parts[1].lower(), parts[2].lower() if len(parts) == 3 else "")

    @classmethod
    def from_descriptor(cls, platform: Mapping[str, object]) -> Platform:
        # lower-cased as parse() does: an index writing "Linux" names linux, one key
        return cls(
            str(platform.get("os", "")).lower(),
            str(platform.get("architecture", "")).lower(),
            str(platform.get("variant", "") or "").lower(),
        )

    def __str__(self) -> str:
        return f"{self.os}/{self.arch}/{self.variant}" if self.variant else f"{self.os}/{self.arch}"

    def _normalized_variant(self) -> str:
        # As OCI/containerd normalise: no variant is v8 on arm64 and v7 on arm. Left empty,
        # a bare arm entry would be "any variant" and reach v6/v5 hosts it cannot run on.
        if self.arch == "arm64" and self.variant in ("", "v8"):
            return "v8"
        if self.arch == "arm" and not self.variant:
            return "v7"
        return self.variant

    def accepts(self, offered: Platform) -> bool:
        """Whether a manifest for ``offered`` runs on this (wanted) platform."""
        if self.os != offered.os or self.arch != offered.arch:
            return False
        want, have = self._normalized_variant(), offered._normalized_variant()
        if want == have or not have:
            return True
        if self.arch == "arm" and want in _ARM_CHAIN and have in _ARM_CHAIN:
            # arm v7 runs v6 and v5 binaries, not the other way round.
            return _ARM_CHAIN.index(have) >= _ARM_CHAIN.index(want)
        return False

    def preference(self, offered: Platform) -> int:
        """Lower is better; only meaningful when ``accepts(offered)``."""
        want, have = self._normalized_variant(), offered._normalized_variant()
        if want == have:
            return 0
        if self.arch == "arm" and have in _ARM_CHAIN and want in _ARM_CHAIN:
            return _ARM_CHAIN.index(have) - _ARM_CHAIN.index(want)
        return 10

    @property
    def key(self) -> str:
        """The one spelling a lockfile keys this platform by: ``linux/arm64/v8`` is
        ``linux/arm64`` and ``linux/arm`` is ``linux/arm/v7`` (as :meth:`accepts` treats them),
        so two spellings of one platform can never be locked to two binaries."""
        variant = self._normalized_variant()
        if self.arch == "arm64" and variant == "v8":
            variant = ""
        return str(Platform(self.os, self.arch, variant))

    @property
    def cpu_key(self) -> str:
        """What the build-system tables map: ``arm/<variant>``, ``arm64`` (v8), else the
        arch, with any other variant kept (``amd64/v3`` maps to no constraint: no x86_64
        machine is handed a binary that needs x86-64-v3 because its constraint matched)."""
        return self.key.split("/", 1)[1]


def host_platform() -> Platform:
    """The platform this process runs on, mapped from ``uname`` (see :mod:`toolfetch.core.host`)."""
    return Platform(*host_parts())


def platform_or_host(value: str | None) -> Platform:
    """``value`` parsed (a ``--platform`` or a library argument), else this host's platform."""
    return Platform.parse(value) if value else host_platform()


def select_platform(wanted: Platform, offered: Iterable[Platform], what: str) -> int:
    """Index of the best offered platform for ``wanted``; NotFoundError lists the offer."""
    offered_list = list(offered)
    best: tuple[int, int] | None = None
    for i, candidate in enumerate(offered_list):
        if wanted.accepts(candidate):
            key = (wanted.preference(candidate), i)
            if best is None or key < best:
                best = key
    if best is None:
        offer = ", ".join(str(p) for p in offered_list) or "none"
        raise NotFoundError(f"{what} has no manifest for platform {wanted}; it offers: {offer}")
    return best[1]


def bazel_constraints(p: Platform) -> tuple[str, str]:
    return (f"@platforms//os:{BAZEL_OS[p.os]}", f"@platforms//cpu:{BAZEL_CPU[p.cpu_key]}")


def buck2_constraints(p: Platform) -> tuple[str, str]:
    return (f"prelude//os:{BUCK2_OS[p.os]}", f"prelude//cpu:{BUCK2_CPU[p.cpu_key]}")
