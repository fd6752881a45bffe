"""Local stand-ins for the artifacts of the real-world corpus (tests/data/realworld).

Every platform entry of every corpus file names a release artifact nobody here may download.
This module rebuilds one per entry with the entry's format, the entry's ``path`` inside it,
its declared size (DotSlash ``size``; multitool files declare none, so ``MULTITOOL_SIZE``),
and hashes it with the entry's digest algorithm (blake3 or sha256).  The executable at
``path`` is a shell script printing ``realworld PATH ARGS…``; the rest of the size is filler:
seeded random bytes (incompressible, so the size search converges) after the script's
``exit`` or, in archives, in a second member.  Exact sizes come from a search on the filler
length plus a free-length field where the format has one (gzip FNAME, zip comment); zstd and
xz are hit exactly by the search alone.

Sizes: ``REALWORLD_MAX_BYTES`` (default ``DEFAULT_MAX_BYTES``) caps each artifact; ``0``
rebuilds every artifact at its declared size (about 3.4 GB for the DotSlash corpus).

Artifacts are written to disk, built lazily (per corpus file, in a thread pool) and shared
between entries with the same URL and digest; each has a *tampered* twin of the same size and
format made from another filler seed, built when a test asks for it.  ``World`` serves them
over loopback (an AssetServer in file-backed mode) and rewrites corpus files to point at them.
"""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import os
import random
import re
import struct
import tarfile
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from tf import TESTS

CORPUS = TESTS / "data" / "realworld"
DOTSLASH_HOST = "linux-x86_64"
MULTITOOL_HOST = ("linux", "x86_64")
MULTITOOL_SIZE = 64 * 1024  # multitool lockfiles declare no size (a multiple of 4, as xz needs)
DEFAULT_MAX_BYTES = 4 * 1024 * 1024
FILLER_MEMBER = "realworld-filler"


def max_bytes() -> int:
    return int(os.environ.get("REALWORLD_MAX_BYTES", DEFAULT_MAX_BYTES))


def rebuilt_size(declared: int) -> int:
    cap = max_bytes()
    return declared if cap <= 0 or declared <= cap else cap


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


# -- building one artifact ---------------------------------------------------------------------

@dataclass(frozen=True)
class Spec:
    """What to rebuild: one (URL, declared digest) of the corpus."""

    url: str
    declared_digest: str
    fmt: str  # DotSlash spelling: "" (plain), zst, gz, xz, tar, tar.gz, tgz, tar.zst, tar.xz, zip
    algo: str  # blake3 | sha256
    size: int  # the size to rebuild at
    members: tuple[str, ...]  # the executables' paths (a plain/compressed file: its name)

    @property
    def key(self) -> str:
        return hashlib.sha256(f"{self.url}\0{self.declared_digest}".encode()).hexdigest()[:20]

    @property
    def basename(self) -> str:
        return self.url.rsplit("/", 1)[-1] or "artifact"


@dataclass(frozen=True)
class Artifact:
    spec: Spec
    path: Path
    tampered: Path
    digest: str  # in spec.algo
    sha256: str
    size: int

    @property
    def url_path(self) -> str:
        return f"/{self.spec.key}/{self.spec.basename}"

    @property
    def tampered_url_path(self) -> str:
        return f"/tampered/{self.spec.key}/{self.spec.basename}"


def marker(member: str, args: Iterable[str]) -> str:
    """What the rebuilt executable at *member* prints for *args* (one line)."""
    return " ".join(["realworld", member, *args]) + "\n"


def script(member: str) -> bytes:
    return f'#!/bin/sh\necho "realworld {member} $*"\nexit 0\n'.encode()


def _random(seed: str, n: int) -> bytes:
    return random.Random(seed).randbytes(max(n, 0))


def _tar(members: dict[str, bytes]) -> bytes:
    """A ustar archive ending with its two zero blocks (no padding to tarfile's 10 KiB record,
    so its size moves in 512-byte steps)."""
    out = []
    for name, data in members.items():
        info = tarfile.TarInfo(name)
        info.size, info.mtime = len(data), 1700000000
        info.mode = 0o644 if name == FILLER_MEMBER else 0o755
        out += [info.tobuf(tarfile.GNU_FORMAT), data, b"\0" * (-len(data) % 512)]
    return b"".join(out) + b"\0" * 1024


def _gzip(data: bytes, pad: int) -> bytes:
    """gzip of stored deflate blocks; *pad* ≥ 1 bytes of FNAME (name and its NUL)."""
    assert pad >= 1
    header = b"\x1f\x8b\x08\x08" + struct.pack("<I", 0) + b"\x00\xff" + b"r" * (pad - 1) + b"\0"
    comp = zlib.compressobj(0, zlib.DEFLATED, -15)
    body = comp.compress(data) + comp.flush()
    return header + body + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


def _zstd(data: bytes, pad: int) -> bytes:
    import zstandard

    out = zstandard.ZstdCompressor(level=1).compress(data)
    if pad:  # a skippable frame: only when the search cannot hit the size exactly
        assert pad >= 8
        out += struct.pack("<II", 0x184D2A50, pad - 8) + b"\0" * (pad - 8)
    return out


def _xz(data: bytes, pad: int) -> bytes:
    assert pad % 4 == 0  # xz stream padding comes in multiples of four
    return lzma.compress(data, preset=0) + b"\0" * pad


_MIN_PAD = {"gz": 1, "tar.gz": 1, "tgz": 1, "zip": 0, "zst": 8, "tar.zst": 8, "xz": 4,
            "tar.xz": 4}


def _build(spec: Spec, seed: str, filler: int, pad: int) -> bytes:
    """The artifact with *filler* random bytes and *pad* bytes of free-length padding."""
    fmt = spec.fmt
    if fmt in ("", "gz", "xz", "zst"):
        (member,) = spec.members
        content = script(member) + _random(seed, filler)
        if fmt == "":
            return content
        return {"gz": _gzip, "xz": _xz, "zst": _zstd}[fmt](content, pad)
    if fmt == "zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
            for name in spec.members:
                info = zipfile.ZipInfo(name, (2023, 11, 14, 22, 13, 20))
                info.external_attr = (0o100755 << 16)
                info.create_system = 3  # unix, so the mode above counts
                z.writestr(info, script(name))
            z.writestr(zipfile.ZipInfo(FILLER_MEMBER, (2023, 11, 14, 22, 13, 20)),
                       _random(seed, filler))
            z.comment = b"r" * pad
        return buf.getvalue()
    # a tar: random filler then a zero tail, so the tar's 512-byte steps do not stop the
    # compressed size from moving one byte at a time
    tail = (-filler) % 512
    tar = _tar({**{m: script(m) for m in spec.members},
                FILLER_MEMBER: _random(seed, filler) + b"\0" * tail})
    if fmt == "tar":
        return tar
    if fmt in ("tar.gz", "tgz"):
        return _gzip(tar, pad)
    if fmt == "tar.zst":
        return _zstd(tar, pad)
    if fmt == "tar.xz":
        return _xz(tar, pad)
    raise ValueError(f"cannot rebuild format {fmt!r} ({spec.url})")


def fit(spec: Spec, seed: str) -> bytes:
    """The artifact at exactly ``spec.size`` bytes (a search on the filler length)."""
    target, min_pad = spec.size, _MIN_PAD.get(spec.fmt, 0)
    padded = spec.fmt in ("gz", "tar.gz", "tgz", "zip")  # a free-length field takes the rest
    filler = max(target - 2048, 0)
    for _ in range(12):
        data = _build(spec, seed, filler, min_pad if padded else 0)
        gap = target - len(data)
        if gap == 0:
            return data
        if padded and gap > 0:
            return _build(spec, seed, filler, min_pad + gap)
        # padded: overshoot downwards past a tar's 512-byte step, the pad takes the rest
        filler = max(filler + gap - (600 if padded else 0), 0)
    # zstd/xz: the size moved in steps the search could not land on; pad the last bytes
    # (a zstd skippable frame, xz stream padding)
    for slack in (16, 24, 40, 72, 136, 264, 520, 1032):
        data = _build(spec, seed, max(filler - slack, 0), 0)
        gap = target - len(data)
        if gap >= min_pad > 0 and gap % (4 if spec.fmt.endswith("xz") else 1) == 0:
            return _build(spec, seed, max(filler - slack, 0), gap)
    raise AssertionError(f"cannot rebuild {spec.url} as {spec.fmt!r} at {target} bytes")


def digest_of(data: bytes, algo: str) -> str:
    if algo == "sha256":
        return hashlib.sha256(data).hexdigest()
    if algo == "blake3":
        import blake3

        return str(blake3.blake3(data).hexdigest())
    raise ValueError(f"unknown digest algorithm {algo!r}")


def build(spec: Spec, out_dir: Path) -> Artifact:
    good = fit(spec, f"{spec.key}/genuine")
    assert len(good) == spec.size, spec
    path = out_dir / spec.key / spec.basename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(good)
    return Artifact(spec, path, out_dir / "tampered" / spec.key / spec.basename,
                    digest_of(good, spec.algo), hashlib.sha256(good).hexdigest(), len(good))


def build_tampered(artifact: Artifact) -> None:
    """The artifact's twin: same size and format, another filler seed."""
    bad = fit(artifact.spec, f"{artifact.spec.key}/tampered")
    assert len(bad) == artifact.size and digest_of(bad, "sha256") != artifact.sha256
    artifact.tampered.parent.mkdir(parents=True, exist_ok=True)
    artifact.tampered.write_bytes(bad)


# -- the specs of a corpus file ----------------------------------------------------------------

def dotslash_specs(data: dict[str, Any]) -> dict[str, Spec]:
    """Platform key -> what to rebuild for it; platforms sharing an artifact (one archive for
    all, as DotSlash's own fixtures have) share one Spec holding every platform's path."""
    members: dict[tuple[str, str], set[str]] = {}
    for entry in data["platforms"].values():
        members.setdefault(_dotslash_key(entry), set()).add(dotslash_member(entry))
    out = {}
    for key, entry in data["platforms"].items():
        url, digest = _dotslash_key(entry)
        out[key] = Spec(url, digest, entry.get("format", ""), entry.get("hash", "blake3"),
                        rebuilt_size(int(entry["size"])),
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
