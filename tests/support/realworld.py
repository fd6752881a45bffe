"""Local stand-ins for the artifacts of the real-world corpus (tests/data/realworld).

Every platform entry of every corpus file names a release artifact nobody here may download.
This module rebuilds one per entry (tests/support/rebuild.py) with the entry's format, the
entry's ``path`` inside it, its declared size (DotSlash ``size``; multitool files declare
none, so ``MULTITOOL_SIZE``) and the entry's digest algorithm (blake3 or sha256).

Sizes: every artifact is rebuilt at its declared size (about 3.4 GB for the DotSlash corpus);
``REALWORLD_MAX_BYTES=N`` caps the artifacts a linux-x86_64 host does not run (only `lock`
downloads those) at N bytes, for a quicker local run; what the host runs, compares and
tampers with stays at its declared size either way.

Artifacts are written to disk, built lazily (per corpus file, in a thread pool) and shared
between entries with the same URL, digest and paths; each has a *tampered* twin of the same
size and format made from another filler seed, built when a test asks for it.  ``World``
serves them over loopback (an AssetServer in file-backed mode) and rewrites corpus files to
point at them.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Any

from rebuild import Artifact, Spec, build, build_tampered, marker
from tf import TESTS

__all__ = ["Artifact", "Spec", "marker"]  # the test module's view of rebuild.py

CORPUS = TESTS / "data" / "realworld"
DOTSLASH_HOST = "linux-x86_64"
MULTITOOL_HOST = ("linux", "x86_64")
MULTITOOL_SIZE = 64 * 1024  # multitool lockfiles declare no size (a multiple of 4, as xz needs)
DEFAULT_MAX_BYTES = 0  # no cap: every artifact at its declared size (3.2 GB, ~2.5 min)


def max_bytes() -> int:
    return int(os.environ.get("REALWORLD_MAX_BYTES", DEFAULT_MAX_BYTES))


def rebuilt_size(declared: int, runs_here: bool = False) -> int:
    """The declared size for what this host runs; others capped by ``REALWORLD_MAX_BYTES``."""
    cap = max_bytes()
    return declared if runs_here or cap <= 0 or declared <= cap else cap


# -- reading the corpus ------------------------------------------------------------------------

def read_dotslash(path: Path) -> dict[str, Any]:
    """A DotSlash file's JSON (``//`` comments and trailing commas allowed, as DotSlash does)."""
    text = path.read_text(encoding="utf-8").split("\n", 1)[1]
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == '"':
            j = i + 1
            while text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith("//", i):
            i = text.find("\n", i) if "\n" in text[i:] else len(text)
        else:
            out.append(c)
            i += 1
    data: dict[str, Any] = json.loads(re.sub(r",(\s*[}\]])", r"\1", "".join(out)))
    return data


def dotslash_files() -> list[Path]:
    return sorted((CORPUS / "dotslash").iterdir())


def multitool_files() -> list[Path]:
    return sorted((CORPUS / "multitool").iterdir())


def tool_name(corpus_file: Path) -> str:
    """The tool a corpus DotSlash file becomes: its name in its repository."""
    return corpus_file.name.split("__")[-1]


def provider_url(provider: dict[str, Any]) -> str:
    if provider.get("type") == "github-release":
        return f"github-release:{provider['repo']}/{provider['tag']}/{provider['name']}"
    return str(provider["url"])


def multitool_format(binary: dict[str, Any]) -> str:
    """The DotSlash spelling of a multitool binary's format ("" for a plain file)."""
    if binary["kind"] != "archive":
        return ""
    kind = binary.get("type") or binary["url"].rsplit("/", 1)[-1]
    for ext, fmt in ((".tar.gz", "tar.gz"), (".tgz", "tar.gz"), (".tar.xz", "tar.xz"),
                     (".txz", "tar.xz"), (".tar.zst", "tar.zst"), (".tzst", "tar.zst"),
                     (".tar.bz2", "tar.bz2"), (".tar", "tar"), (".zip", "zip"),
                     (".jar", "zip"), (".war", "zip"), (".aar", "zip"), (".gz", "gz"),
                     (".xz", "xz"), (".zst", "zst")):
        if kind == ext[1:] or kind.endswith(ext):
            return fmt
    raise ValueError(f"no archive format for multitool binary {binary['url']}")


# -- the specs of a corpus file ----------------------------------------------------------------

def dotslash_specs(data: dict[str, Any]) -> dict[str, Spec]:
    """Platform key -> what to rebuild for it; platforms sharing an artifact (one archive for
    all, as DotSlash's own fixtures have) share one Spec holding every platform's path."""
    members: dict[tuple[str, str], set[str]] = {}
    host_run: set[tuple[str, str]] = set()
    for key, entry in data["platforms"].items():
        members.setdefault(_dotslash_key(entry), set()).add(dotslash_member(entry))
        if key == DOTSLASH_HOST:
            host_run.add(_dotslash_key(entry))
    out = {}
    for key, entry in data["platforms"].items():
        url, digest = _dotslash_key(entry)
        out[key] = Spec(url, digest, entry.get("format", ""), entry.get("hash", "blake3"),
                        rebuilt_size(int(entry["size"]), (url, digest) in host_run),
                        tuple(sorted(members[(url, digest)])))
    return out


def _dotslash_key(entry: dict[str, Any]) -> tuple[str, str]:
    return provider_url(entry["providers"][0]), str(entry["digest"])


def dotslash_member(entry: dict[str, Any]) -> str:
    """The executable's path in the artifact (a plain file has just its name)."""
    return str(entry["path"]) if entry.get("format") else PurePosixPath(entry["path"]).name


def multitool_specs(data: dict[str, Any]) -> dict[tuple[str, str, str], Spec]:
    """(tool, os, cpu) -> what to rebuild; binaries sharing a URL share one archive."""
    paths: dict[tuple[str, str], set[str]] = {}
    for tool, entry in data.items():
        if tool.startswith("$"):
            continue
        for b in entry["binaries"]:
            paths.setdefault((b["url"], b["sha256"]), set()).add(member_of(tool, b))
    out = {}
    for tool, entry in data.items():
        if tool.startswith("$"):
            continue
        for b in entry["binaries"]:
            fmt = multitool_format(b)
            members = tuple(sorted(paths[(b["url"], b["sha256"])]))
            out[(tool, b["os"], b["cpu"])] = Spec(b["url"], b["sha256"], fmt, "sha256",
                                                  MULTITOOL_SIZE, members)
    return out


def member_of(tool: str, binary: dict[str, Any]) -> str:
    """The executable's path in a multitool binary (a plain file: the URL's last segment)."""
    if binary["kind"] == "archive":
        return str(binary["file"])
    return str(binary["url"].rsplit("/", 1)[-1] or tool)


# -- the world: artifacts on disk, served, and rewritten corpus files --------------------------

class World:
    """Builds artifacts on first use (once per URL and digest) and serves them."""

    def __init__(self, out_dir: Path, server: Any, jobs: int = 2) -> None:
        self.out_dir, self.server = out_dir, server
        self.pool = ThreadPoolExecutor(max_workers=jobs)
        self.lock = threading.Lock()
        self.futures: dict[str, Any] = {}

    def artifacts(self, specs: Iterable[Spec]) -> list[Artifact]:
        specs = list(specs)
        with self.lock:
            for s in specs:
                if s.key not in self.futures:
                    self.futures[s.key] = self.pool.submit(self._build_and_serve, s)
            futures = [self.futures[s.key] for s in specs]
        return [f.result() for f in futures]

    def _build_and_serve(self, spec: Spec) -> Artifact:
        a = build(spec, self.out_dir)
        self.server.disk_files[a.url_path] = a.path
        return a

    def tamper(self, a: Artifact) -> str:
        """Build (once) and serve *a*'s tampered twin; its URL."""
        with self.lock:
            if a.tampered_url_path not in self.server.disk_files:
                build_tampered(a)
                self.server.disk_files[a.tampered_url_path] = a.tampered
        return self.url(a.tampered_url_path)

    def url(self, path: str) -> str:
        return str(self.server.url(path))

    def dotslash(self, corpus_file: Path, dest: Path,
                 tamper: Callable[[str], bool] = lambda key: False) -> dict[str, Artifact]:
        """Write *corpus_file* rewritten to the rebuilt artifacts as *dest*; platform key ->
        artifact.  Platforms for which *tamper(key)* holds point at the tampered twin."""
        data = read_dotslash(corpus_file)
        specs = dotslash_specs(data)
        built = dict(zip(specs, self.artifacts(specs.values()), strict=True))
        for key, entry in data["platforms"].items():
            a = built[key]
            entry["size"], entry["digest"] = a.size, a.digest
            url = self.tamper(a) if tamper(key) else self.url(a.url_path)
            entry["providers"] = [{"url": url}]
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text("#!/usr/bin/env dotslash\n\n" + json.dumps(data, indent=2) + "\n")
        dest.chmod(0o755)
        return built

    def multitool(self, corpus_file: Path, dest: Path) -> dict[tuple[str, str, str], Artifact]:
        data = json.loads(corpus_file.read_text())
        specs = multitool_specs(data)
        built = dict(zip(specs, self.artifacts(specs.values()), strict=True))
        for tool, entry in data.items():
            if tool.startswith("$"):
                continue
            for b in entry["binaries"]:
                a = built[(tool, b["os"], b["cpu"])]
                b["url"], b["sha256"] = self.url(a.url_path), a.sha256
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(json.dumps(data, indent=2) + "\n")
        return built

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
