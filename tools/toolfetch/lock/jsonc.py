"""JSON with ``//`` and ``/* */`` comments and trailing commas: DotSlash's dialect.

DotSlash reads its files with serde_jsonrc; this reader accepts the same extensions and
nothing more, in one linear pass: comments and a comma before ``}`` or ``]`` are removed only
*outside* strings (a URL holding ``,}`` or ``//`` stays as written), then the standard
``json`` module parses the rest, so numbers, escapes and nesting follow JSON exactly. Errors
name the file and the line (exit 2); nesting is bounded (:data:`MAX_DEPTH`), and so is size.
"""

from __future__ import annotations

import json
from typing import Any

from toolfetch.core.errors import UsageError

MAX_DEPTH = 64
MAX_BYTES = 16 << 20  # DotSlash files are a few KiB; this bounds what a hostile one costs


def strip(text: str, where: str) -> str:
    """``text`` without comments and trailing commas outside strings (same line numbers:
    a comment's line breaks are kept)."""
    out: list[str] = []
    n, i, depth = len(text), 0, 0
    pending_comma = -1  # index in `out` of a comma that a closing bracket would drop
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                raise UsageError(f"{where}: line {text.count(chr(10), 0, i) + 1}: a string "
                                 "is not closed")
            out.append(text[i:j + 1])
            pending_comma = -1
            i = j + 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end  # the line break itself is kept
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise UsageError(f"{where}: line {text.count(chr(10), 0, i) + 1}: a /* "
                                 "comment is not closed")
            out.append("\n" * text.count("\n", i, end))
            i = end + 2
        else:
            if c in "}]":
                if pending_comma >= 0:
                    out[pending_comma] = " "
                depth -= 1
            elif c in "{[":
                depth += 1
                if depth > MAX_DEPTH:
                    raise UsageError(f"{where}: nested deeper than {MAX_DEPTH} levels")
            if c == ",":
                pending_comma = len(out)
            elif not c.isspace():
                pending_comma = -1
            out.append(c)
            i += 1
    return "".join(out)


def loads(text: str, where: str) -> Any:
    """Parse DotSlash-dialect JSON; UsageError naming ``where`` (and the line)."""
    if len(text) > MAX_BYTES:
        raise UsageError(f"{where}: larger than {MAX_BYTES} bytes")
    cleaned = strip(text, where)
    try:
        return json.loads(cleaned)
    except RecursionError:
        raise UsageError(f"{where}: nested too deeply") from None
    except ValueError as e:
        line = getattr(e, "lineno", None)
        at = f"line {line}: " if line else ""
        reason = getattr(e, "msg", None) or str(e)
        raise UsageError(f"{where}: not valid JSON: {at}{reason}") from None
