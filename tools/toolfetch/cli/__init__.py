"""The command line: the hit path, argument parsing, one module per command group.

The only layer that prints errors and exits. :func:`console` is the ``toolfetch`` command and
``python -m toolfetch``; :func:`main` is what it runs: a cache hit of ``which``/``run``/``fetch``
is answered by :mod:`toolfetch.cli.hitpath` from the lockfile index before anything but the
standard library's ``os`` and ``sys`` is imported (``json`` only for ``--json``); everything
else goes through :func:`toolfetch.cli.app.full_main`.
"""

from __future__ import annotations

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing on the hit path
if TYPE_CHECKING:
    from typing import NoReturn


def main(argv: list[str] | None = None) -> int:
    import sys

    from toolfetch.cli.hitpath import try_hit

    args = list(sys.argv[1:] if argv is None else argv)
    served = try_hit(args)
    if served is not None:
        return served
    from toolfetch.cli.app import full_main

    return full_main(args)


def console(argv: list[str] | None = None) -> NoReturn:
    """Run :func:`main`, flush stdout and stderr, and end the process at once (``os._exit``).

    The interpreter's own exit clears every module a command imported (a cold fetch imports
    ~380, requests and urllib3 the most): ~60 ms on this project's CI machines, a sixth of
    a cold fetch, that does nothing for toolfetch. By the time :func:`main` returns, every
    file toolfetch wrote is closed and renamed into place and every thread pool joined; its
    logging handler writes to stderr, flushed here. A reader that left (``toolfetch … |
    head``) is not an error: exit 1, quietly, as the command's own broken-pipe handling does.
    """
    import os
    import sys

    code = 0  # until main returns; then a failed flush keeps a failure's own exit code
    try:
        code = main(argv)
        sys.stdout.flush()
    except BrokenPipeError:
        code = code or 1
    except OSError as e:  # the hit path prints unguarded; a full disk under a redirect, say
        sys.stderr.write(f"error: {e.filename or 'standard output'}: {e.strerror or e}\n")
        code = code or 8
    try:
        sys.stderr.flush()
    except OSError:
        code = code or 1
    os._exit(code)
