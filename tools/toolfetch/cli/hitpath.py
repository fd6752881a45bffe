"""The cache-hit path of ``which`` and ``run``: ``os``, ``sys``, ``json`` and the tree key.

``toolfetch which TOOL`` and ``toolfetch run TOOL`` sit in front of every tool invocation, so
their hit must cost little more than starting the interpreter. :func:`try_hit` serves the
common spellings of those two commands when the answer is certain: it reads argv and the
lockfile by hand, finds the tree for the host (or ``--platform``) key (the digest of its
recipe, :mod:`toolfetch.core.treekey`), checks that its record and executable exist, touches the
record (the LRU clock, no lock) and prints the path or execs the tool. In every other case
(another flag, ``-v``, a missing tree, a lockfile field it does not like, a platform that
needs variant matching, Windows) it returns ``None`` and the full CLI runs instead, which
validates, fetches and reports errors. It never reports an error itself, so it cannot
disagree with the full path, only short-cut it.

The facts both paths need (host platform, cache root, repository root) live in
:mod:`toolfetch.core.host`.
"""

from __future__ import annotations

import json
import os
import sys

from toolfetch.core.host import cache_root, default_lockfile, host_key
from toolfetch.core.treekey import tree_key

_HEX = frozenset("0123456789abcdef")
_UNPACK = ("raw", "tar", "tar+gzip", "tar+zstd", "zip")
_GLOBAL_FLAGS = ("-q", "--quiet", "--no-progress")
_OPTIONS = {"which": ("--lockfile", "--platform"), "run": ("--lockfile",)}
_FLAGS = {"which": ("--offline", "--json"), "run": ("--offline",)}


def which_output(tool: str, key: str, exe: str, tree: str, as_json: bool) -> str:
    """What ``which`` prints, on either path."""
    if as_json:
        return json.dumps({"tool": tool, "platform": key, "path": exe, "tree": tree})
    return exe


def _parse(argv: list[str]) -> tuple[str, dict[str, str], list[str]] | None:
    """(command, options, rest) for the spellings served here; ``rest`` starts at TOOL."""
    opts: dict[str, str] = {}
    i, command = 0, ""
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        allowed = ("--cache-dir", *_OPTIONS.get(command, ()))
        if name in allowed:
            if not eq:
                if i + 1 >= len(argv):
                    return None
                i, value = i + 1, argv[i + 1]
            if name in opts or not value:
                return None
            opts[name] = value
        elif arg in _GLOBAL_FLAGS or (command and arg in _FLAGS[command]):
            opts[arg] = ""
        elif not command and arg in _OPTIONS:
            command = arg
        elif command and not arg.startswith("-"):
            return command, opts, argv[i:]
        else:
            return None
        i += 1
    return None


def _is_digest(value: object) -> bool:
    if not isinstance(value, str):
        return False
    algo, _, hexpart = value.partition(":")
    return algo == "sha256" and len(hexpart) == 64 and _HEX.issuperset(hexpart)


def _is_layer(layer: object) -> bool:
    """The fields the full path checks by hand (Lockfile.load_fast), checked the same way."""
    if not isinstance(layer, dict) or not _is_digest(layer.get("digest")):
        return False
    size, title = layer.get("size"), layer.get("title")
    return (type(size) is int and size >= 0 and isinstance(layer.get("mediaType"), str)
            and layer.get("unpack") in _UNPACK and (title is None or isinstance(title, str)))


def _clean_relative(path: object) -> bool:
    """A relative ``/``-path that ``pathlib`` would print unchanged when joined."""
    if not isinstance(path, str) or not path or "\\" in path or "\x00" in path:
        return False
    return all(part not in ("", ".", "..") for part in path.split("/"))


def _locate(lockfile: str, tool: str, platform: str | None,
            root: str) -> tuple[str, str, str, str] | None:
    """(executable, tree, record, platform key) of a cached tool, else None."""
    try:
        with open(lockfile, "rb") as f:
            data = json.loads(f.read())
        platforms = data["tools"][tool]["platforms"]
        if data["version"] != 1 or not isinstance(platforms, dict):
            return None
        key = platform or host_key()
        if key not in platforms:
            # Variant matching, a spelling to normalise, errors: the full path's job.
            if platform or "*" not in platforms or any(k != "*" for k in platforms):
                return None
            key = "*"
        entry = platforms[key]
        layers = entry["layers"]
        if not _is_digest(entry["manifest"]) or not isinstance(layers, list) or not layers or (
                not all(_is_layer(layer) for layer in layers)):
            return None
        hexpart = tree_key(layers).partition(":")[2]
        path = entry["path"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if not _clean_relative(path):
        return None
    tree = os.path.join(root, "trees", "sha256", hexpart[:2], hexpart[2:4], hexpart)
    exe = os.path.join(tree, path)
    record = tree + ".json"
    if not (os.path.isfile(record) and os.path.lexists(exe)):
        return None
    return exe, tree, record, key


def try_hit(argv: list[str]) -> int | None:
    """Serve ``which``/``run`` from the cache, or return None for the full CLI to run."""
    if os.name == "nt":
        return None
    parsed = _parse(argv)
    if parsed is None:
        return None
    command, opts, rest = parsed
    if command == "which" and len(rest) != 1:
        return None
    lockfile = os.path.abspath(opts.get("--lockfile") or default_lockfile())
    found = _locate(lockfile, rest[0], opts.get("--platform"), cache_root(opts.get("--cache-dir")))
    if found is None:
        return None
    exe, tree, record, key = found
    try:  # noqa: SIM105 (contextlib would cost an import on every hit)
        os.utime(record)
    except OSError:
        pass  # a read-only cache is still usable
    if command == "which":
        print(which_output(rest[0], key, exe, tree, "--json" in opts))
        return 0
    args = rest[1:]
    if args and args[0] == "--":
        args = args[1:]
    sys.stdout.flush()
    try:
        os.execv(exe, [exe, *args])
    except OSError:
        return None  # the full path says why it cannot run
    return None  # not reached
