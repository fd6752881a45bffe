"""Retry policy and the classification of network failures (for retries and for messages).

Retries (see docs/auth.md): 408, 429 and 5xx answers (but 501/505), connection resets and read
timeouts are retried ``TOOLFETCH_RETRIES`` times in all (default 5) with exponential backoff
from ``TOOLFETCH_RETRY_DELAY`` seconds (default 0.5, doubling, capped at 10 s, half-jittered);
``Retry-After`` (seconds or an HTTP date) replaces the backoff, capped at
``TOOLFETCH_RETRY_AFTER_MAX`` seconds (default 30). Timeouts: ``TOOLFETCH_CONNECT_TIMEOUT``
(default 10 s) and ``TOOLFETCH_TIMEOUT`` (read, default 20 s). A download must also keep a
pace: ``TOOLFETCH_MIN_RATE`` bytes a second on average (default 10K; 0 turns it off) after a
grace of ``TOOLFETCH_TIMEOUT``, so one of N bytes ends within ``TIMEOUT + N / MIN_RATE``
seconds, retries and resumes included (:class:`Pace`).

Failing fast: a host that takes no connection, or takes one and never answers (no response
within the read timeout), gets :data:`FAST_FAIL_ATTEMPTS` attempts, not ``TOOLFETCH_RETRIES``:
an unresponsive registry fails a request within about 2 x 20 s, where five 60 s attempts gave
five minutes of silence. Every retry is announced (a warning, without ``-v``).

One policy, composed once: the command's :class:`~toolfetch.registry.transport.Transport`
reads it from the environment when it is made, and every network operation goes through it:
a request through :meth:`RetryPolicy.send` (the transport's registry requests, under its
authentication as oras-go's retry transport sits under its auth client; token requests;
release assets), a download's interruptions through :meth:`RetryPolicy.download` (the
``Range`` resume of blobs, the restart of an asset being pinned), and small bodies through
its :class:`Pace`.
"""

from __future__ import annotations

import email.utils
import http.client
import logging
import os
import random
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import requests
import urllib3

from toolfetch.core.errors import UnreachableError, UsageError
from toolfetch.core.sizes import parse_size

NO_RETRY_5XX = frozenset({501, 505})
MIN_RATE_ENV = "TOOLFETCH_MIN_RATE"
DEFAULT_MIN_RATE = 10 * 1024
FAST_FAIL_ATTEMPTS = 2
log = logging.getLogger("toolfetch")


# A request that failed on the way (no answer to read): retried as the policy says.
NETWORK_FAILURES = (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                    requests.exceptions.ChunkedEncodingError)


def is_retry_status(status: int) -> bool:
    return status in (408, 429) or (500 <= status <= 599 and status not in NO_RETRY_5XX)


# Past these a value is a typo, and would overflow what it is handed to (int(), a socket
# timeout, time.sleep: OverflowError) rather than mean anything.
MAX_SECONDS = 7 * 24 * 3600.0
MAX_ATTEMPTS = 1000


def _env_number(name: str, default: float, minimum: float = 0.0,
                maximum: float = MAX_SECONDS) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{name}={text[:40]!r}: expected a number") from None
    if not minimum <= value <= maximum:  # also NaN and ±inf
        raise UsageError(f"{name}={text[:40]!r}: must be a number from {minimum:g} to "
                         f"{maximum:g}")
    return value


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 10.0
    max_retry_after: float = 30.0
    connect_timeout: float = 10.0
    read_timeout: float = 20.0  # idle time without a byte, not a deadline for a whole body
    min_rate: int = DEFAULT_MIN_RATE  # bytes a second a download must average (0: any)
    # How the policy waits between attempts: tests pass a recorder instead of sleeping.
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)

    @classmethod
    def from_env(cls) -> RetryPolicy:
        """``TOOLFETCH_RETRIES``, ``_RETRY_DELAY``, ``_RETRY_AFTER_MAX``, ``_CONNECT_TIMEOUT``
        and ``_TIMEOUT`` tune it (docs/auth.md)."""
        d = cls()
        base_delay = _env_number("TOOLFETCH_RETRY_DELAY", d.base_delay)
        return cls(
            attempts=int(_env_number("TOOLFETCH_RETRIES", d.attempts, 1, MAX_ATTEMPTS)),
            base_delay=base_delay,
            max_delay=max(d.max_delay, base_delay),
            max_retry_after=_env_number("TOOLFETCH_RETRY_AFTER_MAX", d.max_retry_after),
            connect_timeout=_env_number("TOOLFETCH_CONNECT_TIMEOUT", d.connect_timeout, 0.001),
            read_timeout=_env_number("TOOLFETCH_TIMEOUT", d.read_timeout, 0.001),
            min_rate=_env_rate(d.min_rate),
        )

    def send(self, send: Callable[[], requests.Response], where: str,
             rewind: Callable[[], bool] = lambda: True) -> requests.Response:
        """The one request retry loop: ``send()`` again after a network failure or a
        retryable status, announcing each retry; returns the last answer. ``where`` says what
        is asked of whom (``"<what>: registry <host>"``), in warnings and errors.
        ``rewind()`` readies the request body for another send; False ends the retries (a
        body that cannot be sent twice). A network failure on the last attempt raises
        UnreachableError, caused by the network's own exception (shown by ``-v``)."""
        attempt = 0
        while True:
            attempt += 1
            try:
                resp = send()
            except NETWORK_FAILURES as e:
                reason = self.explain(describe_network_error(e))
                allowed = self.attempts_for(e)
                if attempt >= allowed or not rewind():
                    raise UnreachableError(f"{where} unreachable after "
                                           f"{attempts_text(attempt)} ({reason})"
                                           ).with_detail(e) from e
                self._wait(f"{where}: {reason}", attempt, allowed)
                continue
            if is_retry_status(resp.status_code) and attempt < self.attempts and rewind():
                resp.close()
                self._wait(f"{where} answered HTTP {resp.status_code}", attempt, self.attempts,
                           resp.headers.get("Retry-After"))
                continue
            return resp

    def _wait(self, why: str, attempt: int, allowed: int, retry_after: str | None = None
              ) -> None:
        delay = self.delay(attempt, retry_after)
        log.warning("%s; retrying in %.1f s (attempt %d of %d)", why, delay, attempt + 1,
                    allowed)
        self.sleep(delay)

    def download(self, what: str, server: str) -> Download:
        """The interruptions one download (of ``what`` from ``server``) may survive, and the
        pace it must keep over all its attempts."""
        return Download(self, what, server, self.pace(f"{what}: {server}"))

    def pace(self, what: str) -> Pace:
        """The pace one download (all its attempts) must keep."""
        return Pace(self.read_timeout, self.min_rate, what, time.monotonic())

    def attempts_for(self, e: BaseException) -> int:
        """How many attempts a request failing with ``e`` gets in all: one when the server's
        certificate is not trusted (retrying cannot help), :data:`FAST_FAIL_ATTEMPTS` when the
        host accepts no connection (a dead mirror is skipped fast), else :attr:`attempts`."""
        if is_certificate_failure(e):
            return 1
        fast = is_connect_failure(e) or is_unanswered(e)
        return min(self.attempts, FAST_FAIL_ATTEMPTS) if fast else self.attempts

    def explain(self, reason: str) -> str:
        """``reason`` with the timeout that ran out and the variable that sets it."""
        if reason == "read timed out":
            return f"read timed out: no answer within {self.read_timeout:g} s, TOOLFETCH_TIMEOUT"
        if reason == "connect timed out":
            return (f"connect timed out: no connection within {self.connect_timeout:g} s, "
                    "TOOLFETCH_CONNECT_TIMEOUT")
        return reason

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout, self.read_timeout)

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` >= 1 were made)."""
        if retry_after:
            seconds = _parse_retry_after(retry_after)
            if seconds is not None:
                return min(max(seconds, 0.0), self.max_retry_after)
        backoff = min(self.base_delay * (2 ** max(attempt - 1, 0)), self.max_delay)
        return float(backoff / 2 + random.uniform(0, backoff / 2))


def _env_rate(default: int) -> int:
    text = os.environ.get(MIN_RATE_ENV, "").strip()
    return parse_size(text, MIN_RATE_ENV) if text else default


@dataclass(frozen=True)
class Pace:
    """A download may take ``grace`` seconds plus one second per ``min_rate`` bytes received:
    a server that trickles (a byte every half second never trips the read timeout) is cut
    off, one that keeps the pace never is, whatever the size (unknown sizes included)."""

    grace: float
    min_rate: int
    what: str
    start: float

    def check(self, received: int) -> None:
        """UnreachableError once the download is behind its pace."""
        if self.min_rate <= 0:
            return
        elapsed = time.monotonic() - self.start
        if elapsed > self.grace + received / self.min_rate:
            raise UnreachableError(
                f"{self.what}: too slow: {received} bytes in {elapsed:.0f} s, below "
                f"{MIN_RATE_ENV}={self.min_rate} bytes/s after a grace of {self.grace:g} s "
                "(TOOLFETCH_TIMEOUT); raise them, or 0 turns the pace check off")


def _parse_retry_after(value: str) -> float | None:
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return when.timestamp() - time.time()


class Download:
    """One download's interruptions (a stream cut short, a connection broken mid-body): the
    caller resumes or restarts it after :meth:`interrupted`, at most ``attempts`` times in
    all, with the policy's backoff; each request it sends is retried by :meth:`RetryPolicy.send`
    besides. Not shared between threads (one per download)."""

    def __init__(self, policy: RetryPolicy, what: str, server: str, pace: Pace) -> None:
        self.policy = policy
        self.what = what
        self.server = server
        self.pace = pace
        self.interruptions = 0

    @property
    def last_attempt(self) -> bool:
        """Whether the next interruption gives up."""
        return self.interruptions + 1 >= self.policy.attempts

    def interrupted(self, reason: str, resume_at: int,
                    cause: BaseException | None = None) -> None:
        """Wait before the next attempt (which starts at byte ``resume_at``), or raise
        UnreachableError when this was the last one, keeping the last interruption's network
        exception (``cause``, shown with ``-v``)."""
        self.interruptions += 1
        if self.interruptions >= self.policy.attempts:
            error = UnreachableError(f"{self.what}: connection to {self.server} kept failing "
                                     f"({self.interruptions} interruptions, last: {reason})")
            if cause is None:
                raise error
            raise error.with_detail(cause) from cause
        delay = self.policy.delay(self.interruptions)
        log.debug("%s: %s; resuming at byte %d in %.2fs", self.what, reason, resume_at, delay)
        self.policy.sleep(delay)


def attempts_text(n: int) -> str:
    return f"{n} attempt{'s' if n > 1 else ''}"


def _chain(e: BaseException) -> Iterator[BaseException]:
    """``e``, its causes and contexts, and the reasons urllib3 wraps inside ``args``."""
    seen: set[int] = set()
    todo = [e]
    while todo:
        cur = todo.pop()
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        yield cur
        for nxt in (cur.__cause__, cur.__context__, getattr(cur, "reason", None),
                    *[a for a in getattr(cur, "args", ()) if isinstance(a, BaseException)]):
            if isinstance(nxt, BaseException):
                todo.append(nxt)


def describe_network_error(e: BaseException) -> str:
    """A short, secret-free reason (exception texts can hold pre-signed redirect URLs)."""
    chain = list(_chain(e))
    untrusted = next((x for x in chain if isinstance(x, ssl.SSLCertVerificationError)), None)
    if untrusted is not None:
        return (f"TLS certificate not trusted: {untrusted.verify_message or 'verify failed'}; "
                "list the registry in TOOLFETCH_INSECURE_REGISTRIES to skip verification")
    kinds: list[tuple[type[BaseException] | tuple[type[BaseException], ...], str]] = [
        (ConnectionRefusedError, "connection refused"),
        (urllib3.exceptions.NameResolutionError, "host name does not resolve"),
        (socket.gaierror, "host name does not resolve"),
        (requests.exceptions.ConnectTimeout, "connect timed out"),
        ((requests.exceptions.ReadTimeout, urllib3.exceptions.ReadTimeoutError,
          TimeoutError, socket.timeout), "read timed out"),
        ((requests.exceptions.SSLError, ssl.SSLError), "TLS error"),
        (ConnectionResetError, "connection reset"),
        ((urllib3.exceptions.IncompleteRead, urllib3.exceptions.ProtocolError,
          http.client.IncompleteRead,
          requests.exceptions.ChunkedEncodingError, ConnectionAbortedError, BrokenPipeError),
         "connection broken"),
    ]
    for kind, text in kinds:
        if any(isinstance(x, kind) for x in chain):
            return text
    return type(e).__name__


def is_certificate_failure(e: BaseException) -> bool:
    """The server's certificate was refused: retrying cannot help."""
    return any(isinstance(x, ssl.SSLCertVerificationError) for x in _chain(e))


def is_unanswered(e: BaseException) -> bool:
    """A connection was made but no response came within the read timeout."""
    return any(isinstance(x, (requests.exceptions.ReadTimeout, urllib3.exceptions.ReadTimeoutError))
               for x in _chain(e))


def is_connect_failure(e: BaseException) -> bool:
    """Nothing was ever sent: refused, unresolvable, or no connection within the timeout."""
    return any(isinstance(x, (urllib3.exceptions.ConnectTimeoutError,
                              requests.exceptions.ConnectTimeout, ConnectionRefusedError,
                              socket.gaierror))
               for x in _chain(e))
