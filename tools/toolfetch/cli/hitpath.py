"""The cache-hit path of ``which``, ``run`` and ``fetch``: ``os`` and ``sys`` only.

``toolfetch which TOOL`` and ``toolfetch run TOOL`` sit in front of every tool invocation and
``toolfetch fetch`` in front of every CI build, so a hit must cost little more than starting
the interpreter. :func:`try_hit` serves the spellings those commands are given when the answer
is certain. It parses argv by hand, reads the lockfile index (:mod:`toolfetch.core.lockindex`,
written by the full path, so no JSON is parsed here), finds each wanted tree (host platform,
or ``--platform``, or every locked platform with ``fetch --all-platforms``), checks that its
record and executable exist, touches the record (the LRU clock, no lock) and prints the path,
execs the tool, or, for ``fetch``, returns 0. ``fetch`` is served only from an index that says
the lockfile passed its JSON schema, as the full ``fetch`` requires.

In every other case (another flag, ``-v``, a missing tree or index, a platform that needs
variant matching, ``fetch --output``, Windows) it returns ``None`` and the full CLI runs
instead, which validates, fetches, reports errors and writes the index. It never reports an
error itself, so it cannot disagree with the full path, only short-cut it.
"""

from __future__ import annotations

import os
import sys

from toolfetch.core import lockindex
from toolfetch.core.host import cache_root, default_lockfile, env_flag, host_key

_GLOBAL_FLAGS = ("-q", "--quiet", "--no-progress")
_OPTIONS = {"which": ("--lockfile", "--platform"), "run": ("--lockfile", "--arg0"),
            "fetch": ("--lockfile", "--platform", "--jobs")}
_FLAGS = {"which": ("--offline", "--json"), "run": ("--offline",),
          "fetch": ("--offline", "--json", "--all-platforms")}
Parsed = tuple[str, dict[str, str], list[str], list[str]]  # command, options, TOOLs, run args


def which_output(tool: str, key: str, exe: str, tree: str, as_json: bool) -> str:
    """What ``which`` prints, on either path."""
    if as_json:
        import json  # only here: it imports `re`, as long as starting the interpreter

        return json.dumps({"tool": tool, "platform": key, "path": exe, "tree": tree})
    return exe


def run_argv0(tool: str, exe: str, mode: str, given: str | None) -> str:
    """argv[0] of a tool ``run`` starts, on either path: its executable's path, or with
    ``arg0: tool`` the name it was invoked by (a launcher's ``--arg0 "$0"``, else the tool's
    name), as DotSlash gives a tool its DotSlash file's name (multi-call binaries need it)."""
    if mode != "tool":
        return exe
    return given or tool


def fetch_json(found: list[tuple[str, str, str, str]]) -> str:
    """What ``fetch --json`` prints, on either path: (tool, platform key, tree, exe) each."""
    import json

    return json.dumps([{"tool": t, "platform": k, "tree": tree, "path": exe}
                       for t, k, tree, exe in found], indent=2)


def _parse(argv: list[str]) -> Parsed | None:
    """The command, its options and positionals, for the spellings served here.

    Options may come before or after the command and, but for ``run``, after TOOL (as
    argparse takes them); after ``run``'s TOOL everything belongs to the tool.
    """
    opts: dict[str, str] = {}
    positionals: list[str] = []
    i, command, after = 0, "", False  # after: an option came after the positionals
    while i < len(argv):
        arg = argv[i]
        if command == "run" and positionals:
            return command, opts, positionals, argv[i:]
        name, eq, value = arg.partition("=")
        if arg.startswith("--") and name in ("--cache-dir", *_OPTIONS.get(command, ())):
            if not eq:
                if i + 1 >= len(argv):
                    return None
                i, value = i + 1, argv[i + 1]
            if name in opts or not value or value.startswith("-"):
                return None
            opts[name] = value
        elif arg in _GLOBAL_FLAGS or (command and arg in _FLAGS[command]):
            opts[arg] = ""
        elif not command and arg in _OPTIONS:
            command = arg
        elif command and not arg.startswith("-"):
            if after:
                return None  # TOOLs split by an option: argparse refuses the second run
            positionals.append(arg)
            i += 1
            continue
        else:
            return None
        after = bool(positionals)
        i += 1
    return (command, opts, positionals, []) if command else None


def _clean_relative(path: str) -> bool:
    """A relative ``/``-path that ``pathlib`` would print unchanged when joined."""
    if not path or "\\" in path or "\x00" in path:
        return False
    return all(part not in ("", ".", "..") for part in path.split("/"))


_PLATFORM_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")


def _plain_platform(text: str) -> bool:
    """``os/arch[/variant]`` in lower case, which the full path parses to itself (anything
    else it normalises or refuses: ``*``, ``Linux/AMD64``, ``linux/``)."""
    parts = text.split("/")
    return len(parts) in (2, 3) and all(
        _PLATFORM_CHARS.issuperset(p) and p.strip("_-") for p in parts)


def _key(index: lockindex.LockIndex, tool: str, platform: str | None) -> str | None:
    """The platform key the full path would pick when it needs no variant matching."""
    if platform is not None and not _plain_platform(platform):
        return None  # the full path refuses it (exit 2) or normalises its spelling first
    keys = index.keys(tool)
    key = platform or host_key()
    if key in keys:
        return key
    return "*" if platform is None and keys == ["*"] else None


def _unavailable(index: lockindex.LockIndex, tool: str, opts: dict[str, str]) -> bool:
    """Whether ``tool`` certainly has no entry for the platform: not ``*`` and no key of the
    same ``os/arch`` (variant matching is the full path's), for a plain ``os/arch``."""
    platform = opts.get("--platform") or host_key()
    parts = platform.split("/")
    keys = index.keys(tool)
    return (len(parts) == 2 and _plain_platform(platform) and "*" not in keys
            and not any(k.split("/")[:2] == parts for k in keys))


def _present(root: str, index: lockindex.LockIndex, tool: str,
             key: str) -> tuple[str, str, str] | None:
    """(executable, tree, record) of a cached tree, else None."""
    hexpart, path, _ = index.entries[(tool, key)]
    if len(hexpart) != 64 or not _clean_relative(path):
        return None
    tree = os.path.join(root, "trees", "sha256", hexpart[:2], hexpart[2:4], hexpart)
    exe, record = os.path.join(tree, path), tree + ".json"
    return (exe, tree, record) if os.path.isfile(record) and os.path.lexists(exe) else None


def _touch(record: str) -> None:
    try:  # noqa: SIM105 (contextlib would cost an import on every hit)
        os.utime(record)
    except OSError:
        pass  # a read-only cache is still usable


def _fetch(root: str, index: lockindex.LockIndex, opts: dict[str, str],
           tools: list[str]) -> int | None:
    if not index.validated or ("--platform" in opts and "--all-platforms" in opts):
        return None
    if not tools and not index.complete:
        return None  # a tool the index could not hold: only the full path can vouch for it
    jobs = opts.get("--jobs", "1")
    if not jobs.isdigit() or int(jobs) < 1:
        return None  # the full path's message for a malformed number or one below 1
    found: list[tuple[str, str, str, str]] = []  # tool, key, tree, exe
    skipped: list[str] = []  # warnings, as ops.plan.plan gives them
    for tool in sorted(set(tools)) if tools else index.tools():  # as ops.plan.plan orders
        keys = index.keys(tool) if "--all-platforms" in opts else [
            _key(index, tool, opts.get("--platform"))]
        if keys == [None] and not tools and _unavailable(index, tool, opts):
            skipped.append(lockindex.unavailable_warning(
                tool, opts.get("--platform") or host_key(), index.keys(tool)))
            continue
        if not keys or None in keys:
            return None
        for key in keys:
            assert key is not None
            hit = _present(root, index, tool, key)
            if hit is None:
                return None
            found.append((tool, key, hit[1], hit[0]))
    for _, _, tree, _ in found:
        _touch(tree + ".json")
    if not ("-q" in opts or "--quiet" in opts):
        for warning in skipped:
            sys.stderr.write(f"warning: {warning}\n")
    if "--json" in opts:
        print(fetch_json(found))
    return 0


def try_hit(argv: list[str]) -> int | None:
    """Serve ``which``/``run``/``fetch`` from the cache, or return None for the full CLI."""
    if os.name == "nt" or env_flag("TOOLFETCH_OFFLINE") is None:
        return None  # the full path refuses a malformed value (exit 2)
    parsed = _parse(argv)
    if parsed is None:
        return None
    command, opts, positionals, args = parsed
    if command in ("which", "run") and len(positionals) != 1:
        return None
    lockfile = os.path.realpath(opts.get("--lockfile") or default_lockfile())  # absolute too
    root = cache_root(opts.get("--cache-dir"))
    index = lockindex.read(root, lockfile)
    if index is None:
        return None
    if command == "fetch":
        return _fetch(root, index, opts, positionals)
    tool = positionals[0]
    key = _key(index, tool, opts.get("--platform"))
    hit = None if key is None else _present(root, index, tool, key)
    if key is None or hit is None:
        return None
    exe, tree, record = hit
    _touch(record)
    if command == "which":
        print(which_output(tool, key, exe, tree, "--json" in opts))
        return 0
    if args and args[0] == "--":
        args = args[1:]
    sys.stdout.flush()
    argv0 = run_argv0(tool, exe, index.entries[(tool, key)][2], opts.get("--arg0"))
    try:
        os.execv(exe, [argv0, *args])
    except OSError:
        return None  # the full path says why it cannot run
    return None  # not reached
