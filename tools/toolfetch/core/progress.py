"""Progress on stderr: one line, only on a TTY, never with --no-progress/-q.

``fetch  protoc  [#########           ] 61.0 MiB/200.0 MiB  48.2 MiB/s  ETA 3s``: the command,
the tool or file moving now (the last one that moved bytes, when several move at once), the
amount, the rate since the start and the time left at that rate. Redrawn at most ten times
a second; ``NO_COLOR`` drops the colour, ``TERM=dumb`` or a non-TTY stderr the whole line.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable

from toolfetch.core.sizes import format_size

NAME_WIDTH = 24
#: what moves bytes calls this with each amount just moved (``Progress.reporter`` makes one)
ByteReport = Callable[[int], None]


def enabled(requested: bool) -> bool:
    return requested and sys.stderr.isatty() and os.environ.get("TERM") != "dumb"


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class Progress:
    """Thread-safe counter of bytes (or other units) that redraws at most 10 times a second.

    ``total`` may grow (:meth:`expect`) when the work is found as it goes (a copied graph).
    """

    def __init__(self, label: str, total: int, active: bool, unit: str = "bytes") -> None:
        self.label = label
        self.unit = unit
        self.total = total
        self.active = active
        self.done = 0
        self.name = ""
        self._start = time.monotonic()
        self._last = 0.0
        self._lock = threading.Lock()
        self._color = active and not os.environ.get("NO_COLOR")

    def expect(self, more: int) -> None:
        """``more`` units of work were found."""
        with self._lock:
            self.total += more

    def reporter(self, name: str) -> ByteReport:
        """A callback for one tool or file: ``reporter("protoc")(n)`` advances by ``n``."""
        return lambda n: self.advance(n, name)

    def advance(self, n: int, name: str | None = None) -> None:
        if not self.active:
            return
        with self._lock:
            self.done += n
            if name:
                self.name = name
            now = time.monotonic()
            if now - self._last < 0.1 and self.done < self.total:
                return
            self._last = now
            self._draw(now)

    def line(self, now: float) -> str:
        """The text of the progress line at ``now`` (``time.monotonic()``)."""
        width = 20
        frac = min(self.done / self.total, 1.0) if self.total else 1.0
        bar = "#" * int(frac * width)
        elapsed = max(now - self._start, 1e-3)
        rate = self.done / elapsed
        name = self.name if len(self.name) <= NAME_WIDTH else self.name[:NAME_WIDTH - 1] + "…"
        if self.unit == "bytes":
            amount = f"{format_size(self.done)}/{format_size(self.total)}"
            speed = f"{format_size(int(rate))}/s"
        else:
            amount = f"{self.done}/{self.total} {self.unit}"
            speed = f"{rate:.1f} {self.unit}/s"
        left = self.total - self.done
        if left <= 0:
            eta = "done"
        elif elapsed < 1.0 or rate <= 0:
            eta = "ETA -"  # a rate over the first moments says little about the rest
        else:
            eta = f"ETA {_duration(left / rate)}"
        head = f"{self.label}  {name}".rstrip()
        return f"{head}  [{bar:<{width}}] {amount}  {speed}  {eta}"

    def _draw(self, now: float) -> None:
        text = self.line(now)
        if self._color:
            text = f"\x1b[36m{text}\x1b[0m"
        sys.stderr.write(f"\r{text}\x1b[K")
        sys.stderr.flush()

    def close(self) -> None:
        if self.active and self._last:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
