"""Registry workflow commands (push, publish, pull, copy, tag, tags, inspect, exists, attach,
referrers, export, import). Registration only; each command imports its module lazily.

Each subparser sets ``run=`` (via ``set_defaults``) to a function taking the parsed args.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

Command = Callable[[str, str], argparse.ArgumentParser]
Run = Callable[[argparse.Namespace], int]


def _lazy(module: str, function: str) -> Run:
    def run(args: argparse.Namespace) -> int:
        import importlib

        fn: Run = getattr(importlib.import_module(f"toolfetch.{module}"), function)
        return fn(args)

    return run


def _artifact_options(p: argparse.ArgumentParser, required_type: bool = False) -> None:
    if required_type:
        p.add_argument("--artifact-type", required=True, metavar="TYPE",
                       help="the artifact's media type (e.g. application/spdx+json)")
    else:
        p.add_argument("--artifact-type", default="application/vnd.toolfetch.tool.v1",
                       metavar="TYPE", help="default: application/vnd.toolfetch.tool.v1")
    p.add_argument("--annotation", "-a", action="append", metavar="KEY=VALUE",
                   help="a manifest annotation (repeatable)")


def _mount_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mount-from", action="append", metavar="REPO",
                   help="mount blobs from this repository of the same registry when it has "
                        "them (repeatable)")


def register(command: Command) -> None:
    p = command("push", "push files as an ORAS-style artifact; prints the manifest digest")
    p.add_argument("ref", metavar="REF", help="host/repo:tag or oci-layout:DIR:tag")
    p.add_argument("files", nargs="+", metavar="PATH",
                   help="a file (one layer titled with its name; PATH:MEDIA/TYPE sets the "
                        "layer type) or a directory (one tar+gzip layer)")
    _artifact_options(p)
    _mount_option(p)
    p.set_defaults(run=_lazy("push", "cmd_push"))

    p = command("publish", "push one artifact per platform and an index of them; prints the "
                "index digest")
    p.add_argument("ref", metavar="REF")
    p.add_argument("--platform", action="append", required=True, metavar="OS/ARCH=PATH[,PATH…]",
                   help="the files of one platform (repeatable)")
    _artifact_options(p)
    _mount_option(p)
    p.set_defaults(run=_lazy("push", "cmd_publish"))

    p = command("pull", "download an artifact's files (by title), verified")
    p.add_argument("ref", metavar="REF")
    p.add_argument("-o", "--output", type=Path, default=Path("."), metavar="DIR")
    p.add_argument("--platform", metavar="OS/ARCH", help="for an index (default: this host)")
    p.set_defaults(run=_lazy("transfer", "cmd_pull"))

    p = command("copy", "copy the whole graph of SRC (index, manifests, blobs) between "
                "registries and OCI layouts, digests preserved")
    p.add_argument("src", metavar="SRC")
    p.add_argument("dst", metavar="DST")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--all-platforms", action="store_true",
                   help="the whole graph: the default (kept for older scripts)")
    g.add_argument("--platform", metavar="OS/ARCH",
                   help="copy only this platform's manifest out of an index; DST then holds "
                        "that manifest, not the index (default: the whole graph, byte-exact)")
    p.add_argument("--jobs", type=int, default=4, metavar="N")
    p.set_defaults(run=_lazy("transfer", "cmd_copy"))

    p = command("tag", "give a manifest more tags; prints its digest")
    p.add_argument("ref", metavar="REF")
    p.add_argument("tags", nargs="+", metavar="NEWTAG")
    p.set_defaults(run=_lazy("push", "cmd_tag"))

    p = command("tags", "list a repository's tags")
    p.add_argument("repo", metavar="REPO", help="host/repo or oci-layout:DIR")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_lazy("describe", "cmd_tags"))

    p = command("inspect", "describe a manifest or index: type, platforms, layers, annotations")
    p.add_argument("ref", metavar="REF")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_lazy("describe", "cmd_inspect"))

    p = command("exists", "exit 0 if REF exists (printing its digest), 4 if not")
    p.add_argument("ref", metavar="REF")
    p.set_defaults(run=_lazy("describe", "cmd_exists"))

    p = command("attach", "push an artifact that refers to SUBJECT (signature, SBOM, …)")
    p.add_argument("subject", metavar="SUBJECT")
    p.add_argument("files", nargs="*", metavar="PATH")
    _artifact_options(p, required_type=True)
    p.set_defaults(run=_lazy("push", "cmd_attach"))

    p = command("referrers", "list the artifacts that refer to SUBJECT")
    p.add_argument("subject", metavar="SUBJECT")
    p.add_argument("--artifact-type", metavar="TYPE", help="only this type")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_lazy("describe", "cmd_referrers"))

    p = command("export", "write everything a lockfile needs as an OCI image layout")
    p.add_argument("--lockfile", type=Path, metavar="F",
                   help="default: lockfiles/tools.lock.json at the repository root")
    p.add_argument("--all-platforms", action="store_true",
                   help="every locked platform (default: this host)")
    p.add_argument("--platform", metavar="OS/ARCH", help="this platform instead of the host's")
    p.add_argument("dir", type=Path, metavar="DIR")
    p.set_defaults(run=_lazy("bundle", "cmd_export"))

    p = command("import", "put an OCI image layout's blobs into the cache (verified)")
    p.add_argument("dir", type=Path, metavar="DIR")
    p.set_defaults(run=_lazy("bundle", "cmd_import"))
