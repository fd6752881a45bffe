"""Progress on stderr: a one-line bar, only on a TTY, never with --no-progress/-q."""

from __future__ import annotations

import os
import sys
import threading
import time

from toolfetch.core.sizes import format_size


def enabled(requested: bool) -> bool:
    return requested and sys.stderr.isatty() and os.environ.get("TERM") != "dumb"


class Progress:
    """Thread-safe byte counter that redraws at most 10 times a second."""

    def __init__(self, label: str, total: int, active: bool, unit: str = "bytes") -> None:
        self.label = label
        self.unit = unit
        self.total = total
        self.active = active
        self.done = 0
        self._last = 0.0
        self._lock = threading.Lock()
        self._color = active and not os.environ.get("NO_COLOR")

    def advance(self, n: int) -> None:
        if not self.active:
            return
        with self._lock:
            self.done += n
            now = time.monotonic()
            if now - self._last < 0.1 and self.done < self.total:
                return
            self._last = now
            self._draw()

    def _draw(self) -> None:
        width = 30
        frac = min(self.done / self.total, 1.0) if self.total else 1.0
        bar = "#" * int(frac * width)
        if self.unit == "bytes":
            amount = f"{format_size(self.done)}/{format_size(self.total)}"
        else:
            amount = f"{self.done}/{self.total} {self.unit}"
        text = f"{self.label} [{bar:<{width}}] {amount}"
        if self._color:
            text = f"\x1b[36m{text}\x1b[0m"
        sys.stderr.write(f"\r{text}\x1b[K")
        sys.stderr.flush()

    def close(self) -> None:
        if self.active and self._last:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
