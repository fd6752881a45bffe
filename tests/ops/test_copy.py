"""``copy`` (registry <-> OCI layout <-> registry, digests preserved, mounts) and ``pull``,
through ``toolfetch.Client`` (``Client.copy``, ``Client.pull``); a few tests run the command
line for its exit codes and output."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import ocitest
import pytest
from accesslog import LogMark
from ocischema import validate_layout
from ocitest import Registry
from tf import assert_error, assert_ok, host, other_platform, run_toolfetch, tf_main

import toolfetch

MakeRegistry = Callable[..., Registry]


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_index(reg: Registry, repo: str, docker: bool = False) -> ocitest.ToolIndex:
    plats = [host(), other_platform()]
    return ocitest.push_tool_index(reg, repo, "1", {
        p: {"tool": f"#!/bin/sh\necho {p}\n".encode(), "shared.txt": b"same everywhere"}
        for p in plats}, docker=docker)


def all_blobs(ti: ocitest.ToolIndex) -> set[str]:
    return {d for a in ti.artifacts.values() for d in a.blobs}


def test_registry_to_layout_to_registry(registry: Registry, unique_repo: str,
                                        make_registry: MakeRegistry, tmp_path: Path) -> None:
    ti = push_index(registry, unique_repo)
    layout = tmp_path / "layout"
    client = toolfetch.Client()
    assert client.copy(ti.ref, f"oci-layout:{layout}:v1").digest == ti.index_digest
    index = validate_layout(layout)
    assert index["manifests"] == [{"mediaType": ocitest.OCI_INDEX, "digest": ti.index_digest,
                                   "size": len(ti.index_bytes),
                                   "annotations": {ocitest.REF_NAME: "v1"}}]
    blobs = layout / "blobs" / "sha256"
    assert (blobs / ti.index_digest.partition(":")[2]).read_bytes() == ti.index_bytes
    for p, raw in ti.manifest_bytes.items():
        assert (blobs / ti.manifests[p].partition(":")[2]).read_bytes() == raw
    assert {f"sha256:{b.name}" for b in blobs.iterdir()} == (
        all_blobs(ti) | set(ti.manifests.values()) | {ti.index_digest})
    # skopeo reads toolfetch's layout
    assert ocitest.skopeo("inspect", "--raw", f"oci:{layout}:v1").stdout == ti.index_bytes
    # ...and back into another registry, byte for byte
    other = make_registry()
    client.copy(f"oci-layout:{layout}:v1", other.ref("mirror/x", "v1"))
    assert ocitest.skopeo_inspect_raw(other, "mirror/x", "v1") == ti.index_bytes
    for p, raw in ti.manifest_bytes.items():
        assert ocitest.skopeo_inspect_raw(other, "mirror/x", ti.manifests[p]) == raw
        for layer in ti.layers[p]:
            data = ocitest.get_blob(other, "mirror/x", layer["digest"])
            assert sha(data) == layer["digest"]


def test_copy_docker_list_between_registries(registry: Registry, unique_repo: str,
                                             make_registry: MakeRegistry) -> None:
    ti = push_index(registry, unique_repo, docker=True)
    other = make_registry()
    toolfetch.Client().copy(ti.ref, other.ref("d/list", "1"))
    r = ocitest.get_manifest(other, "d/list", "1")
    assert r.content == ti.index_bytes
    assert r.headers["Content-Type"] == ocitest.DOCKER_MANIFEST_LIST
    for p in ti.manifests:
        got = ocitest.get_manifest(other, "d/list", ti.manifests[p])
        assert got.content == ti.manifest_bytes[p]
        assert got.headers["Content-Type"] == ocitest.DOCKER_MANIFEST


def test_copy_the_whole_graph_by_default(registry: Registry,
                                        make_repo: Callable[..., str]) -> None:
    """As oras cp, crane copy and regctl: a mirror made by copy serves the lockfiles that pin
    the index, whatever platform they fetch."""
    src, dst = make_repo("src"), make_repo("dst")
    ti = push_index(registry, src)
    r = tf_main("copy", ti.ref, registry.ref(dst, "all"))
    assert_ok(r)
    assert r.stdout.strip() == ti.index_digest
    assert ocitest.get_manifest(registry, dst, "all").content == ti.index_bytes
    for platform, digest in ti.manifests.items():  # every child, byte-exact
        assert ocitest.get_manifest(registry, dst, digest).content == ti.manifest_bytes[platform]
    for blob in all_blobs(ti):
        assert ocitest.get_blob(registry, dst, blob) == ocitest.get_blob(registry, src, blob)
    # skopeo, an independent client, reads the copy as the same index
    assert ocitest.skopeo_inspect_raw(registry, dst, "all") == ti.index_bytes
    # --platform narrows to one manifest (and says so in its help)
    help_text = run_toolfetch("copy", "--help").stdout
    assert "not the index" in " ".join(help_text.split())
    assert_ok(tf_main("copy", "--platform", other_platform(), ti.ref, registry.ref(dst, "o")))
    assert sha(ocitest.get_manifest(registry, dst, "o").content) == ti.manifests[other_platform()]
    assert_error(tf_main("copy", "--platform", "plan9/mips", ti.ref, registry.ref(dst, "x")),
                 4, "plan9/mips", host())


def test_copy_within_a_registry_mounts(registry: Registry, make_repo: Callable[..., str]) -> None:
    src, dst = make_repo("src"), make_repo("dst")
    ti = push_index(registry, src)
    mark = LogMark(registry)
    client = toolfetch.Client()
    client.copy(ti.ref, registry.ref(dst, "1"))
    assert mark.count("POST", f"/v2/{dst}/blobs/uploads/?mount=", 201) == len(all_blobs(ti))
    assert mark.count("PATCH") == 0 and mark.count("PUT", "/blobs/uploads/") == 0
    assert mark.count("GET", "/blobs/") == 0  # nothing was transferred through toolfetch
    assert ocitest.get_manifest(registry, dst, "1").content == ti.index_bytes
    # copying again transfers nothing
    mark = LogMark(registry)
    client.copy(ti.ref, registry.ref(dst, "1"))
    assert mark.count("POST") == 0


def test_copy_from_a_skopeo_layout(registry: Registry, unique_repo: str, tmp_path: Path,
                                   make_registry: MakeRegistry) -> None:
    ti = push_index(registry, unique_repo)
    sk = tmp_path / "sk"
    ocitest.skopeo_copy(f"docker://{ti.ref}", f"oci:{sk}:tagged")
    other = make_registry()
    client = toolfetch.Client()
    copied = client.copy(f"oci-layout:{sk}:tagged", other.ref("from/sk", "2"))
    assert copied.digest == ti.index_digest
    assert ocitest.get_manifest(other, "from/sk", "2").content == ti.index_bytes
    with pytest.raises(toolfetch.NotFoundError, match="nope") as missing:
        client.copy(f"oci-layout:{sk}:nope", other.ref("from/sk", "3"))
    assert "tagged" in str(missing.value)


def test_pull(registry: Registry, unique_repo: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "pkg" / "bin").mkdir(parents=True)
    (src / "pkg" / "bin" / "run").write_bytes(b"#!/bin/sh\necho run\n")
    (src / "pkg" / "bin" / "run").chmod(0o755)
    (src / "note.txt").write_bytes(b"note")
    (src / "other.txt").write_bytes(b"other")
    ref = registry.ref(unique_repo, "1")
    client = toolfetch.Client()
    client.publish(ref, {host(): [src / "note.txt", src / "pkg"],
                         other_platform(): [src / "other.txt"]})
    out = tmp_path / "out"
    assert client.pull(ref, out) == [out / "note.txt", out / "pkg"]
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == [
        "note.txt", "pkg", "pkg/bin", "pkg/bin/run"]
    assert (out / "note.txt").read_bytes() == b"note"
    assert (out / "pkg" / "bin" / "run").read_bytes() == b"#!/bin/sh\necho run\n"
    assert os.access(out / "pkg" / "bin" / "run", os.X_OK | os.W_OK)
    # platform picks another manifest (nothing it writes exists yet)
    assert client.pull(ref, out, platform=other_platform()) == [out / "other.txt"]
    assert (out / "other.txt").read_bytes() == b"other"
    assert not list(out.glob(".toolfetch-pull-*"))


def test_pull_refuses_corrupt_content(fresh_registry: Registry, tmp_path: Path) -> None:
    art = ocitest.oras_artifact({"tool": b"genuine bytes"})
    ocitest.push_artifact(fresh_registry, "t/corrupt", "1", art)
    ocitest.corrupt_blob(fresh_registry, art.layers[0]["digest"])
    out = tmp_path / "out"
    assert_error(tf_main("pull", fresh_registry.ref("t/corrupt", "1"), "-o", out), 3,
                 "digest mismatch")
    assert not (out / "tool").exists()
    assert_error(tf_main("pull", fresh_registry.ref("t/missing", "1"), "-o", out), 4)


def test_copy_index_json_is_merged(registry: Registry, unique_repo: str, tmp_path: Path) -> None:
    ti = push_index(registry, unique_repo)
    layout = tmp_path / "layout"
    client = toolfetch.Client()
    client.copy(ti.ref, f"oci-layout:{layout}:a")
    assert client.copy(ti.ref, f"oci-layout:{layout}:b", platform=host()).digest == (
        ti.manifests[host()])
    index = json.loads((layout / "index.json").read_text())
    assert {m["annotations"][ocitest.REF_NAME]: m["digest"] for m in index["manifests"]} == {
        "a": ti.index_digest, "b": ti.manifests[host()]}
    validate_layout(layout, complete=False)


def test_pull_never_replaces_or_deletes_what_it_did_not_write(registry: Registry,
                                                              unique_repo: str,
                                                              tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "pkg" / "bin").mkdir(parents=True)
    (src / "pkg" / "bin" / "run").write_bytes(b"#!/bin/sh\n")
    (src / "note.txt").write_bytes(b"note")
    ref = registry.ref(unique_repo, "1")
    assert_ok(tf_main("publish", ref, "--platform", f"{host()}={src / 'note.txt'},{src / 'pkg'}"))
    out = tmp_path / "out"
    (out / "pkg").mkdir(parents=True)
    (out / "pkg" / "precious").write_bytes(b"mine")  # the user's directory, same name
    r = tf_main("pull", ref, "-o", out)
    assert_error(r, 2, str(out / "pkg"), "already exist")
    assert (out / "pkg" / "precious").read_bytes() == b"mine"
    assert sorted(p.name for p in out.iterdir()) == ["pkg"]  # nothing else written either
    (out / "note.txt").write_bytes(b"my own note")  # a file with other bytes: refused too
    assert_error(tf_main("pull", ref, "-o", out), 2, str(out / "note.txt"))
    assert (out / "note.txt").read_bytes() == b"my own note"
    fresh = tmp_path / "fresh"
    assert_ok(tf_main("pull", ref, "-o", fresh))
    (fresh / "pkg").rename(tmp_path / "moved")
    assert_ok(tf_main("pull", ref, "-o", fresh))  # the same bytes again: nothing to refuse
    assert (fresh / "note.txt").read_bytes() == b"note" and (fresh / "pkg" / "bin" / "run").exists()


def test_copy_into_a_layout_replaces_a_damaged_blob(registry: Registry, unique_repo: str,
                                                    tmp_path: Path) -> None:
    """A blob already in the target layout is reused only if it hashes to its name."""
    ti = push_index(registry, unique_repo)
    layout = tmp_path / "layout"
    client = toolfetch.Client()
    client.copy(ti.ref, f"oci-layout:{layout}:v1")
    layer = ti.layers[host()][0]
    path = layout / "blobs" / "sha256" / layer["digest"].partition(":")[2]
    good = path.read_bytes()
    os.chmod(path, 0o644)
    path.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # same size, other bytes
    client.copy(ti.ref, f"oci-layout:{layout}:v1")
    assert path.read_bytes() == good
    validate_layout(layout)


def test_pull_into_a_directory_holding_the_same_files_succeeds(registry: Registry,
                                                               unique_repo: str,
                                                               tmp_path: Path) -> None:
    """The bug: every file already there, identical, so nothing was written and pull exited
    4 saying no layer had a title. Now: exit 0, saying the files were there already."""
    ocitest.push_artifact(registry, unique_repo, "1", ocitest.oras_artifact(
        {"README.md": b"# docs\n", "schema.json": b"{}"}))
    ref = registry.ref(unique_repo, "1")
    out = tmp_path / "out"
    first = tf_main("pull", ref, "-o", out)
    assert_ok(first)
    assert first.stdout == f"pull: wrote 2 files from {ref} to {out}\n"
    again = tf_main("pull", ref, "-o", out)
    assert_ok(again)
    assert again.stdout == (f"pull: wrote 0 files from {ref} to {out}; 2 already there with "
                            "the same bytes\n")
    assert (out / "README.md").read_bytes() == b"# docs\n"
    (out / "README.md").write_bytes(b"mine")  # other bytes: refused, as ever
    assert_error(tf_main("pull", ref, "-o", out), 2, str(out / "README.md"), "already exist")
    assert (out / "README.md").read_bytes() == b"mine"
