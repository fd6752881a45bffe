"""``lock``, ``fetch``, ``which``, ``run`` and ``bootstrap``: the commands builds run."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from toolfetch.cli.common import (
    Command,
    client_of,
    config_arg,
    jobs_arg,
    json_arg,
    lockfile_arg,
    offline_arg,
    platform_arg,
    quiet,
)
from toolfetch.cli.hitpath import fetch_json, run_argv0, which_output
from toolfetch.core.errors import UsageError

log = logging.getLogger("toolfetch")


def register(command: Command) -> None:
    p = command("lock", "resolve tools.yaml references into the lockfile")
    config_arg(p)
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
    config_arg(p)
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
        config_arg(p)
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
    if args.upgrade and args.check:
        raise UsageError("lock: --upgrade and --check exclude each other")
    with client_of(args) as client:
        result = client.lock(args.tools, check=args.check, upgrade=args.upgrade,
                             refresh_assets=args.refresh_assets)
    if args.upgrade:
        for up in result.upgrades:
            print(f"{up.tool}: {up.old or '(not locked)'} -> {up.new}" if up.moved
                  else f"{up.tool}: {up.new} (up to date)")
        return 0
    if args.check:
        log.info("%s is up to date", client.lockfile)
        return 0
    for change in result.changes:  # a pin never changes silently
        print(f"lock: {change}")
    if not quiet(args):
        verb = "wrote" if result.changed else "unchanged:"
        print(f"lock: {verb} {client.lockfile} ({len(result.lockfile.tools)} tools, "
              f"{len(result.changes)} pins changed)")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    with client_of(args) as client:
        checks = client.verify_signatures(args.tools)
    for check in checks:
        signer = (f"signed by {check.signer}, signature {check.signature}" if check.has_policy
                  else "no verify policy")
        print(f"{check.tool} {check.platform}: {signer}")
    return 0


def cmd_import_tools(args: argparse.Namespace) -> int:
    name_given = getattr(args, "name", None)
    if name_given is not None and len(args.files) != 1:
        raise UsageError("import-dotslash: --name names one tool; give one FILE")
    with client_of(args) as client:
        imported = (client.import_dotslash(args.files, name_given, dry_run=args.stdout)
                    if args.importer == "import-dotslash"
                    else client.import_multitool(args.files, dry_run=args.stdout))
    if args.stdout:
        import yaml

        sys.stdout.write(yaml.safe_dump({"tools": imported.plain_tools()}, sort_keys=False,
                                        width=1000))
        return 0
    log.warning("added %s to %s; run `toolfetch lock` to pin them", ", ".join(imported.tools),
                imported.config)
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    if args.output is not None and args.all_platforms:
        raise UsageError("fetch: --output and --all-platforms exclude each other (--output "
                         "writes one tree; pick its platform with --platform)")
    if args.output is not None and len(args.tools) != 1:
        raise UsageError("--output needs exactly one TOOL")
    with client_of(args) as client:  # the trees stay held until printed
        found = client.fetch_tools(args.tools, args.platform, args.all_platforms,
                                   output=args.output)
        if args.json:
            print(fetch_json([(t.tool, t.platform, str(t.tree), str(t.executable))
                              for t in found]))
        else:
            for t in found:
                log.debug("tool %s (%s): %s", t.tool, t.platform, t.tree)
    return 0


def cmd_which(args: argparse.Namespace) -> int:
    with client_of(args) as client:  # its hold ends here: gc's grace covers the print
        found = client.locate(args.tool, args.platform)
    print(which_output(args.tool, found.platform, str(found.executable), str(found.tree),
                       args.json))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    with client_of(args) as client:  # its hold ends here: gc's grace protects the tree
        found = client.locate(args.tool)  # up to the exec
    exe = found.executable
    argv0 = run_argv0(args.tool, str(exe), found.arg0, args.arg0)
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
    with client_of(args) as client:
        report = client.bootstrap(args.bin_dir)
    if not quiet(args):
        print(f"toolfetch: {report.tools} tools for {report.platform} in {report.cache}")
        print(f"toolfetch: launchers in {report.bin_dir} ({report.written} updated)")
        if str(report.bin_dir) not in os.environ.get("PATH", "").split(os.pathsep):
            print(f"toolfetch: add them to PATH:  export PATH=\"{report.bin_dir}:$PATH\"")
    return 0
