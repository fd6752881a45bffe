"""The full command line: parse, dispatch, and turn errors into messages and exit codes.

Every subcommand's parser carries ``run`` (``set_defaults``), the function of its command
group module that carries it out; this module calls it and is the only place that prints
errors. Heavy modules (requests, yaml, jsonschema) are imported inside the commands that
need them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from toolfetch.core.errors import LocalIOError, MultipleErrors, ToolfetchError
from toolfetch.core.host import offline_from_environment


def _setup_logging(verbose: int, quiet: bool) -> None:
    class _Formatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return f"{record.levelname.lower()}: {record.getMessage()}"

    log = logging.getLogger("toolfetch")
    for old in [h for h in log.handlers if getattr(h, "toolfetch_cli", False)]:
        log.removeHandler(old)  # main() called again in one process: one handler, not two
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    handler.toolfetch_cli = True  # type: ignore[attr-defined]
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.ERROR if quiet else logging.DEBUG if verbose else logging.WARNING)


def print_error(e: BaseException, verbose: int) -> None:
    """``error: …`` for each failure (its context frames, then what went wrong), then what
    its causes add as ``caused by: …`` lines.

    A cause whose text the error (or an earlier cause) already says is left out, so nothing
    is said twice; ``-v`` names each cause's type and shows the low-level causes an error's
    message translates (:meth:`ToolfetchError.with_detail`: the network's own exception
    behind "connection refused"), with URLs cut to what messages may show. Never a
    traceback: these are the documented exit codes (internal errors are printed apart).
    """
    errors = e.errors if isinstance(e, MultipleErrors) else [e]
    for err in errors:
        sys.stderr.write(f"error: {err}\n")
        said = [_flat(str(err))]
        holder: BaseException = err
        cause = err.__cause__
        while cause is not None:
            if isinstance(holder, ToolfetchError) and holder.cause_is_detail and not verbose:
                break
            flat = _flat(str(cause))
            if not any(flat in earlier for earlier in said) or (verbose and not flat):
                text = str(cause) or type(cause).__name__
                if verbose and not isinstance(cause, ToolfetchError) and str(cause):
                    text = f"{type(cause).__name__}: {_without_url_secrets(text)}"
                sys.stderr.write(f"  caused by: {text}\n")
                said.append(flat)
            holder, cause = cause, cause.__cause__


def _without_url_secrets(text: str) -> str:
    """``text`` with every URL in it cut to what messages may show (a library's exception
    can quote a pre-signed URL or ``user:password@`` whole). A URL runs to the next
    whitespace (requests and urllib3 send none unquoted) whatever it holds, a ``)`` or a
    quote included: a query cut at one would print the rest of it."""
    import re

    from toolfetch.core.urls import shown_url

    text = re.sub(r"[a-zA-Z][a-zA-Z0-9+.-]*://\S+", lambda m: shown_url(m[0]), text)
    return re.sub(r"(url: /[^\s?#]*)[?#]\S*", r"\1", text)  # urllib3's "with url: /path?…"


def _flat(text: str) -> str:
    """Text with its whitespace runs made one space (a YAML message spans lines)."""
    return " ".join(text.split())


def full_main(argv: list[str]) -> int:
    """Every command, validated by argparse (the path when the hit path did not serve)."""
    from toolfetch.cli.parser import build_parser

    parser = build_parser(argv)
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # in the command's own words, not the top-level usage
        getattr(args, "usage_parser", parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    verbose = getattr(args, "verbose", 0) or 0
    _setup_logging(verbose, getattr(args, "quiet", False))
    run: Callable[..., int] = args.run
    try:
        offline_from_environment()  # a malformed TOOLFETCH_OFFLINE is exit 2 on every command
        return run(args)
    except ToolfetchError as e:
        print_error(e, verbose)
        return e.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        return 130
    except BrokenPipeError:
        return 1
    except OSError as e:  # the local file system, where no command said what it was doing
        error = LocalIOError(f"{e.filename or 'local file system'}: {e.strerror or e}")
        error.__cause__ = e
        print_error(error, verbose)
        return error.exit_code
    except Exception as e:  # a bug: say so, show the traceback only with -v
        sys.stderr.write(f"error: internal error: {type(e).__name__}: {e}\n")
        if verbose:
            import traceback

            traceback.print_exception(e)
        else:
            sys.stderr.write("  (run with -v for a traceback, and please report it)\n")
        return 1
