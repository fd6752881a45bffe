"""What a test registry was asked: parse Distribution's access log (independent of toolfetch).

Usage::

    mark = LogMark(reg)
    ...toolfetch talks to reg...
    hits = mark.requests()            # [(method, uri, status), ...] since the mark
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from ocitest import Registry

_LINE = re.compile(r'"([A-Z]+) (\S+) HTTP/[\d.]+" (\d{3}) ')


@dataclass(frozen=True)
class Hit:
    method: str
    uri: str
    status: int


class LogMark:
    def __init__(self, reg: Registry) -> None:
        self.reg = reg
        self.offset = reg.log_path.stat().st_size if reg.log_path.exists() else 0

    def requests(self, settle: float = 0.05) -> list[Hit]:
        time.sleep(settle)  # the registry writes its access log line after the response
        data = self.reg.log_path.read_bytes()[self.offset:].decode(errors="replace")
        return [Hit(m.group(1), m.group(2), int(m.group(3))) for m in _LINE.finditer(data)]

    def count(self, method: str, contains: str = "", status: int | None = None) -> int:
        return sum(1 for h in self.requests() if h.method == method and contains in h.uri
                   and (status is None or h.status == status))
