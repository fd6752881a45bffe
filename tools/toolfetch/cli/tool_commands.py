"""``lock``, ``fetch``, ``which``, ``run`` and ``bootstrap``: the commands builds run."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from pathlib import Path

from toolfetch.cli.common import (
    Command,
    cache_of,
    config_of,
    jobs_arg,
    json_arg,
    lockfile_arg,
    lockfile_of,
    offline,
    offline_arg,
    platform_arg,
    platform_of,
    progress,
    quiet,
)
from toolfetch.cli.hitpath import fetch_json, run_argv0, which_output
from toolfetch.core.errors import UsageError

log = logging.getLogger("toolfetch")


def register(command: Command) -> None:
    p = command("lock", "resolve tools.yaml references into the lockfile")
    p.add_argument("--config", type=Path, metavar="F",
                   help="tools.yaml (default: $TOOLFETCH_CONFIG, else beside --lockfile, else "
                   "lockfiles/tools.yaml or tools.yaml at the repository root)")
    lockfile_arg(p)
    p.add_argument("--check", action="store_true", help="write nothing; exit 7 if out of date")
    p.add_argument("--upgrade", action="store_true", help="move tools with a `version` "
                   "constraint to the highest matching tag (prints old -> new)")
    p.add_argument("--refresh-assets", action="store_true", help="download HTTP assets "
                   "again and re-check their sha256 (otherwise pins of unchanged entries are "
                   "kept without network)")
    jobs_arg(p, 8, "parallel registry requests")
    p.add_argument("tools", nargs="*", metavar="TOOL",
                   help="lock only these tools, keeping the others' pins (default: all)")
    p.set_defaults(run=cmd_lock)

    p = command("verify", "check locked tools' signatures against tools.yaml's `verify:` "
                "policies again and print who signed each (docs/signing.md)")
    p.add_argument("--config", type=Path, metavar="F",
                   help="tools.yaml (default: $TOOLFETCH_CONFIG, else beside --lockfile, else "
                   "lockfiles/tools.yaml or tools.yaml at the repository root)")
    lockfile_arg(p)
    p.add_argument("--offline", action="store_true", help="only signatures in the cache")
    p.add_argument("tools", nargs="*", metavar="TOOL",
                   help="check only these tools (default: every tool with a policy)")
    p.set_defaults(run=cmd_verify)

    for name, what in (("import-dotslash", "DotSlash files"),
                       ("import-multitool", "a rules_multitool lockfile")):
        p = command(name, f"add tools.yaml entries (HTTP release assets) for {what}; then "
                    "run `toolfetch lock`")
        p.add_argument("files", nargs="+", type=Path, metavar="FILE",
                       help=f"the {what} to read")
        p.add_argument("--config", type=Path, metavar="F",
                       help="tools.yaml (default: $TOOLFETCH_CONFIG, else beside --lockfile, else "
                   "lockfiles/tools.yaml or tools.yaml at the repository root)")
        lockfile_arg(p)
        p.add_argument("--stdout", action="store_true", help="print the entries as YAML "
                       "instead of adding them to tools.yaml")
        if name == "import-dotslash":
            p.add_argument("--name", metavar="TOOL", help="the tool's name (default: the "
                           "file's name; only with one FILE)")
        p.set_defaults(run=cmd_import_tools, importer=name)

    p = command("fetch", "make locked tools present in the cache")
    lockfile_arg(p)
    p.add_argument("tools", nargs="*", metavar="TOOL", help="the tools to fetch (default: "
                   "every locked tool)")
    g = p.add_mutually_exclusive_group()
    platform_arg(g, "fetch for this platform")
    g.add_argument("--all-platforms", action="store_true", help="fetch every locked platform "
                   "(default: only --platform's)")
    offline_arg(p)
    jobs_arg(p, 8, "parallel downloads; 8 was 3x --jobs 1 at 20 ms RTT, 4 gave 2.5x")
    p.add_argument("--output", type=Path, metavar="DIR", help="also materialise the (single) "
                   "tool's tree into DIR by hardlinks or copies (for build-system shims)")
    json_arg(p, "what was fetched (tool, platform, tree, path)")
    p.set_defaults(run=cmd_fetch)

    p = command("which", "print the absolute path of a tool's executable")
    lockfile_arg(p)
    p.add_argument("tool", metavar="TOOL", help="a tool of the lockfile")
    platform_arg(p, "the executable for this platform")
    offline_arg(p)
    json_arg(p, "tool, platform, path and tree")
    p.set_defaults(run=cmd_which)

    p = command("run", "run a tool (its exit code passes through)")
    lockfile_arg(p)
    offline_arg(p)
    p.add_argument("--arg0", metavar="NAME", help="argv[0] for a tool locked with `arg0: "
                   "tool` (launchers pass their own path; default: the tool's name)")
    p.add_argument("tool", metavar="TOOL", help="a tool of the lockfile")
    p.add_argument("args", nargs=argparse.REMAINDER, metavar="-- ARGS",
                   help="everything after TOOL (and an optional --) goes to the tool")
    p.set_defaults(run=cmd_run)

    p = command("bootstrap", "fetch every tool for this host and write launchers")
    lockfile_arg(p)
    p.add_argument("--bin-dir", type=Path, default=Path("bin"), metavar="DIR",
                   help="where the launchers go (default: bin, in the current directory)")
    offline_arg(p)
    jobs_arg(p, 8)
    p.set_defaults(run=cmd_bootstrap)


def cmd_lock(args: argparse.Namespace) -> int:
    from toolfetch.lock.config import Config
    from toolfetch.lock.update import run_lock, upgrade_refs

    lockfile = lockfile_of(args)
    config = Config.load(config_of(args))
    if args.upgrade:
        if args.check:
            raise UsageError("lock: --upgrade and --check exclude each other")
        upgraded = upgrade_refs(config, lockfile, args.tools, cache_of(args), jobs=args.jobs,
                                progress=progress(args), refresh_assets=args.refresh_assets)
        for tool, (old, new) in upgraded.items():
            print(f"{tool}: {old or '(not locked)'} -> {new}" if old != new
                  else f"{tool}: {new} (up to date)")
        return 0
    result = run_lock(config, lockfile, args.tools, args.check, args.jobs, progress(args),
                      cache=cache_of(args), refresh_assets=args.refresh_assets)
    if args.check:
        log.info("%s is up to date", lockfile)
        return 0
    for change in result.changes:  # a pin never changes silently
        print(f"lock: {change}")
    if not quiet(args):
        verb = "wrote" if result.changed else "unchanged:"
        print(f"lock: {verb} {lockfile} ({len(result.lockfile.tools)} tools, "
              f"{len(result.changes)} pins changed)")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from toolfetch.lock.config import Config
    from toolfetch.lock.lockfile import Lockfile
    from toolfetch.lock.signatures import verify_locked
    from toolfetch.registry.sources import SourceFactory, parse_mirror_map

    path = lockfile_of(args)
    lockfile = Lockfile.load(path)
    config = Config.load(config_of(args))
    sources = SourceFactory(parse_mirror_map(lockfile.mirrors, lockfile.base_dir,
                                             where=str(path)), offline=offline(args))
    for tool, key, record in verify_locked(config, lockfile, args.tools, sources,
                                           cache_of(args)):
        signer = "no verify policy" if record is None else (
            f"signed by {record.signer}, signature {record.signature}")
        print(f"{tool} {key}: {signer}")
    return 0


def cmd_import_tools(args: argparse.Namespace) -> int:
    from toolfetch.lock import importers
    from toolfetch.lock.configedit import add_tools

    name_given = getattr(args, "name", None)
    if name_given is not None and len(args.files) != 1:
        raise UsageError("import-dotslash: --name names one tool; give one FILE")
    entries: importers.Entries = {}
    for f in args.files:
        found = importers.from_dotslash(f, name_given) if args.importer == "import-dotslash" \
            else importers.from_multitool(f)
        for name, entry in found.items():
            if name in entries:
                raise UsageError(f"{f}: tool {name} is given twice")
            entries[name] = entry
    if not entries:
        raise UsageError(f"{', '.join(map(str, args.files))}: nothing toolfetch can import "
                         "(the warnings above say why)")
    if args.stdout:
        import yaml

        sys.stdout.write(yaml.safe_dump({"tools": entries}, sort_keys=False, width=1000))
        return 0
    config = config_of(args)
    add_tools(config, entries)
    log.warning("added %s to %s; run `toolfetch lock` to pin them", ", ".join(entries), config)
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from toolfetch.lock.lockfile import validating
    from toolfetch.ops.fetch import Fetcher
    from toolfetch.ops.output import materialize
    from toolfetch.ops.plan import plan

    if args.output is not None and args.all_platforms:
        raise UsageError("fetch: --output and --all-platforms exclude each other (--output "
                         "writes one tree; pick its platform with --platform)")
    if args.output is not None and len(args.tools) != 1:
        raise UsageError("--output needs exactly one TOOL")
    cache = cache_of(args)
    ready = threading.Event()
    held: list[Fetcher] = []  # its trees stay held until they are written out or printed
    try:
        with validating(lockfile_of(args), cache.root, start=ready) as lockfile:
            platform = None if args.all_platforms else platform_of(args.platform)
            wants = plan(lockfile, args.tools, platform, args.all_platforms)
            held.append(Fetcher(cache, lockfile, offline=offline(args), jobs=args.jobs,
                                progress=progress(args), transport_ready=ready))
            trees = held[0].fetch(wants)
        if args.output is not None:
            materialize(trees[wants[0]], args.output.absolute())
        if args.json:
            print(fetch_json([(w.tool, w.key, str(t), str(t / w.entry.path))
                              for w, t in trees.items()]))
        else:
            for w, t in trees.items():
                log.debug("%s: %s", w.what, t)
    finally:
        for fetcher in held:
            fetcher.release()  # gc may have the trees now
    return 0


def _locate(args: argparse.Namespace, platform_text: str | None
            ) -> tuple[Path, str, str, str]:
    """(executable, tree dir, platform key, arg0 mode), fetching first when the tree is
    missing."""
    from toolfetch.lock.lockfile import Lockfile, validating
    from toolfetch.ops.fetch import Fetcher
    from toolfetch.ops.plan import Want

    lockfile_path = lockfile_of(args)
    lockfile = Lockfile.load_fast(lockfile_path)
    cache = cache_of(args)
    lockfile.record_index(cache.root, validated=False)  # the next hit needs no JSON
    tool = lockfile.tool(args.tool)
    key, entry = tool.for_platform(platform_of(platform_text), lockfile_path)
    tree = cache.tree_path(entry.tree)
    exe = tree / entry.path
    if cache.has_tree(entry.tree) and os.path.lexists(exe):
        cache.touch_tree(entry.tree)
        return exe, str(tree), key, tool.arg0
    ready = threading.Event()
    with validating(lockfile_path, cache.root, start=ready) as full:
        fetcher = Fetcher(cache, full, offline=offline(args), progress=progress(args),
                          transport_ready=ready)
        fetcher.fetch([Want(args.tool, key, entry)])  # NotFoundError if `path` is not there
        fetcher.release()  # touched just now: gc's grace protects it up to the exec
    return exe, str(tree), key, tool.arg0


def cmd_which(args: argparse.Namespace) -> int:
    exe, tree, key, _ = _locate(args, args.platform)
    print(which_output(args.tool, key, str(exe), tree, args.json))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    exe, _, _, arg0 = _locate(args, None)
    argv0 = run_argv0(args.tool, str(exe), arg0, args.arg0)
    argv = list(args.args)
    if argv and argv[0] == "--":
        argv = argv[1:]
    sys.stdout.flush()
    if os.name == "nt":
        import subprocess

        return subprocess.call([argv0, *argv], executable=str(exe))
    try:
        os.execv(exe, [argv0, *argv])
    except OSError as e:
        raise UsageError(f"tool {args.tool}: cannot execute {exe}: {e.strerror}") from e


def cmd_bootstrap(args: argparse.Namespace) -> int:
    from toolfetch.ops.bootstrap import bootstrap

    report = bootstrap(cache_of(args), lockfile_of(args), args.bin_dir.absolute(),
                       offline=offline(args), jobs=args.jobs, progress=progress(args))
    if not quiet(args):
        print(f"toolfetch: {report.tools} tools for {report.platform} in {report.cache}")
        print(f"toolfetch: launchers in {report.bin_dir} ({report.written} updated)")
        if str(report.bin_dir) not in os.environ.get("PATH", "").split(os.pathsep):
            print(f"toolfetch: add them to PATH:  export PATH=\"{report.bin_dir}:$PATH\"")
    return 0
