"""One exception hierarchy; each subclass carries its exit code (docs/design.md, exit codes).

Only the ``cli`` layer turns these into messages and exit codes. Messages say what
failed on what (file, field, tool, digest); causes are chained with
``raise … from e`` and printed as ``caused by:`` lines. :meth:`ToolfetchError.context`
puts more context in front of a message without losing the class, the exit code or the
cause chain (instead of re-labelling with ``type(e)(…)``).
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

    def context(self, prefix: str) -> ToolfetchError:
        """This error with ``prefix: `` in front of its message (unless already there).

        The copy keeps the class (so the exit code), every attribute and the cause chain
        (its ``__cause__`` is this error's own cause).
        """
        import copy

        if self.message.startswith(f"{prefix}: "):
            return self
        wrapped = copy.copy(self)
        wrapped.message = f"{prefix}: {self.message}"
        wrapped.args = (wrapped.message,)
        wrapped.__cause__ = self.__cause__
        wrapped.__suppress_context__ = True
        return wrapped


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


class LocalIOError(ToolfetchError):
    """The local file system failed us: disk full, read-only or unwritable cache, an output
    directory that is not empty or cannot be written."""

    exit_code = 8

    @classmethod
    def of(cls, e: OSError, what: str) -> LocalIOError:
        """``what: <reason> (<file>)`` for an OSError; raise it ``from e``."""
        import errno

        reason = {
            errno.ENOSPC: "no space left on device",
            errno.EROFS: "read-only file system",
            errno.EACCES: "permission denied",
            errno.EDQUOT: "disk quota exceeded",
        }.get(e.errno or 0, e.strerror or str(e))
        where = f" ({e.filename})" if e.filename else ""
        return cls(f"{what}: {reason}{where}")


class MultipleErrors(ToolfetchError):
    """Several independent failures (one per tool); exit code of the first."""

    def __init__(self, errors: list[ToolfetchError]) -> None:
        assert errors
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors
        self.exit_code = errors[0].exit_code

    def context(self, prefix: str) -> ToolfetchError:
        return MultipleErrors([e.context(prefix) for e in self.errors])
