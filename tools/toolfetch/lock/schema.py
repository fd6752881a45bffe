"""JSON Schema validation with messages that name the file and the JSON path at fault."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from toolfetch.core.errors import UsageError


@cache
def load_schema(name: str) -> dict[str, Any]:
    schemas = resources.files("toolfetch").joinpath("schemas")
    text = schemas.joinpath(name).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def json_path(path: Any) -> str:
    out = "$"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def validate(instance: Any, schema_name: str, filename: str) -> None:
    """Raise UsageError naming ``filename`` and the JSON path of the first (deepest) error."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(load_schema(schema_name))
    errors = list(validator.iter_errors(instance))
    if not errors:
        return
    best = jsonschema.exceptions.best_match(errors)
    # best_match prefers shallow errors; for oneOf/anyOf drill into the most relevant context.
    # A branch that fails only on the instance's own type (a list where the other branch
    # takes a mapping) is the wrong branch to report when another branch got further.
    while best.context:
        deeper = [c for c in best.context if c.relative_path or c.validator != "type"]
        best = jsonschema.exceptions.best_match(deeper or best.context)
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    raise UsageError(f"{filename}: {json_path(best.absolute_path)}: {best.message}{more}")
