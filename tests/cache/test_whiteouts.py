"""OCI whiteouts (image-spec layer.md) when toolfetch stacks the layers of a container image.

Unit cases drive :func:`toolfetch.cache.unpack.unpack_layer` directly; the integration cases build
real images with the independent peers: ``umoci repack`` writes explicit whiteouts from a
changed rootfs, ``skopeo copy`` builds an OCI layout (and pushes to the registry) from layers
holding an opaque whiteout, and ``umoci unpack`` (which applies whiteouts itself) gives the
tree toolfetch must match.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import ocitest
import pytest
from tf import assert_error, assert_ok, sha256_hex, tf_main, write_config

from toolfetch.cache.unpack import unpack_layer
from toolfetch.core.errors import IntegrityError
from toolfetch.core.treekey import applies_whiteouts

IMAGE_LAYER = "application/vnd.oci.image.layer.v1.tar"


def listing(root: Path) -> dict[str, str]:
    """Every entry below ``root``: ``dir``, ``link:<target>`` or ``file:<sha256>``."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = f"link:{os.readlink(path)}"
            elif path.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = f"file:{sha256_hex(path.read_bytes())}"
    return out


def stack(dest: Path, *layers: bytes, whiteouts: bool = True) -> dict[str, str]:
    dest.mkdir(parents=True, exist_ok=True)
    for i, data in enumerate(layers):
        blob = dest.parent / f"{dest.name}-layer{i}"
        blob.write_bytes(data)
        unpack_layer(blob, "tar", dest, title=None, what=f"layer {i}", whiteouts=whiteouts)
    return listing(dest)


BASE = ocitest.tarbytes({
    "a/": b"", "a/b/": b"", "a/b/c/": b"", "a/b/c/bar": b"bar",
    "etc/": b"", "etc/my-app-config": b"cfg", "etc/keep": b"keep",
    "bin/": b"", "bin/my-app-binary": (b"bin", 0o755), "bin/tools/": b"",
    "bin/tools/one": b"1", "lib": ocitest.Symlink("a"),
})


def test_file_whiteout_deletes_the_lower_file_and_is_hidden(tmp_path: Path) -> None:
    upper = ocitest.tarbytes({"etc/": b"", "etc/.wh.my-app-config": b""})
    tree = stack(tmp_path / "t", BASE, upper)
    assert "etc/my-app-config" not in tree and "etc/keep" in tree
    assert not any(".wh." in p for p in tree)


def test_whiteout_of_a_directory_deletes_it_whole(tmp_path: Path) -> None:
    tree = stack(tmp_path / "t", BASE, ocitest.tarbytes({"bin/.wh.tools": b""}))
    assert not any(p.startswith("bin/tools") for p in tree) and "bin/my-app-binary" in tree


def test_whiteout_of_a_symlink_deletes_the_link_not_its_target(tmp_path: Path) -> None:
    tree = stack(tmp_path / "t", BASE, ocitest.tarbytes({".wh.lib": b""}))
    assert "lib" not in tree and tree["a/b/c/bar"].startswith("file:")


def test_opaque_whiteout_in_either_order_keeps_what_the_same_layer_wrote(tmp_path: Path) -> None:
    """The layer.md example: a/b is deleted and recreated holding a/b/c/foo; the opaque
    marker applies first, 'regardless of the ordering in which [it] was encountered'."""
    before = ocitest.tarbytes({"a/": b"", "a/.wh..wh..opq": b"", "a/b/": b"", "a/b/c/": b"",
                               "a/b/c/foo": b"foo"})
    after = ocitest.tarbytes({"a/": b"", "a/b/": b"", "a/b/c/": b"", "a/b/c/foo": b"foo",
                              "a/.wh..wh..opq": b""})
    one, two = stack(tmp_path / "one", BASE, before), stack(tmp_path / "two", BASE, after)
    assert one == two
    assert {p for p in one if p.startswith("a/")} == {"a/b", "a/b/c", "a/b/c/foo"}
    assert "etc/keep" in one and not any(".wh." in p for p in one)


def test_a_whiteout_never_hides_what_its_own_layer_wrote(tmp_path: Path) -> None:
    upper = ocitest.tarbytes({"etc/": b"", "etc/my-app-config": b"new",
                              "etc/.wh.my-app-config": b""})
    tree = stack(tmp_path / "t", BASE, upper)
    assert tree["etc/my-app-config"] == f"file:{sha256_hex(b'new')}"
    # ... but the next layer's whiteout does
    assert "etc/my-app-config" not in stack(tmp_path / "t2", BASE, upper, ocitest.tarbytes(
        {"etc/.wh.my-app-config": b""}))


def test_a_lower_directory_replaced_by_a_file(tmp_path: Path) -> None:
    tree = stack(tmp_path / "t", BASE, ocitest.tarbytes({"bin/tools": b"now a file"}))
    assert tree["bin/tools"] == f"file:{sha256_hex(b'now a file')}"
    assert not any(p.startswith("bin/tools/") for p in tree)


def test_aufs_metadata_is_skipped(tmp_path: Path) -> None:
    upper = ocitest.tarbytes({".wh..wh.plnk/": b"", ".wh..wh.plnk/123.456": b"x",
                              ".wh..wh.aufs": b""})
    assert stack(tmp_path / "t", BASE, upper) == listing(_only(tmp_path / "base", BASE))


def _only(dest: Path, layer: bytes) -> Path:
    stack(dest, layer)
    return dest


def test_without_whiteout_semantics_the_names_are_plain_files(tmp_path: Path) -> None:
    upper = ocitest.tarbytes({"etc/": b"", "etc/.wh.my-app-config": b""})
    tree = stack(tmp_path / "t", BASE, upper, whiteouts=False)
    assert "etc/my-app-config" in tree and "etc/.wh.my-app-config" in tree


@pytest.mark.parametrize("members", [
    {"etc/.wh.": b""},                        # names nothing
    {"etc/.wh..": b""},                       # the directory itself
    {".wh.x/": b"", ".wh.x/y": b""},          # a whiteout name used as a directory
])
def test_hostile_whiteouts_are_refused(tmp_path: Path, members: dict[str, bytes]) -> None:
    with pytest.raises(IntegrityError, match="whiteout"):
        stack(tmp_path / "t", BASE, ocitest.tarbytes(members))


def test_a_whiteout_never_deletes_through_a_symlink(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_bytes(b"keep me")
    lower = ocitest.tarbytes({"escape": ocitest.Symlink("../outside")})
    dest = tmp_path / "deep" / "t"
    dest.mkdir(parents=True)
    # a symlink to outside the tree cannot be unpacked at all...
    with pytest.raises(IntegrityError):
        stack(dest, lower)
    # ... and one planted by hand is never followed by a whiteout
    (dest / "escape").symlink_to(outside)
    stack(dest, ocitest.tarbytes({"escape/.wh.precious": b"", "escape/.wh..wh..opq": b""}))
    assert (outside / "precious").read_bytes() == b"keep me"


LOWER_FILE = ocitest.tarbytes({"foo": b"lower file", "keep": b"k"})


@pytest.mark.parametrize("lower", [
    LOWER_FILE,
    ocitest.tarbytes({"foo": ocitest.Symlink("keep"), "keep": b"k"}),
    ocitest.tarbytes({"d/": b"", "d/x": b"x", "foo": ocitest.Symlink("d"), "keep": b"k"}),
], ids=["file", "symlink-to-file", "symlink-to-dir"])
def test_a_lower_non_directory_as_a_parent_in_either_member_order(tmp_path: Path,
                                                                   lower: bytes) -> None:
    """``.wh.foo`` then ``foo/bar`` and ``foo/bar`` then ``.wh.foo`` (with or
    without an explicit ``foo/``, or no whiteout at all) give one tree: foo a directory."""
    uppers = {
        "wh-first": {".wh.foo": b"", "foo/bar": b"bar"},
        "wh-last": {"foo/bar": b"bar", ".wh.foo": b""},
        "wh-last-dir": {"foo/": b"", "foo/bar": b"bar", ".wh.foo": b""},
        "wh-first-dir": {".wh.foo": b"", "foo/": b"", "foo/bar": b"bar"},
        "no-wh": {"foo/bar": b"bar"},
        "no-wh-dir": {"foo/": b"", "foo/bar": b"bar"},
    }
    trees = {k: stack(tmp_path / k, lower, ocitest.tarbytes(v)) for k, v in uppers.items()}
    expected = trees["wh-first"]
    assert expected["foo"] == "dir" and expected["foo/bar"] == f"file:{sha256_hex(b'bar')}"
    assert not any(p.startswith("foo/") and p != "foo/bar" for p in expected)
    assert expected["keep"] == f"file:{sha256_hex(b'k')}"
    for name, tree in trees.items():
        assert tree == expected, name
    if "d" in expected:  # the symlink was replaced, not followed
        assert set(expected) >= {"d", "d/x"} and "d/bar" not in expected


def test_an_implicit_parent_deep_below_a_lower_file(tmp_path: Path) -> None:
    lower = ocitest.tarbytes({"a/": b"", "a/f": b"lower", "a/g": b"g"})
    one = stack(tmp_path / "one", lower, ocitest.tarbytes({"a/f/x/y": b"y", "a/.wh.f": b""}))
    two = stack(tmp_path / "two", lower, ocitest.tarbytes({"a/.wh.f": b"", "a/f/x/y": b"y"}))
    assert one == two == {"a": "dir", "a/g": f"file:{sha256_hex(b'g')}", "a/f": "dir",
                          "a/f/x": "dir", "a/f/x/y": f"file:{sha256_hex(b'y')}"}


def test_the_tree_digest_forgets_the_replaced_lower_file(tmp_path: Path) -> None:
    known: dict[str, tuple[int, str]] = {}
    dest = tmp_path / "t"
    dest.mkdir()
    for i, layer in enumerate((LOWER_FILE, ocitest.tarbytes({"foo/bar": b"bar"}))):
        blob = tmp_path / f"layer{i}"
        blob.write_bytes(layer)
        unpack_layer(blob, "tar", dest, title=None, what="l", whiteouts=True, known=known)
    assert set(known) == {"foo/bar", "keep"}


@pytest.mark.parametrize("members", [
    {"foo": b"same layer", "foo/bar": b"bar"},
    {"foo": ocitest.Symlink("keep"), "foo/bar": b"bar"},
    {"sub/": b"", "foo": ocitest.Symlink("sub"), "foo/bar": b"bar"},
    {"foo": b"same layer", "foo/": b""},
])
def test_a_non_directory_of_the_same_layer_is_never_made_a_parent(
        tmp_path: Path, members: dict[str, bytes | ocitest.Symlink]) -> None:
    with pytest.raises(IntegrityError, match="'foo'"):
        stack(tmp_path / "t", LOWER_FILE, ocitest.tarbytes(members))


def test_without_whiteouts_a_lower_file_is_never_made_a_parent(tmp_path: Path) -> None:
    with pytest.raises(IntegrityError, match="is a symlink or a file"):
        stack(tmp_path / "t", LOWER_FILE, ocitest.tarbytes({"foo/bar": b"bar"}),
              whiteouts=False)


def test_a_lower_symlink_out_of_the_tree_as_a_parent_is_replaced_not_followed(
        tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "sub" / "precious").write_bytes(b"keep me")
    dest = tmp_path / "deep" / "t"
    dest.mkdir(parents=True)
    (dest / "escape").symlink_to(outside)  # planted by hand: no layer can hold it
    (dest / "up").symlink_to("../../outside")
    upper = ocitest.tarbytes({"escape/sub/precious": b"evil", "escape/new": b"evil",
                              "up/sub/precious": b"evil", ".wh.up": b""})
    tree = stack(dest, upper)
    assert sorted(os.listdir(outside)) == ["sub"] and os.listdir(outside / "sub") == ["precious"]
    assert (outside / "sub" / "precious").read_bytes() == b"keep me"
    evil = f"file:{sha256_hex(b'evil')}"
    assert tree == {"escape": "dir", "escape/sub": "dir", "escape/new": evil,
                    "escape/sub/precious": evil, "up": "dir", "up/sub": "dir",
                    "up/sub/precious": evil}


def test_which_layers_get_whiteout_semantics() -> None:
    assert applies_whiteouts(IMAGE_LAYER + "+gzip", "tar+gzip", None)
    assert applies_whiteouts("application/vnd.docker.image.rootfs.diff.tar.gzip", "tar+gzip",
                             None)
    # ORAS titles every layer: a directory pushed as tar+gzip is extracted as it is
    assert not applies_whiteouts(IMAGE_LAYER + "+gzip", "tar+gzip", "dist")
    assert not applies_whiteouts("application/x-tar", "tar", None)
    assert not applies_whiteouts(IMAGE_LAYER, "raw", "tool")


# ---------------------------------------------------------------- real images, real peers

def _need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail(f"{', '.join(missing)} not installed (CI installs them)")
        pytest.skip(f"needs {', '.join(missing)} (Debian: apt-get install umoci skopeo)")


def _umoci_rootfs(layout: Path, tag: str, dest: Path) -> Path:
    subprocess.run(["umoci", "unpack", "--rootless", "--image", f"{layout}:{tag}", str(dest)],
                   check=True, capture_output=True)
    return dest / "rootfs"


def _lock_and_fetch(tmp_path: Path, ref: str, path: str) -> tuple[Path, dict[str, object]]:
    write_config(tmp_path / "tools.yaml", {"tools": {"img": {"ref": ref, "path": path}}})
    lockfile = tmp_path / "tools.lock.json"
    assert_ok(tf_main("lock", "--lockfile", lockfile))
    r = tf_main("fetch", "--lockfile", lockfile, "--json", "--platform", "linux/amd64")
    assert_ok(r)
    return Path(json.loads(r.stdout)[0]["tree"]), json.loads(lockfile.read_text())


def test_an_image_umoci_built_from_a_changed_rootfs(tmp_path: Path) -> None:
    _need("umoci")
    layout = tmp_path / "layout"

    def umoci(*args: str) -> None:
        subprocess.run(["umoci", *args], check=True, capture_output=True)

    umoci("init", "--layout", str(layout))
    umoci("new", "--image", f"{layout}:img")
    first = tmp_path / "b1"
    umoci("unpack", "--rootless", "--image", f"{layout}:img", str(first))
    root = first / "rootfs"
    for rel, data in {"bin/tool": b"#!/bin/sh\necho v1\n", "etc/config": b"cfg",
                      "share/doc/a": b"a", "share/doc/b": b"b", "keep": b"k"}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    (root / "bin/tool").chmod(0o755)
    umoci("repack", "--image", f"{layout}:img", str(first))
    second = tmp_path / "b2"
    umoci("unpack", "--rootless", "--image", f"{layout}:img", str(second))
    root = second / "rootfs"
    (root / "etc/config").unlink()
    shutil.rmtree(root / "share/doc")
    (root / "bin/tool").write_bytes(b"#!/bin/sh\necho v2\n")
    umoci("repack", "--image", f"{layout}:img", str(second))

    tree, lock = _lock_and_fetch(tmp_path, f"oci-layout:{layout}:img", "bin/tool")
    entry = lock["tools"]["img"]["platforms"]["linux/amd64"]  # type: ignore[index]
    assert len(entry["layers"]) == 2  # a real changeset on top of a base
    expected = _umoci_rootfs(layout, "img", tmp_path / "check")
    assert listing(tree) == listing(expected)
    assert "etc/config" not in listing(tree) and "share/doc/a" not in listing(tree)
    assert subprocess.run([tree / "bin/tool"], capture_output=True, text=True).stdout == "v2\n"


def _dir_transport(directory: Path, layers: list[bytes]) -> None:
    """An image in containers/image's ``dir:`` format, for skopeo to turn into a layout."""
    directory.mkdir()
    art = ocitest.image_artifact("linux/amd64", layers, layer_media_type=IMAGE_LAYER)
    for digest, data in art.blobs.items():
        (directory / digest.split(":")[1]).write_bytes(data)
    (directory / "manifest.json").write_bytes(art.manifest_bytes)
    (directory / "version").write_text("Directory Transport Version: 1.1\n")


def test_opaque_and_file_whiteouts_in_a_layout_skopeo_built(
        tmp_path: Path, registry: ocitest.Registry, unique_repo: str) -> None:
    _need("umoci", "skopeo")
    base = ocitest.tarbytes({
        "bin/": b"", "bin/tool": (b"#!/bin/sh\necho base\n", 0o755), "bin/old-helper": b"h",
        "etc/": b"", "etc/removed.conf": b"r", "etc/kept.conf": b"k",
        "plugins/": b"", "plugins/a/": b"", "plugins/a/x": b"x", "plugins/b": b"b"})
    upper = ocitest.tarbytes({
        "bin/": b"", "bin/.wh.old-helper": b"",
        "etc/": b"", "etc/.wh.removed.conf": b"",
        "plugins/": b"", "plugins/.wh..wh..opq": b"", "plugins/c": b"c"})
    _dir_transport(tmp_path / "dir", [base, upper])
    layout = tmp_path / "layout"
    ocitest.skopeo("copy", f"dir:{tmp_path / 'dir'}", f"oci:{layout}:img")
    ocitest.skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:img",
                   f"docker://{registry.ref(unique_repo, 'img')}")
    expected = listing(_umoci_rootfs(layout, "img", tmp_path / "umoci"))
    assert "plugins/c" in expected and "plugins/a" not in expected  # umoci agrees on the rules
    for source, ref in (("layout", f"oci-layout:{layout}:img"),
                        ("registry", registry.ref(unique_repo, "img"))):
        work = tmp_path / f"work-{source}"
        work.mkdir()
        tree, _ = _lock_and_fetch(work, ref, "bin/tool")
        assert listing(tree) == expected, source
        assert not any(".wh." in p for p in listing(tree))
        assert stat.S_IMODE((tree / "bin/tool").stat().st_mode) == 0o555


def test_a_multi_layer_oras_artifact_keeps_wh_names(registry: ocitest.Registry,
                                                    unique_repo: str, tmp_path: Path) -> None:
    """ORAS layers are files to extract, not changesets: a `.wh.` name is just a name."""
    art = ocitest.oras_artifact({"a.tar": ocitest.tarbytes({"bin/t": (b"#!/bin/sh\n", 0o755),
                                                            "f": b"f"}),
                                 "b.tar": ocitest.tarbytes({".wh.f": b""})},
                                layer_media_type=IMAGE_LAYER)
    ocitest.push_artifact(registry, unique_repo, "1", art)
    tree, _ = _lock_and_fetch(tmp_path, registry.ref(unique_repo, "1"), "bin/t")
    assert {"f", ".wh.f"} <= set(listing(tree))


def test_an_unsafe_whiteout_in_an_image_is_refused_with_3(tmp_path: Path) -> None:
    """A whiteout is a member like any other: one that climbs out is refused (exit 3)."""
    _need("skopeo")
    _dir_transport(tmp_path / "dir", [ocitest.tarbytes({"bin/tool": b"x"}),
                                      ocitest.tarbytes({"../.wh.escape": b""})])
    layout = tmp_path / "layout"
    ocitest.skopeo("copy", f"dir:{tmp_path / 'dir'}", f"oci:{layout}:img")
    write_config(tmp_path / "tools.yaml", {"tools": {"img": {
        "ref": f"oci-layout:{layout}:img", "path": "bin/tool"}}})
    lockfile = tmp_path / "tools.lock.json"
    assert_ok(tf_main("lock", "--lockfile", lockfile))
    assert_error(tf_main("fetch", "--lockfile", lockfile, "--platform", "linux/amd64"), 3,
                 "../.wh.escape")
