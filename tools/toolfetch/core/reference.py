"""References: registry references and ``oci-layout:DIR`` sources.

Registry grammar (distribution/reference): ``[registry[:port]/]repo[:tag][@sha256:…]``.
Docker Hub short names are normalised (``alpine`` → ``docker.io/library/alpine``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from toolfetch.core.digest import Digest
from toolfetch.core.errors import UnreachableError, UsageError
from toolfetch.core.urls import host_problem

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
DOCKER_HUB_ALIASES = frozenset({DOCKER_HUB, "index.docker.io", DOCKER_HUB_API})
LAYOUT_PREFIX = "oci-layout:"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPO = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_HOST = re.compile(
    r"(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
    r"(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*"
    r"|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?"
)


def canonical_registry(host: str) -> str:
    """One name per registry as references spell it: Docker Hub's host names are
    ``docker.io`` (mirror keys are normalised the same way, or they would never match)."""
    return DOCKER_HUB if host in DOCKER_HUB_ALIASES else host


def _split_digest(text: str, what: str) -> tuple[str, Digest | None]:
    """``name@sha256:…`` into the name and the digest (UsageError prefixed by ``what``)."""
    if "@" not in text:
        return text, None
    name, _, digest_text = text.rpartition("@")
    try:
        return name, Digest.parse(digest_text)
    except UsageError as e:
        raise UsageError(f"{what}: {e}") from e


def _suffix(tag: str | None, digest: Digest | None) -> str:
    return (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


@dataclass(frozen=True)
class Reference:
    """A normalised registry reference."""

    registry: str
    repository: str
    tag: str | None = None
    digest: Digest | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        original = text
        if not text or text != text.strip():
            raise UsageError(f"malformed reference {original!r}: empty or surrounding whitespace")
        text, digest = _split_digest(text, f"malformed reference {original!r}")
        registry = DOCKER_HUB
        first, sep, rest = text.partition("/")
        if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
            problem = None if _HOST.fullmatch(first) else "not host[:port]"
            problem = problem or host_problem(first)  # the port range, label lengths
            if problem:
                raise UsageError(f"malformed reference {original[:300]!r}: bad registry host "
                                 f"{first[:100]!r}: {problem}")
            registry = first
            text = rest
        tag: str | None = None
        last_slash = text.rfind("/")
        colon = text.rfind(":")
        if colon > last_slash:
            text, tag = text[:colon], text[colon + 1 :]
            if not _TAG.fullmatch(tag):
                raise UsageError(f"malformed reference {original!r}: bad tag {tag!r}")
        registry = canonical_registry(registry)
        if registry == DOCKER_HUB and "/" not in text:
            text = f"library/{text}"
        if not _REPO.fullmatch(text) or len(text) > 255:
            raise UsageError(
                f"malformed reference {original!r}: repository {text!r} must be lowercase "
                "components of [a-z0-9] joined by '.', '_', '__' or '-', separated by '/'"
            )
        if tag is None and digest is None:
            tag = "latest"
        return cls(registry, text, tag, digest)

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}{_suffix(self.tag, self.digest)}"

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def api_host(self) -> str:
        """The host:port actually contacted (Docker Hub lives at registry-1.docker.io)."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def target(self) -> str:
        """What to ask the registry for: the digest when pinned, else the tag."""
        return str(self.digest) if self.digest else str(self.tag)

    def with_digest(self, digest: Digest) -> Reference:
        return replace(self, digest=digest)

    def with_repository(self, registry: str, repository: str) -> Reference:
        return replace(self, registry=registry, repository=repository)


@dataclass(frozen=True)
class LayoutReference:
    """``oci-layout:DIR[:tag|@digest]``: an OCI image layout on disk (ORAS's ``--oci-layout``)."""

    path: Path
    tag: str | None = None
    digest: Digest | None = None

    @classmethod
    def parse(cls, text: str, base_dir: Path | None = None) -> LayoutReference:
        if not text.startswith(LAYOUT_PREFIX):
            raise UsageError(f"malformed layout reference {text!r}: must start with oci-layout:")
        body, digest = _split_digest(text[len(LAYOUT_PREFIX) :],
                                     f"malformed layout reference {text!r}")
        tag: str | None = None
        if body.startswith(":"):
            raise UsageError(f"malformed layout reference {text!r}: missing directory")
        colon = body.rfind(":")
        if colon > body.rfind("/") and colon > 0 and not _is_drive(body, colon):
            body, tag = body[:colon], body[colon + 1 :]
            if not _TAG.fullmatch(tag):
                raise UsageError(f"malformed layout reference {text!r}: bad tag {tag!r}")
        if not body:
            raise UsageError(f"malformed layout reference {text!r}: missing directory")
        path = Path(body)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        return cls(path, tag, digest)

    def __str__(self) -> str:
        return f"{LAYOUT_PREFIX}{self.path}{_suffix(self.tag, self.digest)}"

    @property
    def target(self) -> str:
        return str(self.digest) if self.digest else (self.tag or "latest")

    def with_digest(self, digest: Digest) -> LayoutReference:
        return replace(self, digest=digest)


AnyReference = Reference | LayoutReference


def _is_drive(body: str, colon: int) -> bool:
    return colon == 1 and body[0].isalpha()


def parse_any(text: str, base_dir: Path | None = None) -> AnyReference:
    if text.startswith(LAYOUT_PREFIX):
        return LayoutReference.parse(text, base_dir)
    return Reference.parse(text)


def rebase_layout_ref(text: str, from_dir: Path, to_dir: Path) -> str:
    """Rewrite a relative ``oci-layout:DIR`` from one file's directory to another's."""
    if not text.startswith(LAYOUT_PREFIX):
        return text
    ref = LayoutReference.parse(text)
    if ref.path.is_absolute():
        return text
    absolute = (from_dir / ref.path).resolve()
    relative = Path(os.path.relpath(absolute, to_dir.resolve()))
    return str(LayoutReference(Path(relative.as_posix()), ref.tag, ref.digest))


def refuse_offline(what: str, *refs: AnyReference) -> None:
    """UnreachableError (exit 6) for the first registry reference among ``refs``: the
    caller is offline (``--offline``, ``TOOLFETCH_OFFLINE``, ``Client(offline=True)``) and
    ``what`` would need that registry. Called before any request; an ``oci-layout:``
    reference is local and always allowed."""
    for ref in refs:
        if not isinstance(ref, LayoutReference):
            raise offline_error(f"{what} {ref}: needs the registry {ref.registry}")


def offline_error(need: str) -> UnreachableError:
    """``need`` (what wanted the network), refused because the caller is offline."""
    return UnreachableError(f"{need}, and offline (--offline, TOOLFETCH_OFFLINE=1 or "
                            "Client(offline=True)) forbids the network")
