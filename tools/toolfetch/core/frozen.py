"""Deeply read-only JSON-like values for the frozen results the library hands out.

:class:`FrozenDict` is a ``dict`` whose mutators raise, so ``json.dumps``,
``dataclasses.asdict``, ``copy.deepcopy`` and ``pickle`` take it as they take a dict (a
``types.MappingProxyType`` does not pickle), and it hashes when its values do.
:func:`freeze` and :func:`thaw` convert whole values iteratively: annotations and
descriptors come from registries and layouts, and a hostile one nested a thousand deep must
not exhaust Python's recursion limit (JSON parsing took it; copying it must too).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NoReturn


class FrozenDict(dict[Any, Any]):
    """A dict that cannot be changed after it is made."""

    __slots__ = ()

    def _refuse(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError("a FrozenDict cannot be changed")

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(frozenset(self.items()))

    def __reduce__(self) -> tuple[type[FrozenDict], tuple[dict[Any, Any]]]:
        return (FrozenDict, (dict(self),))

    def __repr__(self) -> str:
        return f"FrozenDict({dict.__repr__(self)})"


def _convert(value: Any, mapping: Callable[[Any], Any], sequence: Callable[[Any], Any]
             ) -> Any:
    """``value`` with every mapping and list or tuple in it rebuilt by ``mapping`` and
    ``sequence``, children first, without recursion."""
    containers: list[Any] = []
    todo = [value]
    while todo:  # every container, each before the containers inside it
        node = todo.pop()
        if isinstance(node, Mapping):
            containers.append(node)
            todo.extend(node.values())
        elif isinstance(node, list | tuple):
            containers.append(node)
            todo.extend(node)
    built: dict[int, Any] = {}

    def converted(item: Any) -> Any:
        return built[id(item)] if isinstance(item, Mapping | list | tuple) else item

    for node in reversed(containers):  # children before their parents
        if isinstance(node, Mapping):
            built[id(node)] = mapping({k: converted(v) for k, v in node.items()})
        else:
            built[id(node)] = sequence([converted(v) for v in node])
    return converted(value)


def freeze(value: Any) -> Any:
    """A copy of ``value`` with every mapping a :class:`FrozenDict` and every list a
    tuple."""
    return _convert(value, FrozenDict, tuple)


def thaw(value: Any) -> Any:
    """A copy of ``value`` of plain dicts and lists again (for printing as it was read)."""
    return _convert(value, dict, list)


def freeze_fields(value: object, *names: str) -> None:
    """Freeze the named fields of a frozen dataclass in its ``__post_init__``."""
    for name in names:
        object.__setattr__(value, name, freeze(getattr(value, name)))
