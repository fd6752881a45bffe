"""What a tree is keyed by: the digest of its unpack recipe (standard library only).

A tree in the cache must be a pure function of its key, or one lockfile could plant content
that another lockfile's tools are then served (a lockfile naming a real tool's manifest but
other layers). So trees are not keyed by the manifest digest the lockfile claims: they are
keyed by the sha256 of the *recipe*, everything that decides what unpacking writes:

* :data:`UNPACK_RULES`, the version of the unpack rules (bumped whenever a rule changes what a
  tree holds, so a newer toolfetch never reuses a tree an older one built differently);
* per layer, in order: its digest (its bytes are verified against it), its unpack format, its
  title when the layer is a single file, raw or compressed (the file's name in the tree), and
  whether OCI whiteouts apply to it (:func:`applies_whiteouts`).

Nothing else enters: not the tool's ``path``, not the manifest digest, not the reference. The
full path computes it with :func:`tree_key` and records it in the lockfile index
(:mod:`toolfetch.core.lockindex`), which is what the hit path reads.
"""

from __future__ import annotations

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing on the hit path
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from hashlib import _Hash


def _builtin_sha256() -> Callable[[bytes], _Hash]:
    """CPython's own sha256: no OpenSSL to load (``hashlib`` costs the hit path ~4 ms)."""
    import sys

    try:  # its module name changed in Python 3.12
        module = __import__("_sha2" if sys.version_info >= (3, 12) else "_sha256")
        found: Callable[[bytes], _Hash] = module.sha256
        return found
    except (ImportError, AttributeError):  # another interpreter: the usual one
        import hashlib

        return hashlib.sha256


sha256 = _builtin_sha256()
UNPACK_RULES = 3
TAR_FORMATS = frozenset({"tar", "tar+gzip", "tar+zstd", "tar+xz", "tar+bzip2"})
# The formats whose layer is an archive (members of its own): a title says nothing about
# their tree. Every other format is one file named by its title. A copy of
# toolfetch.oci.formats.FORMATS' archives (core cannot import oci; a test keeps them equal).
ARCHIVE_FORMATS = TAR_FORMATS | {"zip"}
# Image-spec layer media types: changesets, "applied" with whiteouts (layer.md), not extracted.
IMAGE_LAYER_TYPES = frozenset({
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
})


def applies_whiteouts(media_type: str, unpack: str, title: str | None) -> bool:
    """Whether a layer is an image changeset whose ``.wh.`` entries delete lower content.

    Container image layers carry an image-layer media type and no title. ORAS artifacts title
    every layer (a file pushed as ``…layer.v1.tar`` or a directory as ``…tar+gzip``): those
    are archives to extract as they are, as ``oras pull`` does.
    """
    base = media_type.split(";", 1)[0].strip().lower()
    return unpack in TAR_FORMATS and base in IMAGE_LAYER_TYPES and title is None


def recipe(layers: Iterable[Mapping[str, object]]) -> dict[str, object]:
    """The recipe of a tree from its lockfile layers (``digest``, ``mediaType``, ``unpack``,
    optional ``title``). Raises KeyError/TypeError on a layer without those fields."""
    steps: list[list[object]] = []
    for layer in layers:
        digest, unpack = str(layer["digest"]), str(layer["unpack"])
        title = layer.get("title")
        if title is not None and not isinstance(title, str):
            raise TypeError("title must be a string")
        steps.append([digest, unpack, None if unpack in ARCHIVE_FORMATS else title,
                      applies_whiteouts(str(layer["mediaType"]), unpack, title)])
    return {"rules": UNPACK_RULES, "layers": steps}


def recipe_digest(value: Mapping[str, object]) -> str:
    """``sha256:<hex>`` of a recipe, over canonical JSON."""
    import json  # not at the top: the hit path imports this module for sha256 only

    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + sha256(text.encode()).hexdigest()


def tree_key(layers: Iterable[Mapping[str, object]]) -> str:
    """``sha256:<hex>``: the key of the tree these lockfile layers unpack into."""
    return recipe_digest(recipe(layers))
