"""Errors as a detail inside context frames: frames are asked, not searched for in the text;
the class, exit code and cause survive; the one printer shows frames and detail, and the
low-level causes a message translates only with -v."""

from __future__ import annotations

import pytest

from toolfetch.cli.app import print_error
from toolfetch.core.errors import (
    IntegrityError,
    MultipleErrors,
    NotFoundError,
    UnreachableError,
    UsageError,
)


def test_a_frame_is_asked_for_and_printed_in_front() -> None:
    root = ValueError("bad byte")
    try:
        raise IntegrityError("blob sha256:ab: digest mismatch") from root
    except IntegrityError as e:
        error = e
    framed = error.context("tool protoc").context("fetch")
    assert type(framed) is IntegrityError and framed.exit_code == 3
    assert framed.frames == ("fetch", "tool protoc")
    assert framed.has_context("tool protoc") and not error.has_context("tool protoc")
    assert framed.detail == "blob sha256:ab: digest mismatch"
    assert str(framed) == "fetch: tool protoc: blob sha256:ab: digest mismatch"
    assert framed.__cause__ is root
    assert framed.context("tool protoc") is framed  # a frame once


def test_a_frame_the_message_begins_with_is_recorded_not_repeated() -> None:
    made_naming_it = NotFoundError("tool protoc (ghcr.io/a/protoc:1) [linux/amd64]: no such "
                                   "platform").context("tool protoc")
    assert made_naming_it.has_context("tool protoc")
    assert str(made_naming_it) == ("tool protoc (ghcr.io/a/protoc:1) [linux/amd64]: no such "
                                   "platform")
    other_tool = NotFoundError("tool protocol: missing").context("tool protoc")
    assert str(other_tool) == "tool protoc: tool protocol: missing"
    many = MultipleErrors([NotFoundError("a"), UsageError("b")]).context("lock")
    assert isinstance(many, MultipleErrors) and many.exit_code == 4
    assert [str(e) for e in many.errors] == ["lock: a", "lock: b"]
    assert all(e.has_context("lock") for e in many.errors)


def _unreachable() -> UnreachableError:
    network = ConnectionRefusedError(111, "Connection refused to https://u:pw@h/x?sig=SECRET")
    try:
        raise UnreachableError("manifest h/r:1: registry h unreachable after 2 attempts "
                               "(connection refused)").with_detail(network) from network
    except UnreachableError as e:
        return e


def test_the_network_cause_is_shown_with_verbose_only(capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    error = _unreachable().context("tool t")
    print_error(error, verbose=0)
    quiet = capsys.readouterr().err
    assert quiet == ("error: tool t: manifest h/r:1: registry h unreachable after 2 attempts "
                     "(connection refused)\n")
    print_error(error, verbose=1)
    verbose = capsys.readouterr().err.splitlines()
    assert verbose[0] == quiet.rstrip("\n")
    assert verbose[1:] == ["  caused by: ConnectionRefusedError: [Errno 111] Connection "
                           "refused to https://h/x"]  # never the secret in the URL


def test_ordinary_causes_are_still_printed_without_verbose(
        capsys: pytest.CaptureFixture[str]) -> None:
    try:
        raise UsageError("tools.yaml: not YAML") from ValueError("line 3: unexpected ':'")
    except UsageError as e:
        print_error(e.context("lock"), verbose=0)
    assert capsys.readouterr().err == ("error: lock: tools.yaml: not YAML\n"
                                       "  caused by: line 3: unexpected ':'\n")


SIGNED = "X-Amz-Signature=SEC(RET)MORE&a=TAIL"


@pytest.mark.parametrize(("said", "shown"), [
    (f"HTTPConnectionPool(host='127.0.0.1', port=1): Max retries exceeded with url: "
     f"/storage/x?{SIGNED} (Caused by NewConnectionError('[Errno 111] Connection refused'))",
     "HTTPConnectionPool(host='127.0.0.1', port=1): Max retries exceeded with url: "
     "/storage/x (Caused by NewConnectionError('[Errno 111] Connection refused'))"),
    (f"url: /storage/x#{SIGNED} (Caused by X)", "url: /storage/x (Caused by X)"),
    (f"refused to http://127.0.0.1:1/storage/x?{SIGNED} (Caused by X)",
     "refused to http://127.0.0.1:1/storage/x (Caused by X)"),
    (f"refused to https://h/x#{SIGNED}", "refused to https://h/x"),
    (f"Invalid URL 'http://h/x?{SIGNED}'more': No host", "Invalid URL 'http://h/x No host"),
    ("refused to http://us(er:pa)ss@h/x", "refused to http://h/x"),
], ids=["urllib3-query", "urllib3-fragment", "url-query", "url-fragment", "quoted-url",
        "userinfo"])
def test_v_cuts_a_urls_query_whole_whatever_it_holds(
        capsys: pytest.CaptureFixture[str], said: str, shown: str) -> None:
    """A `)` (or a quote) in a pre-signed query ended the URL: the rest of the query was
    printed with -v (`…/storage/x)MORE&a=TAIL`)."""
    try:
        raise UnreachableError("registry h unreachable").with_detail(OSError(said)) \
            from OSError(said)
    except UnreachableError as e:
        print_error(e, verbose=1)
    err = capsys.readouterr().err
    assert err.splitlines()[1:] == [f"  caused by: OSError: {shown}"], err
    for secret in ("SEC", "RET", "MORE", "TAIL", "pa)ss"):
        assert secret not in err
