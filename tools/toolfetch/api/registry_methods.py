"""The registry half of :class:`toolfetch.Client`: what works on references rather than on
the lockfile's tools (``pull``, ``list_tags``, ``get_artifact_info`` under the names an
ORAS-style client uses; ``push``, ``publish``, ``attach``, ``tag``, ``copy``, ``exists``,
``referrers``, ``login``, ``logout``). A mixin so each half of the facade stays one module.

References are strings as the command line takes them: ``host/repo:tag``,
``host/repo@sha256:…`` or ``oci-layout:DIR:tag``. Files are paths; ``PATH:MEDIA/TYPE`` sets
a layer's media type, as on the command line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from toolfetch.api.arguments import PathArg, items, paths
from toolfetch.core.errors import NotFoundError, UsageError
from toolfetch.core.platform import Platform
from toolfetch.oci.manifest import TOOL_ARTIFACT_TYPE

if TYPE_CHECKING:
    from toolfetch.api.artifacts import ArtifactInfo
    from toolfetch.api.registry_results import ArtifactRef, LogoutResult, PullResult, Referrer
    from toolfetch.cache.store import Cache
    from toolfetch.core.progress import Progress
    from toolfetch.core.reference import AnyReference

#: ``toolfetch copy``'s default number of parallel blob copies (``Client.copy`` too)
COPY_JOBS = 4


def _platform(platform: str | None) -> Platform | None:
    return Platform.parse(platform) if platform else None


class RegistryMethods:
    """Methods on references; the settings they use (cache, lockfile, parallelism, progress
    bars) are the client's."""

    cache: Cache
    lockfile: Path
    offline: bool
    jobs: int
    progress: bool

    def _parse(self, what: str, ref: str) -> AnyReference:
        """``ref`` parsed; offline, a registry reference is refused before any request."""
        from toolfetch.core.reference import parse_any, refuse_offline

        parsed = parse_any(ref)
        if self.offline:
            refuse_offline(what, parsed)
        return parsed

    def _bar(self, label: str) -> Progress:
        from toolfetch.core.progress import Progress

        return Progress(label, 0, self.progress)

    # -- reading -------------------------------------------------------------------------
    def pull(self, ref: str, output: PathArg, platform: str | None = None) -> list[Path]:
        """Write an artifact's titled layers into ``output`` (``toolfetch pull -o``); an
        index is resolved for ``platform`` (default: this host). Returns the artifact's
        files in ``output``, those already there with the same bytes included
        (:meth:`pull_artifact` tells them apart)."""
        return list(self.pull_artifact(ref, output, platform).files)

    def pull_artifact(self, ref: str, output: PathArg,
                      platform: str | None = None) -> PullResult:
        """:meth:`pull`, saying what it wrote and what was there already. A file already
        there with the very same bytes is left as it is (pulling twice succeeds); one with
        other bytes, or a directory, is never replaced: UsageError (exit 2), nothing
        written. NotFoundError (exit 4) when no layer has a title."""
        from toolfetch.api.registry_results import PullResult
        from toolfetch.ops.copy_pull import pull

        parsed = self._parse("pull", ref)
        where = Path(output).absolute()
        files, present = pull(parsed, where, _platform(platform), progress=self.progress)
        return PullResult(str(parsed), where, tuple(files), tuple(present))

    def list_tags(self, repository: str) -> list[str]:
        """Every tag of ``repository`` (``registry/name`` or ``oci-layout:DIR``, no tag)."""
        from toolfetch.ops.inspect_tags import tags

        self._parse("tags", repository)
        return tags(repository)

    def get_artifact_info(self, ref: str) -> ArtifactInfo:
        """What ``ref`` names (``toolfetch inspect``): kind, layers, platforms, WASM kind."""
        from toolfetch.api.artifacts import ArtifactInfo
        from toolfetch.ops.inspect_tags import inspect
        from toolfetch.registry.targets import open_source

        parsed = self._parse("inspect", ref)
        return ArtifactInfo.of(inspect(parsed, open_source(parsed)))

    def manifest_digest(self, ref: str) -> str:
        """The ``sha256:…`` of the manifest or index ``ref`` names (``toolfetch exists``);
        NotFoundError (exit 4) when there is none."""
        from toolfetch.ops.inspect_tags import manifest_digest

        return str(manifest_digest(self._parse("exists", ref)))

    def exists(self, ref: str) -> bool:
        """Whether ``ref`` names a manifest or index (other failures still raise)."""
        try:
            self.manifest_digest(ref)
        except NotFoundError:
            return False
        return True

    def referrers(self, subject: str, artifact_type: str | None = None) -> list[Referrer]:
        """The artifacts that refer to ``subject`` (``toolfetch referrers``), only those of
        ``artifact_type`` if given: the OCI 1.1 referrers API, else the ``sha256-<hex>``
        tag."""
        from toolfetch.api.registry_results import Referrer
        from toolfetch.ops.inspect_tags import referrers

        return [Referrer(str(d.digest), d.media_type, d.size, d.artifact_type,
                         dict(d.annotations), d.to_json())
                for d in referrers(self._parse("referrers", subject), artifact_type)]

    # -- writing -------------------------------------------------------------------------
    def push(self, ref: str, files: PathArg | Iterable[PathArg], *,
             artifact_type: str = TOOL_ARTIFACT_TYPE,
             annotations: Mapping[str, str] | None = None,
             mount_from: str | Sequence[str] = ()) -> ArtifactRef:
        """Push files as one ORAS-style artifact (``toolfetch push``): a file is a layer
        titled with its name, a directory one deterministic tar+gzip layer. ``ref`` needs
        a tag (default ``latest``), not a digest; ``mount_from`` names repositories of the
        same registry to mount blobs from."""
        from toolfetch.api.registry_results import ArtifactRef
        from toolfetch.ops.push_publish import push_files, write_tag
        from toolfetch.registry.targets import open_target

        parsed = self._parse("push", ref)
        tag = write_tag(parsed, "push")
        layers = paths(files)
        if not layers:
            raise UsageError("push: give at least one file or directory")
        bar = self._bar("push")
        try:
            desc, _ = push_files(open_target(parsed), layers, tag, artifact_type=artifact_type,
                                 annotations=annotations, mount_from=items(mount_from),
                                 progress=bar)
        finally:
            bar.close()
        return ArtifactRef(str(parsed), str(desc.digest))

    def publish(self, ref: str,
                platforms: Mapping[str, PathArg | Sequence[PathArg]] | Iterable[
                    tuple[str, PathArg | Sequence[PathArg]]], *,
                artifact_type: str = TOOL_ARTIFACT_TYPE,
                annotations: Mapping[str, str] | None = None,
                mount_from: str | Sequence[str] = ()) -> ArtifactRef:
        """One artifact per platform (``{"linux/amd64": [files…]}``), pushed by digest, and
        an index of them tagged as ``ref`` says (``toolfetch publish --platform``)."""
        from toolfetch.api.registry_results import ArtifactRef
        from toolfetch.ops.push_publish import publish, write_tag
        from toolfetch.registry.targets import open_target

        parsed = self._parse("publish", ref)
        tag = write_tag(parsed, "publish")
        pairs = platforms.items() if isinstance(platforms, Mapping) else platforms
        per_platform = [(Platform.parse(p), paths(files))
                        for p, files in pairs]
        if not per_platform:
            raise UsageError("publish: give the files of at least one platform")
        bar = self._bar("publish")
        try:
            digest = publish(open_target(parsed), tag, per_platform, artifact_type=artifact_type,
                             annotations=annotations, mount_from=items(mount_from), progress=bar)
        finally:
            bar.close()
        return ArtifactRef(str(parsed), str(digest))

    def publish_from_lockfile(self, prefix: str,
                              tools: str | Iterable[str] = ()) -> dict[str, ArtifactRef]:
        """Publish the lockfile's HTTP release assets (``tools``, default every tool that
        has one) as artifacts at ``PREFIX/<tool>:<version or latest>``, fetched through the
        cache (``toolfetch publish --from-lockfile``); returns each tool's."""
        from toolfetch.api.registry_results import ArtifactRef
        from toolfetch.lock.lockfile import Lockfile
        from toolfetch.ops.asset_artifacts import publish_from_lockfile

        lockfile = Lockfile.load(self.lockfile)
        published = publish_from_lockfile(lockfile, items(tools), prefix, self.cache,
                                          offline=self.offline, jobs=self.jobs,
                                          progress=self.progress)
        return {tool: ArtifactRef(str(ref), str(digest))
                for tool, (ref, digest) in published.items()}

    def attach(self, subject: str, files: PathArg | Iterable[PathArg] = (), *,
               artifact_type: str,
               annotations: Mapping[str, str] | None = None) -> ArtifactRef:
        """Push an artifact that refers to ``subject`` (a signature, an SBOM, …; no files:
        an artifact of annotations only), indexed as a referrer where the registry does not
        do it itself (``toolfetch attach``). Returns the artifact's digest, at the
        subject's reference."""
        from toolfetch.api.registry_results import ArtifactRef
        from toolfetch.ops.push_publish import attach

        parsed = self._parse("attach", subject)
        digest = attach(parsed, paths(files), artifact_type,
                        dict(annotations or {}))
        return ArtifactRef(str(parsed), str(digest))

    def tag(self, ref: str, tags: str | Iterable[str]) -> ArtifactRef:
        """Give the manifest ``ref`` names more tags (``toolfetch tag``)."""
        from toolfetch.api.registry_results import ArtifactRef
        from toolfetch.ops.push_publish import tag

        parsed = self._parse("tag", ref)
        new_tags = items(tags)
        if not new_tags:
            raise UsageError(f"tag {parsed}: give at least one tag to add")
        return ArtifactRef(str(parsed), str(tag(parsed, new_tags)))

    def copy(self, src: str, dst: str, platform: str | None = None, *,
             jobs: int = COPY_JOBS) -> ArtifactRef:
        """Copy ``src``'s whole graph (index, manifests, blobs) to ``dst``, digests
        preserved, ``jobs`` blobs at a time (``toolfetch copy``'s default, 4); with
        ``platform``, only that manifest of an index. Returns the root copied, at
        ``dst``."""
        from toolfetch.api.registry_results import ArtifactRef
        from toolfetch.ops.copy_pull import copy

        if jobs < 1:
            raise UsageError(f"copy: jobs: expected a whole number of at least 1, not {jobs}")
        source = self._parse("copy", src)
        target = self._parse("copy to", dst)
        digest = copy(source, target, platform=_platform(platform), jobs=jobs,
                      progress=self.progress)
        return ArtifactRef(str(target), str(digest))

    # -- credentials ---------------------------------------------------------------------
    def login(self, registry: str, username: str, password: str) -> str:
        """Check the credentials against ``registry`` (``host[:port]``), then store them as
        ``docker login`` does (``toolfetch login``); returns the Docker config's key.
        AuthError (exit 5) when the registry refuses them."""
        from toolfetch.core.reference import offline_error
        from toolfetch.ops.login import login

        if self.offline:
            raise offline_error(f"login {registry}: checking the credentials needs the "
                                "registry")
        return login(registry, username, password)

    def logout(self, registry: str) -> LogoutResult:
        """Remove what :meth:`login` stored for ``registry`` (``toolfetch logout``)."""
        from toolfetch.api.registry_results import LogoutResult
        from toolfetch.ops.login import logout

        key, removed = logout(registry)
        return LogoutResult(key, removed)
