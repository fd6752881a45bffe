"""Unit tests of toolfetch.core.digest."""

from __future__ import annotations

import hashlib

import pytest

from toolfetch.core.digest import Digest, StreamVerifier
from toolfetch.core.errors import IntegrityError, UsageError

DATA = b"some blob bytes\n" * 100
HEX = hashlib.sha256(DATA).hexdigest()


def test_parse_str_short_and_of_bytes() -> None:
    d = Digest.parse(f"sha256:{HEX}")
    assert d.hex == HEX
    assert str(d) == f"sha256:{HEX}"
    assert d.short == f"sha256:{HEX[:12]}"
    assert Digest.of_bytes(DATA) == d
    assert Digest.of_bytes(b"") == Digest(hashlib.sha256(b"").hexdigest())


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (HEX, "only sha256"),
        (f"sha512:{HEX}", "only sha256"),
        (f"SHA256:{HEX}", "only sha256"),
        (f"sha256:{HEX.upper()}", "malformed digest"),
        (f"sha256:{HEX[:-1]}", "malformed digest"),
        (f"sha256:{HEX}0", "malformed digest"),
        (f"sha256:{HEX[:-1]}g", "malformed digest"),
        ("sha256:", "malformed digest"),
    ],
)
def test_malformed_digests_are_usage_errors(text: str, needle: str) -> None:
    with pytest.raises(UsageError) as exc:
        Digest.parse(text)
    assert exc.value.exit_code == 2
    assert needle in str(exc.value) and repr(text) in str(exc.value)


def test_verify_bytes() -> None:
    d = Digest(HEX)
    d.verify_bytes(DATA, "blob")  # no exception
    with pytest.raises(IntegrityError) as exc:
        d.verify_bytes(DATA + b"x", "blob X")
    msg = str(exc.value)
    assert exc.value.exit_code == 3
    assert "blob X" in msg and str(d) in msg
    assert str(Digest.of_bytes(DATA + b"x")) in msg


def _stream(v: StreamVerifier, data: bytes, chunk: int = 7) -> None:
    for i in range(0, len(data), chunk):
        v.update(data[i : i + chunk])
    v.finish()


def test_stream_verifier_accepts_exact_content() -> None:
    v = StreamVerifier(Digest(HEX), len(DATA), "blob")
    _stream(v, DATA)
    assert v.received == len(DATA)


def test_stream_verifier_stops_at_first_byte_past_the_size() -> None:
    v = StreamVerifier(Digest(HEX), len(DATA), "blob")
    v.update(DATA)
    with pytest.raises(IntegrityError, match="size mismatch") as exc:
        v.update(b"!")
    assert f"sha256:{HEX}" in str(exc.value)


def test_stream_verifier_short_content() -> None:
    v = StreamVerifier(Digest(HEX), len(DATA), "blob")
    with pytest.raises(IntegrityError, match=f"expected {len(DATA)} bytes, got {len(DATA) - 1}"):
        _stream(v, DATA[:-1])


def test_stream_verifier_same_size_wrong_bytes_names_both_digests() -> None:
    altered = bytearray(DATA)
    altered[len(altered) // 2] ^= 0xFF
    v = StreamVerifier(Digest(HEX), len(DATA), "blob Y")
    with pytest.raises(IntegrityError) as exc:
        _stream(v, bytes(altered))
    msg = str(exc.value)
    assert exc.value.exit_code == 3
    assert "digest mismatch" in msg and "blob Y" in msg
    assert f"expected sha256:{HEX}" in msg
    assert f"got sha256:{hashlib.sha256(altered).hexdigest()}" in msg


@pytest.fixture
def pipelined(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hash on the helper thread even for the small test data."""
    import toolfetch.core.digest as digest_module

    monkeypatch.setattr(digest_module, "PIPELINE_MIN_BYTES", 1)


def _hashers() -> list[object]:
    import threading

    return [t for t in threading.enumerate() if t.name == "sha256"]


@pytest.mark.usefixtures("pipelined")
def test_pipelined_hashing_verifies_the_same_and_ends_its_thread() -> None:
    with StreamVerifier(Digest(HEX), len(DATA), "blob") as v:
        assert len(_hashers()) == 1
        _stream(v, DATA, chunk=3)
    assert _hashers() == []
    altered = bytes([DATA[0] ^ 1]) + DATA[1:]
    with pytest.raises(IntegrityError, match="digest mismatch"), \
            StreamVerifier(Digest(HEX), len(DATA), "blob") as v:
        _stream(v, altered)
    assert _hashers() == []


@pytest.mark.usefixtures("pipelined")
def test_an_abandoned_or_restarted_stream_ends_its_thread() -> None:
    with pytest.raises(IntegrityError, match="more than the declared"), \
            StreamVerifier(Digest(HEX), len(DATA), "blob") as v:
        v.update(DATA + b"!")
    assert _hashers() == []
    with StreamVerifier(Digest(HEX), len(DATA), "blob") as v:
        v.update(b"garbage from a server that ignored Range")
        v.reset()
        assert v.received == 0 and len(_hashers()) == 1
        _stream(v, DATA)
    assert _hashers() == []
