"""Registry workflows: push, publish, pull, copy, tag, tags, inspect, exists, attach,
referrers, export, import, login and logout. Each command parses its options, calls one
method of the library facade (:class:`toolfetch.api.client.Client`, through
:func:`~toolfetch.cli.common.client_of`) and prints the result."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from toolfetch.api.registry_methods import COPY_JOBS
from toolfetch.cli.artifact_text import render_artifact
from toolfetch.cli.common import (
    Command,
    client_of,
    jobs_arg,
    json_arg,
    lockfile_arg,
    platform_arg,
    quiet,
)
from toolfetch.core.errors import UsageError

log = logging.getLogger("toolfetch")


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
    p.set_defaults(run=cmd_push)

    p = command("publish", "push one artifact per platform and an index of them; prints the "
                "index digest. With --from-lockfile: `publish --from-lockfile [TOOL…] "
                "REGISTRY/PREFIX` copies locked HTTP assets to PREFIX/<tool>:<version>")
    p.add_argument("ref", nargs="+", metavar="REF", help="host/repo:tag or oci-layout:DIR:tag "
                   "to publish to; with --from-lockfile: [TOOL…] REGISTRY/PREFIX")
    p.add_argument("--platform", action="append", metavar="OS/ARCH=PATH[,PATH…]",
                   help="the files of one platform (repeatable; required without "
                   "--from-lockfile)")
    p.add_argument("--from-lockfile", action="store_true", help="publish the lockfile's HTTP "
                   "release assets (TOOL…, default all) as artifacts under REGISTRY/PREFIX")
    lockfile_arg(p)
    _artifact_options(p)
    _mount_option(p)
    p.set_defaults(run=cmd_publish)

    p = command("pull", "download an artifact's files (by title), verified")
    p.add_argument("ref", metavar="REF", help="host/repo:tag, host/repo@sha256:… or "
                   "oci-layout:DIR:tag")
    p.add_argument("-o", "--output", type=Path, default=Path("."), metavar="DIR",
                   help="where the files go; existing files are never replaced (default: .)")
    platform_arg(p, "the manifest to take out of an index")
    p.set_defaults(run=cmd_pull)

    p = command("copy", "copy the whole graph of SRC (index, manifests, blobs) between "
                "registries and OCI layouts, digests preserved")
    p.add_argument("src", metavar="SRC", help="what to copy: host/repo:tag, …@sha256:… or "
                   "oci-layout:DIR:tag")
    p.add_argument("dst", metavar="DST", help="where to: host/repo[:tag] or oci-layout:DIR[:tag]")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--all-platforms", action="store_true",
                   help="the whole graph: the default (kept for older scripts)")
    g.add_argument("--platform", metavar="OS/ARCH",
                   help="copy only this platform's manifest out of an index; DST then holds "
                        "that manifest, not the index (default: the whole graph, byte-exact)")
    jobs_arg(p, COPY_JOBS, "parallel blob copies")
    p.set_defaults(run=cmd_copy)

    p = command("tag", "give a manifest more tags; prints its digest")
    p.add_argument("ref", metavar="REF", help="the manifest: host/repo:tag or …@sha256:…")
    p.add_argument("tags", nargs="+", metavar="NEWTAG", help="the tags to add")
    p.set_defaults(run=cmd_tag)

    p = command("tags", "list a repository's tags")
    p.add_argument("repo", metavar="REPO", help="host/repo or oci-layout:DIR")
    json_arg(p, "the tags")
    p.set_defaults(run=cmd_tags)

    p = command("inspect", "describe a manifest or index: type, platforms, layers, annotations")
    p.add_argument("ref", metavar="REF", help="host/repo:tag, …@sha256:… or oci-layout:DIR:tag")
    json_arg(p, "the description")
    p.set_defaults(run=cmd_inspect)

    p = command("exists", "exit 0 if REF exists (printing its digest), 4 if not")
    p.add_argument("ref", metavar="REF", help="host/repo:tag, …@sha256:… or oci-layout:DIR:tag")
    p.set_defaults(run=cmd_exists)

    p = command("attach", "push an artifact that refers to SUBJECT (signature, SBOM, …)")
    p.add_argument("subject", metavar="SUBJECT", help="the manifest it refers to")
    p.add_argument("files", nargs="*", metavar="PATH", help="files to push as its layers "
                   "(default: none, an artifact of annotations only)")
    _artifact_options(p, required_type=True)
    p.set_defaults(run=cmd_attach)

    p = command("referrers", "list the artifacts that refer to SUBJECT")
    p.add_argument("subject", metavar="SUBJECT", help="the manifest they refer to")
    p.add_argument("--artifact-type", metavar="TYPE", help="only this type (default: all)")
    json_arg(p, "the referrers' descriptors")
    p.set_defaults(run=cmd_referrers)

    p = command("export", "write everything a lockfile needs as an OCI image layout")
    lockfile_arg(p)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--all-platforms", action="store_true",
                   help="every locked platform (default: only --platform's)")
    platform_arg(g, "export what this platform needs")
    p.add_argument("dir", type=Path, metavar="DIR", help="the OCI image layout to write "
                   "(created; a blob already there is reused only if it verifies)")
    p.set_defaults(run=cmd_export)

    p = command("import", "put an OCI image layout's blobs into the cache (verified)")
    p.add_argument("dir", type=Path, metavar="DIR", help="an OCI image layout (from `export`)")
    p.set_defaults(run=cmd_import)

    p = command("login", "check and store credentials for a registry (as docker login)")
    p.add_argument("registry", metavar="REGISTRY", help="host[:port] (docker.io for Docker Hub)")
    p.add_argument("-u", "--username", metavar="USER", required=True, help="the user name "
                   "(required)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--password-stdin", action="store_true",
                   help="read the password (or token) from standard input")
    g.add_argument("-p", "--password", metavar="PASSWORD",
                   help="insecure: visible to other users and in shell history")
    p.set_defaults(run=cmd_login)

    p = command("logout", "remove stored credentials for a registry")
    p.add_argument("registry", metavar="REGISTRY", help="host[:port] (docker.io for Docker Hub)")
    p.set_defaults(run=cmd_logout)


# -- helpers -----------------------------------------------------------------------------------
def parse_annotations(items: Sequence[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--annotation {item!r}: expected KEY=VALUE")
        out[key.strip()] = value
    return out


def parse_platform_arg(text: str) -> tuple[str, list[str]]:
    platform, sep, paths = text.partition("=")
    files = [p for p in paths.split(",") if p]
    if not sep or not files:
        raise UsageError(f"--platform {text!r}: expected OS/ARCH=PATH[,PATH…]")
    return platform, files


def _manifest_options(args: argparse.Namespace) -> dict[str, Any]:
    """What --artifact-type, --annotation and (push, publish) --mount-from ask of the
    manifest a command writes, as the facade's keyword arguments."""
    options: dict[str, Any] = {"artifact_type": args.artifact_type,
                               "annotations": parse_annotations(args.annotation)}
    if "mount_from" in vars(args):
        options["mount_from"] = args.mount_from or ()
    return options


# -- commands ----------------------------------------------------------------------------------
def cmd_push(args: argparse.Namespace) -> int:
    pushed = client_of(args).push(args.ref, args.files, **_manifest_options(args))
    print(pushed.digest)
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    if args.from_lockfile:
        return _publish_from_lockfile(args)
    if len(args.ref) != 1 or not args.platform:
        raise UsageError("publish: give one REF and --platform OS/ARCH=FILES (or "
                         "--from-lockfile [TOOL…] REGISTRY/PREFIX)")
    per_platform = [parse_platform_arg(p) for p in args.platform]
    published = client_of(args).publish(args.ref[0], per_platform,
                                        **_manifest_options(args))
    print(published.digest)
    return 0


def _publish_from_lockfile(args: argparse.Namespace) -> int:
    if args.platform:
        raise UsageError("publish --from-lockfile takes no --platform: every locked platform "
                         "of each tool is published")
    *tools, prefix = args.ref
    for tool, published in client_of(args).publish_from_lockfile(prefix, tools).items():
        print(f"{tool}: {published}")
    return 0


def cmd_attach(args: argparse.Namespace) -> int:
    attached = client_of(args).attach(args.subject, args.files, **_manifest_options(args))
    print(attached.digest)
    return 0


def cmd_tag(args: argparse.Namespace) -> int:
    print(client_of(args).tag(args.ref, args.tags).digest)
    return 0


def cmd_copy(args: argparse.Namespace) -> int:
    print(client_of(args).copy(args.src, args.dst, platform=args.platform,
                               jobs=args.jobs).digest)
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    pulled = client_of(args).pull_artifact(args.ref, args.output, args.platform)
    for path in pulled.written:
        log.info("wrote %s", path)
    for path in pulled.present:
        log.info("kept %s: already there with the same bytes", path)
    if not quiet(args):
        same = (f"; {len(pulled.present)} already there with the same bytes"
                if pulled.present else "")
        print(f"pull: wrote {len(pulled.written)} files from {pulled.reference} to "
              f"{pulled.output}{same}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    info = client_of(args).get_artifact_info(args.ref)
    print(json.dumps(info.to_json(), indent=2, sort_keys=True) if args.json
          else render_artifact(info))
    return 0


def cmd_exists(args: argparse.Namespace) -> int:
    print(client_of(args).manifest_digest(args.ref))
    return 0


def cmd_tags(args: argparse.Namespace) -> int:
    found = client_of(args).list_tags(args.repo)
    print(json.dumps(found, indent=2) if args.json else "\n".join(found))
    return 0


def cmd_referrers(args: argparse.Namespace) -> int:
    found = client_of(args).referrers(args.subject, args.artifact_type)
    if args.json:
        print(json.dumps([d.to_json() for d in found], indent=2, sort_keys=True))
    else:
        for d in found:
            print(f"{d.digest}  {d.artifact_type or '-'}  {d.size}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    client = client_of(args)
    stats = client.export(args.dir, args.platform, all_platforms=args.all_platforms)
    if not quiet(args):
        print(f"export: wrote {len(stats.roots)} roots ({stats.blobs} blobs, "
              f"{stats.from_cache} from the cache) to {args.dir.absolute()}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    client = client_of(args)
    stats = client.import_layout(args.dir)
    if not quiet(args):
        print(f"import: {stats.blobs} blobs from {args.dir.absolute()} into "
              f"{client.cache_dir} ({stats.skipped} referenced but absent)")
    return 0


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.read()
        password = password[:-1] if password.endswith("\n") else password
        password = password[:-1] if password.endswith("\r") else password
    elif args.password is not None:
        log.warning("using --password on the command line is insecure; use --password-stdin")
        password = args.password
    elif sys.stdin.isatty():
        import getpass

        password = getpass.getpass("Password: ")
    else:
        raise UsageError("login: give the password with --password-stdin")
    return password


def cmd_login(args: argparse.Namespace) -> int:
    client_of(args).login(args.registry, args.username, _read_password(args))
    print("Login Succeeded")
    return 0


def cmd_logout(args: argparse.Namespace) -> int:
    out = client_of(args).logout(args.registry)
    print(f"Removing login credentials for {out.key}" if out.removed
          else f"Not logged in to {out.key}")
    return 0
