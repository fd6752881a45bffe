"""The command line: the hit path, argument parsing, one module per command group.

The only layer that prints errors and exits. :func:`main` is the console script: a cache hit
of ``which``/``run``/``fetch`` is answered by :mod:`toolfetch.cli.hitpath` from the lockfile
index before anything but the standard library's ``os`` and ``sys`` is imported (``json``
only for ``--json``); everything else goes through :func:`toolfetch.cli.app.full_main`.
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    import sys

    from toolfetch.cli.hitpath import try_hit

    args = list(sys.argv[1:] if argv is None else argv)
    served = try_hit(args)
    if served is not None:
        return served
    from toolfetch.cli.app import full_main

    return full_main(args)
