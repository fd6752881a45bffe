"""The lockfile index: a lockfile compiled for the hit path (``os`` and ``sys`` only).

Parsing ``tools.lock.json`` costs the hit path more than everything else it does: the ``json``
module imports ``re``, about as long as starting the interpreter. So whenever the full path has
loaded a lockfile it writes, best effort, an index of it into the cache:
``<cache>/lockfiles/<sha256 of the lockfile's real path>``, a few lines of text holding

* the toolfetch version and unpack rules it was written by (an upgrade ignores old indexes),
* the lockfile's path and stat fingerprint (device, inode, size, mtime and ctime in
  nanoseconds) as it was when read: any change to the file changes its ctime, so an index
  never outlives the content it was made from,
* whether the lockfile passed its JSON schema (``fetch`` needs that; ``which``/``run`` check
  by hand only, as the full path does),
* how many tools the lockfile has,
* one line per tool and platform key: the tree key, the executable's path and the tool's
  ``arg0`` mode (what it is given as argv[0]).

A field with a tab or line break cannot be written on a line; every entry of such a tool is
left out (the hit path then sends it to the full path), and the tool count, which still
counts it, tells the hit path the index cannot vouch for the whole lockfile.

The hit path reads the index instead of the lockfile; an index that is absent, stale, or
unreadable sends it to the full path, which writes a new one. Nothing in the index is trusted
more than the cache it lives in: trees are still checked on disk before they are served.

The schema verdict is also kept by content: ``<cache>/lockfiles/valid-<sha256>``, an empty
file named by the digest of the toolfetch version, unpack rules and lockfile bytes. A fresh
clone (new inode and mtime) with a restored cache, or a copy of the lockfile elsewhere, then
skips jsonschema too: the schema is checked once per lockfile content, not per checkout.
"""

from __future__ import annotations

import os

from toolfetch.core.treekey import UNPACK_RULES, sha256
from toolfetch.core.version import __version__

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing on the hit path
if TYPE_CHECKING:
    from collections.abc import Iterable

MAGIC = "toolfetch-lockindex 3"
VERDICT_PREFIX = "valid-"
# (tool, platform key) -> (tree key hex, executable path inside the tree, arg0 mode)
Entries = dict[tuple[str, str], tuple[str, str, str]]
_HEAD = 5  # header, lockfile, stat, validated, tools; then the entries and "end"


#: the cache's directory of lockfile indexes and schema verdicts
INDEX_DIR = "lockfiles"


def index_path(cache_root: str, lockfile: str) -> str:
    """Where the index of ``lockfile`` (a real, absolute path) lives in the cache."""
    return os.path.join(cache_root, INDEX_DIR, sha256(lockfile.encode()).hexdigest())


def verdict_path(cache_root: str, content: bytes) -> str:
    key = sha256(_header().encode() + b"\n" + content).hexdigest()
    return os.path.join(cache_root, INDEX_DIR, f"{VERDICT_PREFIX}{key}")


def known_valid_content(cache_root: str, content: bytes) -> bool:
    """Whether lockfile bytes equal to ``content`` passed the schema in this cache before."""
    try:
        os.utime(verdict_path(cache_root, content))  # last use, for gc
    except FileNotFoundError:
        return False
    except OSError:
        pass  # there, in a read-only cache
    return True


def record_valid_content(cache_root: str, content: bytes) -> None:
    """Best effort: remember that ``content`` passed the schema."""
    path = verdict_path(cache_root, content)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o644))
    except OSError:
        return


def unavailable_warning(tool: str, platform: str, keys: Iterable[str]) -> str:
    """What ``fetch``, ``bootstrap`` and ``export`` without tool names say, on the full path
    and the hit path alike, when they skip a tool locked for other platforms only."""
    return (f"tool {tool} is not available for {platform} (locked for: "
            f"{', '.join(sorted(keys))}); skipped (naming it makes this an error)")


def fingerprint(st: os.stat_result) -> str:
    return f"{st.st_dev} {st.st_ino} {st.st_size} {st.st_mtime_ns} {st.st_ctime_ns}"


def _header() -> str:
    return f"{MAGIC} toolfetch={__version__} rules={UNPACK_RULES}"


class LockIndex:
    """What an index says about one lockfile."""

    __slots__ = ("complete", "entries", "validated")

    def __init__(self, entries: Entries, validated: bool, complete: bool = True) -> None:
        self.entries = entries
        self.validated = validated
        # False: some tool of the lockfile is not in ``entries`` (it could not be written).
        self.complete = complete

    def keys(self, tool: str) -> list[str]:
        """The platform keys ``tool`` is locked for, sorted; [] for an unknown tool."""
        return sorted(k for t, k in self.entries if t == tool)

    def tools(self) -> list[str]:
        return sorted({t for t, _ in self.entries})

    def lists(self, rows: Iterable[tuple[str, str, str, str, str]]) -> bool:
        """Whether this index is what :func:`write` writes for ``rows``, a lockfile's pins
        (tool, platform key, tree key hex, path, arg0 mode): the full path and ``cache
        verify`` trust no index its lockfile does not re-derive."""
        entries, count = _rows(rows)
        return self.entries == entries and self.complete == (
            len({t for t, _ in entries}) == count)


def read(cache_root: str, lockfile: str, st: os.stat_result | None = None) -> LockIndex | None:
    """The index of ``lockfile`` if it is there and still describes the file (as ``st``
    says, else as it is now), else None."""
    try:
        with open(index_path(cache_root, lockfile), encoding="utf-8") as f:
            lines = f.read().split("\n")
        if st is None:
            st = os.stat(lockfile)
    except (OSError, ValueError):
        return None
    if len(lines) < _HEAD + 1 or lines[0] != _header() or lines[1] != f"lockfile\t{lockfile}" or (
            lines[2] != f"stat\t{fingerprint(st)}") or lines[-1] != "end":
        return None
    count = lines[4].partition("\t")[2]
    if not lines[4].startswith("tools\t") or not count.isdigit():
        return None
    entries: Entries = {}
    for line in lines[_HEAD:-1]:
        fields = line.split("\t")
        if len(fields) != 6 or fields[0] != "tool":
            return None
        entries[(fields[1], fields[2])] = (fields[3], fields[4], fields[5])
    complete = len({t for t, _ in entries}) == int(count)
    return LockIndex(entries, lines[3] == "validated\t1", complete)


def read_any(cache_root: str, path: str) -> LockIndex | None:
    """The index stored at ``path`` if it still describes the lockfile it names (for gc)."""
    found = described(cache_root, path)
    return None if found is None else found[1]


def described(cache_root: str, path: str) -> tuple[str, LockIndex] | None:
    """(the lockfile it names, the index) for the index stored at ``path``, if it still
    describes that lockfile as it is now (``cache verify``, gc)."""
    try:
        with open(path, encoding="utf-8") as f:
            second = f.read().split("\n", 2)[1]
    except (OSError, ValueError, IndexError):
        return None
    lockfile = second.partition("\t")[2]
    if not second.startswith("lockfile\t") or index_path(cache_root, lockfile) != path:
        return None
    found = read(cache_root, lockfile)
    return None if found is None else (lockfile, found)


def record(cache_root: str, lockfile: str, st: os.stat_result,
           rows: Iterable[tuple[str, str, str, str, str]], validated: bool) -> None:
    """Index ``lockfile`` (stat'ed ``st`` before it was read; ``rows`` its pins) unless an
    index that says as much (``validated``) and lists exactly ``rows`` is there: any other,
    one its lockfile does not re-derive (rewritten by hand, say), is replaced."""
    rows = list(rows)
    found = read(cache_root, lockfile, st)
    if found is None or found.validated < validated or not found.lists(rows):
        write(cache_root, lockfile, st, rows, validated)


def known_valid(cache_root: str, lockfile: str, st: os.stat_result,
                rows: Iterable[tuple[str, str, str, str, str]]) -> bool:
    """Whether the index of ``lockfile`` says it passed the schema and lists its ``rows``."""
    found = read(cache_root, lockfile, st)
    return found is not None and found.validated and found.lists(rows)


def write(cache_root: str, lockfile: str, before: os.stat_result,
          entries: Iterable[tuple[str, str, str, str, str]], validated: bool) -> None:
    """Record what the full path read from ``lockfile`` (stat'ed ``before`` reading it);
    best effort: a read-only or missing cache, or a file changed meanwhile, writes nothing.

    ``entries``: (tool, platform key, tree key hex, path, arg0 mode). A tool with a tab or a
    line break in any field of any entry is left out whole: keeping its other entries would
    let the hit path pick one (``*``, say) where the full path picks the one left out.
    """
    try:
        if fingerprint(os.stat(lockfile)) != fingerprint(before):
            return  # changed while it was read: the index could describe neither version
        written, count = _rows(entries)
        lines = [_header(), f"lockfile\t{lockfile}", f"stat\t{fingerprint(before)}",
                 f"validated\t{int(validated)}", f"tools\t{count}"]
        lines += ["\t".join(("tool", *k, *v)) for k, v in sorted(written.items())]
        lines.append("end")
        path = index_path(cache_root, lockfile)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        from toolfetch.core.tempnames import temp_name  # not on the hit path's way

        temp = os.path.join(os.path.dirname(path), temp_name(os.path.basename(path), ".tmp"))
        try:
            with open(temp, "w", encoding="utf-8") as f:
                f.write("\n".join(lines))
            os.replace(temp, path)
        except OSError:
            os.unlink(temp)  # a full disk leaves no half-written index behind
            raise
    except OSError:
        return


def _rows(rows: Iterable[tuple[str, str, str, str, str]]) -> tuple[Entries, int]:
    """The entries an index holds for a lockfile's ``rows``, and its tool count: a tool with a
    tab or a line break in any field of any row is left out whole (see :func:`write`)."""
    rows = list(rows)
    unwritable = {e[0] for e in rows if any(c in f for f in e for c in "\t\n\r")}
    entries = {(t, k): (tree, path, arg0) for t, k, tree, path, arg0 in rows
               if t not in unwritable}
    return entries, len({e[0] for e in rows})
