"""Command line. The only module that prints errors and exits.

Heavy modules (requests, yaml, jsonschema) are imported inside the commands that need them,
so the cache-hit path of ``which`` and ``run`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from toolfetch import __version__
from toolfetch.errors import MultipleErrors, ToolfetchError, UsageError

log = logging.getLogger("toolfetch")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        sys.stderr.write(f"error: {message}\n")
        raise SystemExit(2)


def repo_root(start: Path | None = None) -> Path:
    """The nearest parent holding ``.git``, else the current directory."""
    here = (start or Path.cwd()).absolute()
    for candidate in (here, *here.parents):
        if (candidate / ".git").exists():
            return candidate
    return here


def default_lockfile() -> Path:
    return repo_root() / "lockfiles" / "tools.lock.json"


def add_global_options(p: argparse.ArgumentParser, suppress: bool) -> None:
    d: dict[str, Any] = {"default": argparse.SUPPRESS} if suppress else {}
    p.add_argument("--cache-dir", metavar="DIR", help="cache root (default: $TOOLFETCH_CACHE_DIR, "
                   "$XDG_CACHE_HOME/toolfetch or ~/.cache/toolfetch)", **d)
    p.add_argument("-v", "--verbose", action="count", help="more output", **(
        d if suppress else {"default": 0}))
    p.add_argument("-q", "--quiet", action="store_true", help="only errors", **d)
    p.add_argument("--no-progress", action="store_true", help="no progress bars", **d)


def _lockfile_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lockfile", type=Path, metavar="F",
                   help="default: lockfiles/tools.lock.json at the repository root")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="toolfetch", description="Hermetic, OCI-native tool fetcher.")
    parser.add_argument("--version", action="version", version=f"toolfetch {__version__}")
    add_global_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_global_options(p, suppress=True)
        return p

    p = command("lock", "resolve tools.yaml references into the lockfile")
    p.add_argument("--config", type=Path, metavar="F",
                   help="default: tools.yaml beside the lockfile")
    _lockfile_arg(p)
    p.add_argument("--check", action="store_true", help="write nothing; exit 7 if out of date")
    p.add_argument("--upgrade", action="store_true", help="move tools with a `version` "
                   "constraint to the highest matching tag (prints old -> new)")
    p.add_argument("--jobs", type=int, default=8, metavar="N")
    p.add_argument("tools", nargs="*", metavar="TOOL")

    p = command("fetch", "make locked tools present in the cache")
    _lockfile_arg(p)
    p.add_argument("tools", nargs="*", metavar="TOOL")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--platform", metavar="OS/ARCH", help="default: this host")
    g.add_argument("--all-platforms", action="store_true")
    p.add_argument("--offline", action="store_true", help="never touch the network (exit 6 if "
                   "something is missing)")
    p.add_argument("--jobs", type=int, default=4, metavar="N", help="parallel downloads")
    p.add_argument("--output", type=Path, metavar="DIR", help="also materialise the (single) "
                   "tool's tree into DIR by hardlinks or copies (for build-system shims)")
    p.add_argument("--json", action="store_true", help="print what was fetched as JSON")

    p = command("which", "print the absolute path of a tool's executable")
    _lockfile_arg(p)
    p.add_argument("tool", metavar="TOOL")
    p.add_argument("--platform", metavar="OS/ARCH")
    p.add_argument("--offline", action="store_true")
    p.add_argument("--json", action="store_true")

    p = command("run", "run a tool (its exit code passes through)")
    _lockfile_arg(p)
    p.add_argument("--offline", action="store_true")
    p.add_argument("tool", metavar="TOOL")
    p.add_argument("args", nargs=argparse.REMAINDER, metavar="-- ARGS")

    p = command("bootstrap", "fetch every tool for this host and write launchers")
    _lockfile_arg(p)
    p.add_argument("--bin-dir", type=Path, default=Path("bin"), metavar="DIR")
    p.add_argument("--offline", action="store_true")
    p.add_argument("--jobs", type=int, default=4, metavar="N")

    from toolfetch import cache_admin, commands, login

    cache_admin.register(command)
    commands.register(command)
    login.register(command)
    return parser


def _setup_logging(verbose: int, quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.ERROR if quiet else logging.DEBUG if verbose else logging.WARNING)


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


def _print_error(e: BaseException, verbose: int) -> None:
    errors = e.errors if isinstance(e, MultipleErrors) else [e]
    for err in errors:
        sys.stderr.write(f"error: {err}\n")
        seen = {str(err)}
        cause = err.__cause__
        while cause is not None:
            text = str(cause) or type(cause).__name__
            if text not in seen:
                sys.stderr.write(f"  caused by: {text}\n")
                seen.add(text)
            cause = cause.__cause__
    if verbose:
        import traceback

        traceback.print_exception(e)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose = getattr(args, "verbose", 0) or 0
    _setup_logging(verbose, getattr(args, "quiet", False))
    try:
        return _dispatch(args)
    except ToolfetchError as e:
        _print_error(e, verbose)
        return e.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        return 130
    except BrokenPipeError:
        return 1
    except Exception as e:  # a bug: say so, show the traceback only with -v
        sys.stderr.write(f"error: internal error: {type(e).__name__}: {e}\n")
        if verbose:
            import traceback

            traceback.print_exception(e)
        else:
            sys.stderr.write("  (run with -v for a traceback, and please report it)\n")
        return 1


def _cache(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from toolfetch.cache import Cache, default_root

    return Cache(default_root(getattr(args, "cache_dir", None)))


def _offline(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "offline", False)) or os.environ.get("TOOLFETCH_OFFLINE") == "1"


def _progress(args: argparse.Namespace) -> bool:
    from toolfetch.progress import enabled

    return enabled(not getattr(args, "no_progress", False) and not getattr(args, "quiet", False))


def _lockfile_path(args: argparse.Namespace) -> Path:
    return (args.lockfile or default_lockfile()).absolute()


def _dispatch(args: argparse.Namespace) -> int:
    handler = {
        "lock": cmd_lock, "fetch": cmd_fetch, "which": cmd_which, "run": cmd_run,
        "bootstrap": cmd_bootstrap,
    }.get(args.command)
    if handler is not None:
        return handler(args)
    run: Callable[[argparse.Namespace], int] = args.run  # set by the module that registered it
    return run(args)


def cmd_lock(args: argparse.Namespace) -> int:
    from toolfetch.config import Config
    from toolfetch.lock import run_lock

    lockfile = _lockfile_path(args)
    config_path = (args.config or lockfile.parent / "tools.yaml").absolute()
    config = Config.load(config_path)
    if args.upgrade:
        if args.check:
            raise UsageError("lock: --upgrade and --check exclude each other")
        from toolfetch.upgrade import upgrade_refs

        for tool, (old, new) in upgrade_refs(config, lockfile, args.tools).items():
            print(f"{tool}: {old or '(not locked)'} -> {new}" if old != new
                  else f"{tool}: {new} (up to date)")
        return 0
    _, changed = run_lock(config, lockfile, args.tools, args.check, args.jobs, _progress(args))
    if args.check:
        log.info("%s is up to date", lockfile)
    elif changed:
        log.info("wrote %s", lockfile)
    return 0


def _platform_arg(value: str | None):  # type: ignore[no-untyped-def]
    from toolfetch.platform import Platform, host_platform

    return Platform.parse(value) if value else host_platform()


def cmd_fetch(args: argparse.Namespace) -> int:
    from toolfetch.fetch import Fetcher, materialize, plan
    from toolfetch.lockfile import Lockfile

    lockfile = Lockfile.load(_lockfile_path(args))
    platform = None if args.all_platforms else _platform_arg(args.platform)
    if args.output is not None and len(args.tools) != 1:
        raise UsageError("--output needs exactly one TOOL")
    wants = plan(lockfile, args.tools, platform, args.all_platforms)
    fetcher = Fetcher(_cache(args), lockfile, offline=_offline(args), jobs=args.jobs,
                      progress=_progress(args))
    trees = fetcher.fetch(wants)
    if args.output is not None:
        materialize(trees[wants[0]], args.output.absolute())
    if args.json:
        out = [{"tool": w.tool, "platform": w.key, "tree": str(t),
                "path": str(t / w.entry.path)} for w, t in trees.items()]
        print(json.dumps(out, indent=2))
    else:
        for w, t in trees.items():
            log.debug("%s: %s", w.what, t)
    return 0


def _locate(args: argparse.Namespace, platform_text: str | None) -> tuple[Path, str, str]:
    """(executable, tree dir, platform key): the hit path imports no heavy module."""
    from toolfetch.lockfile import Lockfile

    lockfile_path = _lockfile_path(args)
    lockfile = Lockfile.load_fast(lockfile_path)
    key, entry = lockfile.tool(args.tool).for_platform(_platform_arg(platform_text),
                                                       lockfile_path)
    cache = _cache(args)
    tree = cache.tree_path(entry.manifest)
    exe = tree / entry.path
    if cache.has_tree(entry.manifest) and os.path.lexists(exe):
        cache.touch_tree(entry.manifest)
        return exe, str(tree), key
    from toolfetch.fetch import Fetcher, Want

    full = Lockfile.load(lockfile_path)  # validate properly before touching the network
    fetcher = Fetcher(cache, full, offline=_offline(args), progress=_progress(args))
    fetcher.fetch([Want(args.tool, key, entry)])
    if not exe.exists():
        raise UsageError(f"tool {args.tool}: {entry.path} is not in its unpacked artifact "
                         f"{tree} (check `path` in tools.yaml)")
    return exe, str(tree), key


def cmd_which(args: argparse.Namespace) -> int:
    exe, tree, key = _locate(args, args.platform)
    if args.json:
        print(json.dumps({"tool": args.tool, "platform": key, "path": str(exe), "tree": tree}))
    else:
        print(exe)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    exe, _, _ = _locate(args, None)
    argv = list(args.args)
    if argv and argv[0] == "--":
        argv = argv[1:]
    sys.stdout.flush()
    if os.name == "nt":
        import subprocess

        return subprocess.call([str(exe), *argv])
    try:
        os.execv(exe, [str(exe), *argv])
    except OSError as e:
        raise UsageError(f"tool {args.tool}: cannot execute {exe}: {e.strerror}") from e


def cmd_bootstrap(args: argparse.Namespace) -> int:
    from toolfetch.launchers import bootstrap

    return bootstrap(args, _cache(args), _lockfile_path(args), _offline(args), _progress(args))
