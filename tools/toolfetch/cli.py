"""Command line. The only module that prints errors and exits.

A cache hit of ``which``/``run`` is served by :mod:`toolfetch.hitpath` before anything else
is imported (not even argparse or logging). Heavy modules (requests, yaml, jsonschema) are
imported inside the commands that need them.
"""

from __future__ import annotations

import os
import sys

from toolfetch import hitpath
from toolfetch.errors import MultipleErrors, ToolfetchError, UsageError

TYPE_CHECKING = False  # as typing.TYPE_CHECKING (mypy knows the name) without importing typing
if TYPE_CHECKING:
    import argparse
    import logging
    from collections.abc import Callable
    from pathlib import Path


def _log() -> logging.Logger:
    import logging

    return logging.getLogger("toolfetch")


def default_lockfile() -> Path:
    """lockfiles/tools.lock.json at the repository root (see :func:`hitpath.repo_root`)."""
    from pathlib import Path

    return Path(hitpath.default_lockfile())


def _setup_logging(verbose: int, quiet: bool) -> None:
    import logging

    class _Formatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return f"{record.levelname.lower()}: {record.getMessage()}"

    log = _log()
    for old in [h for h in log.handlers if getattr(h, "toolfetch_cli", False)]:
        log.removeHandler(old)  # main() called again in one process: one handler, not two
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    handler.toolfetch_cli = True  # type: ignore[attr-defined]
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.ERROR if quiet else logging.DEBUG if verbose else logging.WARNING)


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
    served = hitpath.try_hit(argv)
    if served is not None:
        return served
    return full_main(argv)


def full_main(argv: list[str]) -> int:
    """Every command, validated by argparse (the path when the hit path did not serve)."""
    from toolfetch.parser import build_parser

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
    except OSError as e:  # the local file system, where no command said what it was doing
        from toolfetch.errors import LocalIOError

        error = LocalIOError(f"{e.filename or 'local file system'}: {e.strerror or e}")
        error.__cause__ = e
        _print_error(error, verbose)
        return error.exit_code
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
    log = _log()
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
    from toolfetch.lockfile import validating

    if args.output is not None and len(args.tools) != 1:
        raise UsageError("--output needs exactly one TOOL")
    with validating(_lockfile_path(args)) as lockfile:
        platform = None if args.all_platforms else _platform_arg(args.platform)
        wants = plan(lockfile, args.tools, platform, args.all_platforms)
        fetcher = Fetcher(_cache(args), lockfile, offline=_offline(args), jobs=args.jobs,
                          progress=_progress(args))
        trees = fetcher.fetch(wants)
    if args.output is not None:
        materialize(trees[wants[0]], args.output.absolute())
    if args.json:
        out = [{"tool": w.tool, "platform": w.key, "tree": str(t),
                "path": str(t / w.entry.path)} for w, t in trees.items()]
        import json

        print(json.dumps(out, indent=2))
    else:
        for w, t in trees.items():
            _log().debug("%s: %s", w.what, t)
    return 0


def _locate(args: argparse.Namespace, platform_text: str | None) -> tuple[Path, str, str]:
    """(executable, tree dir, platform key): the hit path imports no heavy module."""
    from toolfetch.lockfile import Lockfile

    lockfile_path = _lockfile_path(args)
    lockfile = Lockfile.load_fast(lockfile_path)
    key, entry = lockfile.tool(args.tool).for_platform(_platform_arg(platform_text),
                                                       lockfile_path)
    cache = _cache(args)
    tree = cache.tree_path(entry.tree)
    exe = tree / entry.path
    if cache.has_tree(entry.tree) and os.path.lexists(exe):
        cache.touch_tree(entry.tree)
        return exe, str(tree), key
    from toolfetch.fetch import Fetcher, Want
    from toolfetch.lockfile import validating

    with validating(lockfile_path) as full:
        fetcher = Fetcher(cache, full, offline=_offline(args), progress=_progress(args))
        fetcher.fetch([Want(args.tool, key, entry)])  # NotFoundError if `path` is not there
    return exe, str(tree), key


def cmd_which(args: argparse.Namespace) -> int:
    exe, tree, key = _locate(args, args.platform)
    print(hitpath.which_output(args.tool, key, str(exe), tree, args.json))
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
