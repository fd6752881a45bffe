"""sha256 digests: parsing, validation and streaming verification."""

from __future__ import annotations

import hashlib
import os
import queue
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import BinaryIO

from toolfetch.core.errors import IntegrityError, UsageError

HEX = re.compile(r"[0-9a-f]{64}")  # a sha256 in lower-case hex
PIPELINE_MIN_BYTES = 8 << 20  # below this a helper thread costs more than it saves
_PIPELINE_CHUNKS = 8  # chunks queued for the hasher at most (bounded memory)
# A ring buffer is refilled only once the hasher is done with it: at most the queued chunks
# plus the one being hashed are pending.
RING_SLOTS = _PIPELINE_CHUNKS + 3
COPY_CHUNK = 1 << 20


@dataclass(frozen=True, order=True)
class Digest:
    """A ``sha256:<64 hex>`` content digest (the only algorithm toolfetch accepts)."""

    hex: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        algo, sep, hexpart = text.partition(":")
        if not sep or algo != "sha256":
            raise UsageError(f"unsupported digest {text!r}: only sha256:<64 hex> is accepted")
        if not HEX.fullmatch(hexpart):
            raise UsageError(f"malformed digest {text!r}: expected sha256:<64 lowercase hex>")
        return cls(hexpart)

    @classmethod
    def of_bytes(cls, data: bytes) -> Digest:
        return cls(hashlib.sha256(data).hexdigest())

    @classmethod
    def of_file(cls, path: str | os.PathLike[str]) -> Digest:
        """The digest of a file's bytes (never following a final symlink)."""
        with open(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "rb") as f:
            return cls.of_open_file(f)

    @classmethod
    def of_open_file(cls, f: BinaryIO) -> Digest:
        """The digest of what is left to read in ``f`` (streaming)."""
        h = hashlib.sha256()
        while chunk := f.read(COPY_CHUNK):
            h.update(chunk)
        return cls(h.hexdigest())

    def __str__(self) -> str:
        return f"sha256:{self.hex}"

    @property
    def tag(self) -> str:
        """``sha256-<hex>``: the tag the referrers tag schema (and cosign's ``.sig``) name a
        subject by, in registries without the referrers API."""
        return f"sha256-{self.hex}"

    @property
    def short(self) -> str:
        return f"sha256:{self.hex[:12]}"

    def verify_bytes(self, data: bytes, what: str) -> None:
        actual = Digest.of_bytes(data)
        if actual != self:
            raise IntegrityError(f"{what}: digest mismatch: expected {self}, got {actual}")


class _HashPipe:
    """sha256 on a helper thread. hashlib releases the GIL, so hashing overlaps the caller's
    socket reads and file writes: one pass over the bytes, on two cores."""

    def __init__(self, h: hashlib._Hash) -> None:
        self._hash = h
        self._queue: queue.Queue[bytes | memoryview | None] = queue.Queue(_PIPELINE_CHUNKS)
        self._thread = threading.Thread(target=self._run, name="sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            self._hash.update(chunk)

    def put(self, chunk: bytes | memoryview) -> None:
        self._queue.put(chunk)

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


class StreamVerifier:
    """Hashes bytes as they stream past and checks size and digest at the end.

    Blobs of :data:`PIPELINE_MIN_BYTES` or more are hashed on a helper thread; use the
    verifier as a context manager (or call :meth:`close`) so that thread always ends. A chunk
    passed to :meth:`update` must not change until :data:`RING_SLOTS` more chunks were passed
    (:func:`copy_verified` keeps to that).
    """

    def __init__(self, expected: Digest, size: int, what: str) -> None:
        self.expected = expected
        self.size = size
        self.what = what
        self._pipe: _HashPipe | None = None
        self.reset()

    def reset(self) -> None:
        """Start over from byte 0 (a download that must restart)."""
        self.close()
        self.received = 0
        self._hash = hashlib.sha256()
        self._pipe = _HashPipe(self._hash) if self.size >= PIPELINE_MIN_BYTES else None

    def __enter__(self) -> StreamVerifier:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """End the helper thread, if any (idempotent)."""
        if self._pipe is not None:
            self._pipe.close()

    @property
    def pipelined(self) -> bool:
        return self._pipe is not None

    def update(self, chunk: bytes | memoryview) -> None:
        self.received += len(chunk)
        if self.received > self.size:
            raise IntegrityError(
                f"{self.what}: size mismatch: more than the declared {self.size} bytes "
                f"for {self.expected}"
            )
        if self._pipe is not None:
            self._pipe.put(chunk)
        else:
            self._hash.update(chunk)

    def finish(self) -> None:
        self.close()
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


ReadInto = Callable[[memoryview], int]


def copy_verified(readinto: ReadInto, sink: BinaryIO, verifier: StreamVerifier,
                  progress: Callable[[int], None] | None = None) -> None:
    """Copy a stream into ``sink`` until ``readinto`` returns 0, feeding ``verifier``.

    The chunks go through a ring of reused buffers: no allocation per chunk, so no fresh
    pages to fault in (on a 512 MiB download that was a quarter of the system time). Errors
    of ``readinto`` and ``sink`` propagate; ``verifier.received`` counts what ``sink`` got
    up to the failing chunk (so a caller can resume after it).
    """
    slots = RING_SLOTS if verifier.pipelined else 1
    size = min(COPY_CHUNK, max(verifier.size - verifier.received, 1) + 1)
    ring = [memoryview(bytearray(size)) for _ in range(slots)]
    turn = 0
    while True:
        buffer = ring[turn % slots]
        turn += 1
        n = readinto(buffer)
        if not n:
            return
        chunk = buffer[:n]
        verifier.update(chunk)  # IntegrityError as soon as it exceeds the size
        sink.write(chunk)
        if progress:
            progress(n)
