"""Rebuilding one release artifact exactly: a format, the executables' paths inside it, a
size in bytes and a digest algorithm, as a real DotSlash or rules_multitool entry declares
them (tests/support/realworld.py applies it to the real-world corpus).

The executable at each path is a shell script printing ``realworld PATH ARGS…``; the rest of
the size is filler: seeded random bytes (incompressible, so the size search converges) after
the script's ``exit`` or, in archives, in a second member, with a zero tail in tars so the
compressed size moves one byte at a time.  Exact sizes come from a search on the filler length
plus a free-length field where the format has one (gzip FNAME, zip comment); zstd and xz are
hit by the search alone (a zstd skippable frame or xz stream padding take the last bytes only
if it cannot land).  Compression is the fastest there is: stored deflate blocks, zstd level 1,
xz preset 0.
"""

from __future__ import annotations

import hashlib
import io
import lzma
import random
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

FILLER_MEMBER = "realworld-filler"


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
        """Shared by entries of the same URL, digest *and paths*: corpus files may disagree
        on what one real archive holds (opentelemetry-cpp's `file: multitool` where three
        other repositories give `multitool-<triple>/multitool` for the same URL and sha256),
        and each file is tested on its own claims, whichever file is built first."""
        ident = "\0".join([self.url, self.declared_digest, self.fmt, *self.members])
        return hashlib.sha256(ident.encode()).hexdigest()[:20]

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
