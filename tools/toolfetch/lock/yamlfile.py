"""Reading tools.yaml strictly: one meaning per file, bounded cost, errors naming lines.

PyYAML's ``safe_load`` keeps the last of two equal keys silently (a second ``tools:`` block
after a merge drops the first block's tools from the lockfile) and expands aliases without
limit (a 575-byte file of nested aliases took 9 s and 750 MB). So this loader refuses, with
exit 2 naming the file and the lines:

* a key given twice in one mapping (naming the key and both lines);
* anchors and aliases (``&a`` / ``*a``): tools.yaml has no use for them, and refusing them is
  the only bound on expansion that leaves no doubt;
* nesting deeper than :data:`MAX_DEPTH` (a recursion in the parser otherwise);
* a file that is not UTF-8, or larger than :data:`MAX_BYTES`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from toolfetch.core.errors import UsageError
from toolfetch.core.fs import read_capped_text

MAX_BYTES = 4 << 20
MAX_DEPTH = 64


class _StrictLoader(yaml.SafeLoader):
    """A SafeLoader without aliases, duplicate keys or deep nesting."""

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        mark: Any = event.start_mark
        if isinstance(event, yaml.AliasEvent):
            raise yaml.MarkedYAMLError(None, None, "aliases (*name) are not allowed in "
                                       "tools.yaml; write the value out", mark)
        if getattr(event, "anchor", None):
            raise yaml.MarkedYAMLError(None, None, "anchors (&name) are not allowed in "
                                       "tools.yaml; write the value out", mark)
        depth = getattr(self, "_depth", 0)
        if depth >= MAX_DEPTH:
            raise yaml.MarkedYAMLError(None, None, f"nested deeper than {MAX_DEPTH} levels",
                                       mark)
        self._depth = depth + 1
        try:
            node = super().compose_node(parent, index)
            assert node is not None
            return node
        finally:
            self._depth = depth

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Node] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, (MappingNode, SequenceNode)):
                raise yaml.MarkedYAMLError(None, None, "a mapping key must be a plain value",
                                           key_node.start_mark)
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                first = seen[key].start_mark.line + 1
                raise yaml.MarkedYAMLError(
                    None, None, f"duplicate key {key!r} (first on line {first}); a key may "
                    "be given once (YAML would silently keep only the last)",
                    key_node.start_mark)
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def parse(text: str, where: str) -> Any:
    """The data of a tools.yaml text; UsageError naming ``where`` and the line."""
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
        _check_numbers(data, where, "$")
        return data
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = e.problem or str(e)
        context = f" ({e.context})" if e.context else ""
        raise UsageError(f"{where}: invalid YAML: {at}{problem}{context}") from None
    except yaml.YAMLError as e:
        raise UsageError(f"{where}: invalid YAML: {e}") from None
    except RecursionError:
        raise UsageError(f"{where}: invalid YAML: nested too deeply") from None
    except ValueError as e:  # int(): a number of more than 4300 digits
        raise UsageError(f"{where}: invalid YAML: a number too large to mean anything here "
                         f"({str(e)[:60]})") from None


def _check_numbers(value: Any, where: str, at: str) -> None:
    """Refuse integers too large to print (Python refuses to turn one of over 4300 digits
    into text, which every message about the value would do)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
        raise UsageError(f"{where}: {at}: a number too large to mean anything here")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_numbers(key, where, at)
            _check_numbers(item, where, f"{at}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_numbers(item, where, f"{at}[{i}]")


def read_text(path: Path) -> str:
    """The file's text: UTF-8, at most :data:`MAX_BYTES`; missing is exit 2, unreadable
    exit 8 (the local file system), both naming the file."""
    return read_capped_text(path, MAX_BYTES, "tools.yaml file",
                            missing_hint=" (create a tools.yaml, see README)")


def load(path: Path) -> Any:
    return parse(read_text(path), str(path))
