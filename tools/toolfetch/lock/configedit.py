"""Adding tools to tools.yaml as text, so its comments and layout stay.

The insertion point is found by the YAML parser itself (the ``tools`` mapping's nodes and
their line numbers), never by a text search that a multi-line string could fool. The new
text is then parsed again (strictly, :mod:`toolfetch.lock.yamlfile`) and must equal the old
data plus exactly the new tools, and pass the tools.yaml schema, before it replaces the file
atomically; otherwise nothing is written (exit 2 naming the file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from toolfetch.core.errors import LocalIOError, UsageError
from toolfetch.lock import yamlfile

Entries = dict[str, dict[str, Any]]
EMPTY = "tools:\n"


def add_tools(config_path: Path, entries: Entries) -> None:
    """Insert ``entries`` under ``tools:`` of ``config_path`` (created when absent)."""
    from toolfetch.core.fs import atomic_write
    from toolfetch.lock.config import Config

    text = yamlfile.read_text(config_path) if config_path.exists() else EMPTY
    where = str(config_path)
    before = yamlfile.parse(text, where) or {}
    if not isinstance(before, dict):
        raise UsageError(f"{where}: not a mapping; cannot add tools to it")
    existing = before.get("tools") or {}
    if existing:
        Config.from_data(before, config_path)  # an invalid file is the user's to fix first
    clash = sorted(set(entries) & set(existing))
    if clash:
        raise UsageError(f"{where}: already has {', '.join(clash)}; remove "
                         f"{'it' if len(clash) == 1 else 'them'} first")
    new = _inserted(text, entries, where)
    after = yamlfile.parse(new, where)
    expected = dict(before, tools={**existing, **entries})
    if after != expected:  # the text did not say what was meant: write nothing
        raise UsageError(f"{where}: could not add {', '.join(entries)} as text without "
                         "changing other content; add them by hand (`--stdout` prints them)")
    Config.from_data(after, config_path)
    try:
        atomic_write(config_path, new.encode(), 0o644)
    except OSError as e:
        raise LocalIOError.of(e, f"cannot write {config_path}") from e


def _inserted(text: str, entries: Entries, where: str) -> str:
    """``text`` with ``entries`` written as a block at the end of the ``tools`` mapping."""
    import yaml

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    tools_key, tools = None, None
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if isinstance(key, yaml.ScalarNode) and key.value == "tools":
                tools_key, tools = key, value
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    if tools_key is None or tools is None:  # no tools: a new block at the end
        return "".join(lines) + "tools:\n" + _block(entries, "  ")
    if isinstance(tools, yaml.ScalarNode) and tools.value in ("", "~", "null"):
        at = tools_key.start_mark.line + 1  # `tools:` with no value
        if tools.value and tools.start_mark.line == tools_key.start_mark.line:
            lines[tools_key.start_mark.line] = lines[tools_key.start_mark.line].replace(
                tools.value, "", 1)
        return "".join(lines[:at]) + _block(entries, "  ") + "".join(lines[at:])
    if not isinstance(tools, yaml.MappingNode) or tools.flow_style or not tools.value:
        raise UsageError(f"{where}: `tools` is not a block mapping (`tools:` then one tool "
                         "per indented line); cannot add to it as text")
    pad = " " * tools.value[0][0].start_mark.column
    node = tools.value[-1][1]
    while isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.value:
        last = node.value[-1]  # the last text of the last tool: after it, not after the
        node = last[1] if isinstance(node, yaml.MappingNode) else last  # comments below it
    end = node.end_mark
    at = end.line if end.column == 0 else end.line + 1
    return "".join(lines[:at]) + _block(entries, pad) + "".join(lines[at:])


def _block(entries: Entries, pad: str) -> str:
    import yaml

    dumped = yaml.safe_dump(entries, sort_keys=False, default_flow_style=False, width=1000)
    return "".join(pad + line + "\n" for line in dumped.splitlines())
