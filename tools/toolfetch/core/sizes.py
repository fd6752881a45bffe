"""One grammar for sizes and one for durations, for every flag and variable that takes one.

Sizes (``cache gc --max-size``, ``TOOLFETCH_MAX_UNPACK_BYTES``, ``TOOLFETCH_UPLOAD_CHUNK_SIZE``):
a number, optionally decimal, then optionally ``K``, ``M``, ``G`` or ``T`` (powers of 1024),
optionally followed by ``i`` and/or ``B``; case and spaces do not matter: ``123``, ``500M``,
``10G``, ``1.5GiB``, ``64 kb``.

Durations (``cache gc --unused-for``, ``TOOLFETCH_GC_GRACE``): a number, optionally decimal,
then optionally ``s``, ``m``, ``h``, ``d`` or ``w``; a bare number is seconds: ``90``, ``90s``,
``30m``, ``12h``, ``30d``, ``2w``.
"""

from __future__ import annotations

import math
import re

from toolfetch.core.errors import UsageError

_SIZE = re.compile(r"(?i)^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_size(text: str, what: str, minimum: int = 0) -> int:
    """Bytes; UsageError naming ``what`` (the flag or variable) when malformed or too small."""
    m = _SIZE.match(text)
    if not m:
        raise UsageError(f"{what}: malformed size {text!r}: expected e.g. 500M, 10G, 1.5GiB")
    number = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if not math.isfinite(number):  # 400 digits: inf, and int(inf) is an OverflowError
        raise UsageError(f"{what}: size {text[:40]!r}… is too large")
    value = int(number)
    if value < minimum:
        raise UsageError(f"{what}: size {text!r} must be at least {minimum} bytes")
    return value


def parse_duration(text: str, what: str) -> float:
    """Seconds; UsageError naming ``what`` when malformed."""
    m = _DURATION.match(text)
    if not m:
        raise UsageError(f"{what}: malformed duration {text!r}: expected e.g. 90s, 12h, 30d")
    seconds = float(m.group(1)) * _SECONDS[m.group(2)]
    if not math.isfinite(seconds):
        raise UsageError(f"{what}: duration {text[:40]!r}… is too large")
    return seconds


def format_size(n: int) -> str:
    """``512 B``, ``1.5 KiB``, ``32.0 MiB``, ``2.1 GiB`` (powers of 1024)."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"
