"""sha256 digests: parsing, validation and streaming verification."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from toolfetch.errors import IntegrityError, UsageError

_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, order=True)
class Digest:
    """A ``sha256:<64 hex>`` content digest (the only algorithm toolfetch accepts)."""

    hex: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        algo, sep, hexpart = text.partition(":")
        if not sep or algo != "sha256":
            raise UsageError(f"unsupported digest {text!r}: only sha256:<64 hex> is accepted")
        if not _HEX.fullmatch(hexpart):
            raise UsageError(f"malformed digest {text!r}: expected sha256:<64 lowercase hex>")
        return cls(hexpart)

    @classmethod
    def of_bytes(cls, data: bytes) -> Digest:
        return cls(hashlib.sha256(data).hexdigest())

    def __str__(self) -> str:
        return f"sha256:{self.hex}"

    @property
    def short(self) -> str:
        return f"sha256:{self.hex[:12]}"

    def verify_bytes(self, data: bytes, what: str) -> None:
        actual = Digest.of_bytes(data)
        if actual != self:
            raise IntegrityError(f"{what}: digest mismatch: expected {self}, got {actual}")


class StreamVerifier:
    """Hashes bytes as they stream past and checks size and digest at the end."""

    def __init__(self, expected: Digest, size: int, what: str) -> None:
        self.expected = expected
        self.size = size
        self.what = what
        self.received = 0
        self._hash = hashlib.sha256()

    def update(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if self.received > self.size:
            raise IntegrityError(
                f"{self.what}: size mismatch: more than the declared {self.size} bytes "
                f"for {self.expected}"
            )
        self._hash.update(chunk)

    def finish(self) -> None:
        if self.received != self.size:
            raise IntegrityError(
                f"{self.what}: size mismatch for {self.expected}: "
                f"expected {self.size} bytes, got {self.received}"
            )
        actual = Digest(self._hash.hexdigest())
        if actual != self.expected:
            raise IntegrityError(
                f"{self.what}: digest mismatch: expected {self.expected}, got {actual}"
            )
