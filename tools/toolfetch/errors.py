"""One exception hierarchy; each subclass carries the exit code of DESIGN §5.

Only ``cli.py`` turns these into messages and exit codes. Messages say what
failed on what (file, field, tool, digest); causes are chained with
``raise … from e`` and printed as ``caused by:`` lines.
"""

from __future__ import annotations


class ToolfetchError(Exception):
    """Base of every error toolfetch raises on purpose."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InternalError(ToolfetchError):
    exit_code = 1


class UsageError(ToolfetchError):
    """Bad flags, references, tools.yaml or lockfile."""

    exit_code = 2


class IntegrityError(ToolfetchError):
    """Digest or size mismatch, unsafe archive."""

    exit_code = 3


class NotFoundError(ToolfetchError):
    """Tool, platform, tag, manifest or blob does not exist."""

    exit_code = 4


class AuthError(ToolfetchError):
    """Authentication or authorization failure."""

    exit_code = 5


class UnreachableError(ToolfetchError):
    """Registry unreachable after retries, or offline and not cached."""

    exit_code = 6


class OutOfDateError(ToolfetchError):
    """`lock --check` found drift."""

    exit_code = 7


class MultipleErrors(ToolfetchError):
    """Several independent failures (one per tool); exit code of the first."""

    def __init__(self, errors: list[ToolfetchError]) -> None:
        assert errors
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors
        self.exit_code = errors[0].exit_code
