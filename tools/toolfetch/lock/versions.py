"""Version constraints over tags, and ``lock --upgrade``.

A tool may name a repository without a tag and a ``version`` constraint::

    protoc: {ref: ghcr.io/acme/protoc, version: ">=25,<26", path: bin/protoc}

Constraints are comma-separated clauses: ``>=V``, ``>V``, ``<=V``, ``<V``, ``==V`` (exact),
``!=V``, ``~=V`` (compatible: ``~=1.4`` is ``>=1.4,<2``; ``~=1.4.2`` is ``>=1.4.2,<1.5``),
``^V`` (same major; for ``0.x`` same minor), ``~V`` (same minor), and a bare ``V`` or ``V.*``
(that prefix: ``25`` matches ``25``, ``25.1``, ``v25.1.0``). Tags are versions when they look
like ``[v]N[.N[.N[.N]]][-PRE]``; other tags are ignored. A pre-release (any ``-suffix``) is
chosen only when a clause names a pre-release of the same version (as npm does).

``lock`` keeps the tag already locked while it satisfies the constraint, so ``lock --check``
does not fail just because a newer tag appeared; ``lock --upgrade`` picks the highest match
(``run_lock(..., upgrade=True)``, :mod:`toolfetch.lock.update`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolfetch.core.errors import NotFoundError, UsageError
from toolfetch.core.reference import LayoutReference, parse_any
from toolfetch.lock.config import Config, ToolSpec

if TYPE_CHECKING:
    from toolfetch.lock.lockfile import Lockfile
    from toolfetch.registry.sources import SourceFactory

_VERSION = re.compile(r"[vV]?(\d+(?:\.\d+){0,3})"
                      r"(?:[-_.]?([A-Za-z][0-9A-Za-z.-]*|-[0-9A-Za-z.-]+))?")
_CLAUSE = re.compile(r"(>=|<=|==|!=|~=|>|<|=|\^|~)?\s*(.+)")
_PAD = 4


@dataclass(frozen=True)
class Version:
    release: tuple[int, ...]
    pre: str = ""

    @classmethod
    def parse(cls, text: str) -> Version | None:
        m = _VERSION.fullmatch(text.strip())
        if not m:
            return None
        return cls(tuple(int(x) for x in m.group(1).split(".")), (m.group(2) or "").lstrip("-"))

    def padded(self) -> tuple[int, ...]:
        return self.release + (0,) * (_PAD - len(self.release))

    def key(self) -> tuple[Any, ...]:
        """Sort key: release, then a release above its pre-releases, then pre-release parts."""
        parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p)
                      for p in re.findall(r"\d+|[A-Za-z]+", self.pre))  # rc2 < rc10
        return self.padded(), 0 if self.pre else 1, parts


@dataclass(frozen=True)
class Clause:
    op: str
    version: Version
    wildcard: bool

    def matches(self, v: Version) -> bool:
        have, want = v.padded(), self.version.padded()
        n = len(self.version.release)
        if self.op in ("", "==", "=") and (self.wildcard or self.op == ""):
            return v.release[:n] == self.version.release and (
                not self.version.pre or v.pre == self.version.pre)
        if self.op in ("==", "="):
            return have == want and v.pre == self.version.pre
        if self.op == "!=":
            prefix = v.release[:n] == self.version.release
            return not (prefix if self.wildcard else have == want and v.pre == self.version.pre)
        cmp = (v.key() > self.version.key()) - (v.key() < self.version.key())
        if self.op == ">=":
            return cmp >= 0
        if self.op == ">":
            return cmp > 0
        if self.op == "<=":
            return cmp <= 0
        if self.op == "<":
            return cmp < 0
        upper = self._upper()
        return cmp >= 0 and have < upper

    def _upper(self) -> tuple[int, ...]:
        r = list(self.version.release)
        if self.op == "~=":  # drop the last component, bump the one before
            r = r[:-1] if len(r) > 1 else r
            r[-1] += 1
        elif self.op == "^":
            first = next((i for i, x in enumerate(r) if x != 0), len(r) - 1)
            r = r[: first + 1]
            r[-1] += 1
        else:  # "~": same minor when a minor is given, else same major
            r = r[:2] if len(r) >= 2 else r[:1]
            r[-1] += 1
        return tuple(r) + (0,) * (_PAD - len(r))


@dataclass(frozen=True)
class Constraint:
    text: str
    clauses: tuple[Clause, ...]

    @classmethod
    def parse(cls, text: str) -> Constraint:
        clauses = []
        for part in (p.strip() for p in text.split(",")):
            m = _CLAUSE.fullmatch(part) if part else None
            body = m.group(2).strip() if m else ""
            wildcard = body.endswith(".*")
            version = Version.parse(body[:-2] if wildcard else body)
            if m is None or version is None or (wildcard and m.group(1) not in (None, "==",
                                                                                   "=", "!=")):
                raise UsageError(f"malformed version constraint {text!r}: cannot read {part!r} "
                                 "(expected clauses like >=25,<26, ~=1.4, ^1.2, 1.28.*)")
            op = m.group(1) or ""
            if op == "~=" and len(version.release) < 2:
                raise UsageError(f"malformed version constraint {text!r}: ~= needs at least "
                                 "two components (~=1.4)")
            clauses.append(Clause(op, version, wildcard))
        return cls(text, tuple(clauses))

    def matches(self, v: Version) -> bool:
        # As npm: a pre-release only matches a clause naming a pre-release of that version.
        if v.pre and not any(c.version.pre and c.version.padded() == v.padded()
                             for c in self.clauses):
            return False
        return all(c.matches(v) for c in self.clauses)


def select_tag(tags: Iterable[str], constraint: Constraint) -> str | None:
    """The tag of the highest version matching ``constraint`` (None if none does)."""
    best: tuple[Any, ...] | None = None
    for tag in tags:
        v = Version.parse(tag)
        if v is not None and constraint.matches(v):
            key = (v.key(), len(v.release), tag)
            best = key if best is None or key > best else best
    return str(best[2]) if best else None


def _check_untagged(tool: ToolSpec, config: Config) -> str:
    where = f"{config.path}: $.tools.{tool.name}"
    if tool.per_platform is not None or tool.ref is None:
        raise UsageError(f"{where}: `version` needs a single `ref` (not a platforms mapping)")
    ref = parse_any(tool.ref, config.path.parent)
    explicit = (ref.tag is not None or ref.digest is not None) if isinstance(
        ref, LayoutReference) else ("@" in tool.ref or ":" in tool.ref.rpartition("/")[2])
    if explicit:
        raise UsageError(f"{where}: with `version`, `ref` names a repository without a tag or "
                         f"digest (got {tool.ref!r}); the tag is chosen from the constraint")
    return tool.ref


def locked_refs(lockfile: Lockfile | None) -> dict[str, tuple[dict[str, str], str]]:
    """Per tool: its fields as written and the ref its platforms were resolved from (no
    lockfile, or one that did not load, has none: everything is resolved afresh)."""
    out: dict[str, tuple[dict[str, str], str]] = {}
    for name, tool in (lockfile.tools.items() if lockfile is not None else ()):
        refs = sorted({entry.ref for entry in tool.platforms.values()})
        if len(refs) == 1:
            out[name] = (dict(tool.fields), refs[0])
    return out


def version_refs(config: Config, old: Lockfile | None, lockfile_path: Path,
                 names: Sequence[str], upgrade: bool, sources: SourceFactory) -> dict[str, str]:
    """The tagged ref to lock for every tool in ``names`` that has a ``version``; ``old`` is
    the lockfile being replaced (as ``lock`` read it: not read again here)."""
    from toolfetch.core.reference import rebase_layout_ref

    locked = {} if upgrade else locked_refs(old)
    out: dict[str, str] = {}
    for name in names:
        tool = config.tools[name]
        if not tool.version or tool.is_assets:  # an asset's version is informational
            continue
        base = _check_untagged(tool, config)
        try:
            constraint = Constraint.parse(tool.version)
        except UsageError as e:
            raise UsageError(f"{config.path}: $.tools.{name}.version: {e}") from e
        if name in locked and locked[name][0].get("ref") == tool.ref and \
                locked[name][0].get("version") == tool.version:
            previous = rebase_layout_ref(locked[name][1], lockfile_path.parent, config.path.parent)
            tag = parse_any(previous, config.path.parent).tag
            if tag is not None and (v := Version.parse(tag)) and constraint.matches(v):
                out[name] = f"{base}:{tag}"
                continue
        ref = parse_any(base, config.path.parent)
        what = f"tool {name} ({base})"
        tags = sources.first_success(ref, f"{what}: tags", lambda s: s.list_tags(),
                                     upstream_first=True)
        tag = select_tag(tags, constraint)
        if tag is None:
            shown = ", ".join(sorted(tags)[:20]) + (" …" if len(tags) > 20 else "")
            raise NotFoundError(f"{what}: no tag satisfies version {tool.version!r}; "
                                f"tags: {shown or 'none'}")
        out[name] = f"{base}:{tag}"
    return out
