"""Failing fast, visibly: a registry that accepts connections and never answers fails a fetch
within about a minute with the defaults (exit 6, naming the host and what timed out), and
each retry is announced on stderr without -v."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from tf import TRACEBACK, run_toolfetch

from toolfetch.registry.retry import FAST_FAIL_ATTEMPTS, RetryPolicy


@pytest.fixture
def silent_registry() -> Iterator[str]:
    """``127.0.0.1:PORT`` of a server that accepts every connection and never sends a byte."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        server.close()


def test_the_defaults_give_up_on_a_silent_registry_within_a_minute() -> None:
    policy = RetryPolicy()
    unanswered = requests.exceptions.ReadTimeout("no answer")
    attempts = policy.attempts_for(unanswered)
    assert attempts == FAST_FAIL_ATTEMPTS == 2
    worst_backoff = sum(policy.base_delay * 2 ** i for i in range(attempts - 1))
    assert attempts * policy.read_timeout + worst_backoff <= 45  # 2 x 20 s + 0.5 s
    assert policy.attempts_for(requests.exceptions.ConnectionError("reset")) == policy.attempts


def test_a_silent_registry_fails_the_fetch_fast_and_says_so(
        example: Path, silent_registry: str) -> None:
    text = example.read_text().replace("oci-layout:registry:say-1.0",
                                       f"{silent_registry}/t/say:1.0")
    example.write_text(text)
    started = time.monotonic()
    # TOOLFETCH_TIMEOUT (docs/auth.md) scales the test down: 2 attempts of 1 s, not 20 s
    r = run_toolfetch("fetch", "--lockfile", example, "say", env={"TOOLFETCH_TIMEOUT": "1"})
    took = time.monotonic() - started
    assert r.returncode == 6, r.stderr
    assert took < 10, took
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and silent_registry in errors[0]
    assert "read timed out: no answer within 1 s, TOOLFETCH_TIMEOUT" in errors[0]
    assert "after 2 attempts" in errors[0]
    retries = [line for line in r.stderr.splitlines() if line.startswith("warning: ")]
    assert len(retries) == 1 and "retrying in" in retries[0] and "attempt 2 of 2" in retries[0]
    assert silent_registry in retries[0] and TRACEBACK not in r.stderr
