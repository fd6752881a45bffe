"""One exception hierarchy; each subclass carries its exit code (docs/design.md, exit codes).

Only the ``cli`` layer turns these into messages and exit codes (``cli.app.print_error``, the
one printer). An error is what went wrong (:attr:`ToolfetchError.detail`, naming the file,
field, digest at fault) inside context frames (:attr:`ToolfetchError.frames`, outermost
first: ``tool protoc``, ``fetch``), added on the way up by :meth:`ToolfetchError.context`,
which keeps the class, the exit code and the cause chain. The message is the frames and the
detail joined by ``": "``; code that needs to know whether a frame is there asks
:meth:`ToolfetchError.has_context`, never the text. Causes are chained with ``raise … from
e`` and printed as ``caused by:`` lines; a low-level cause the message already translates
(the network's exception behind "connection refused") is marked with
:meth:`ToolfetchError.with_detail` and printed only with ``-v``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

E = TypeVar("E", bound="ToolfetchError")


class ToolfetchError(Exception):
    """Base of every error toolfetch raises on purpose."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.detail = message
        self.frames: tuple[str, ...] = ()
        self.unsaid_frames: tuple[str, ...] = ()  # the frames the message shows
        self.cause_is_detail = False

    @property
    def message(self) -> str:
        """The whole message: the context frames the detail does not already begin with,
        outermost first, then the detail."""
        return ": ".join((*self.unsaid_frames, self.detail))

    def __str__(self) -> str:
        return self.message

    def has_context(self, frame: str) -> bool:
        """Whether this error is inside the context ``frame`` (added by :meth:`context`)."""
        return frame in self.frames

    def context(self, frame: str) -> ToolfetchError:
        """This error inside the context ``frame`` (``tool protoc``); the same error when it
        has that frame already.

        A message that already begins with the frame's words (``tool protoc (ref) [key]:
        …`` for ``tool protoc``, written where the error was made) records the frame
        without repeating it. The copy keeps the class (so the exit code), every attribute
        and the cause chain (its ``__cause__`` is this error's own cause).
        """
        import copy  # lazily: the hit path imports this module

        if self.has_context(frame):
            return self
        wrapped = copy.copy(self)
        wrapped.frames = (frame, *self.frames)
        if not _begins_with(self.message, frame):
            wrapped.unsaid_frames = (frame, *self.unsaid_frames)
        wrapped.args = (wrapped.message,)
        wrapped.__cause__ = self.__cause__
        wrapped.__suppress_context__ = True
        return wrapped

    def with_detail(self: E, cause: BaseException) -> E:
        """This error caused by ``cause``, a low-level exception its message already
        translates (a requests ConnectionError behind "connection refused"): the printer
        shows it only with ``-v``. Raise the result ``from cause``."""
        self.__cause__ = cause
        self.cause_is_detail = True
        return self


def _begins_with(message: str, words: str) -> bool:
    """Whether ``message`` begins with ``words`` as whole words (``tool a`` begins ``tool a
    [x]: …`` and ``tool a: …``, not ``tool ab: …``)."""
    rest = message[len(words):len(words) + 1]
    return message.startswith(words) and (not rest or rest in " :.,[(")


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
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors
        self.exit_code = errors[0].exit_code

    def context(self, frame: str) -> ToolfetchError:
        return MultipleErrors([e.context(frame) for e in self.errors])


def raise_all(errors: Sequence[ToolfetchError]) -> None:
    """Raise what went wrong, if anything: the one error, or :class:`MultipleErrors` of
    several, in order (the first one's exit code)."""
    if errors:
        raise errors[0] if len(errors) == 1 else MultipleErrors(list(errors))
