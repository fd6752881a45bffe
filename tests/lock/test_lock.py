"""Integration tests of ``toolfetch lock`` against a real registry (Distribution).

What the tests push is cross-checked with ``skopeo inspect --raw``; every digest a lockfile
must contain is computed here from the pushed bytes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema
import ocitest
import pytest
from ocitest import Registry
from tf import (
    assert_error,
    assert_ok,
    expected_entry,
    host,
    other_platform,
    push_kinds,
    script,
    tf_main,
    tools_config,
    write_config,
)

import toolfetch

SCHEMA = json.loads(
    (Path(toolfetch.__file__).parent / "schemas" / "lockfile.schema.json").read_text()
)


class Workspace:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = root / "lockfiles" / "tools.yaml"
        self.lockfile = root / "lockfiles" / "tools.lock.json"

    def write(self, data: dict[str, Any]) -> None:
        write_config(self.config, data)

    def lock(self, *args: str) -> Any:
        return tf_main("lock", "--lockfile", str(self.lockfile), *args)

    def data(self) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self.lockfile.read_text())
        return out


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "ws")


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_lock_every_kind(registry: Registry, unique_repo: str, ws: Workspace) -> None:
    pushed = push_kinds(registry, unique_repo)
    cfg = tools_config(pushed)
    cfg["tools"]["raw"].pop("path")  # a single raw file: the path defaults to its title
    ws.write(cfg)
    assert_ok(ws.lock())
    text = ws.lockfile.read_text()
    data = json.loads(text)

    # valid against the shipped schema; deterministic formatting
    jsonschema.Draft202012Validator(SCHEMA).validate(data)
    assert text == json.dumps(data, indent=2, sort_keys=True) + "\n"
    assert data["version"] == 1
    assert sorted(data["tools"]) == sorted(pushed)

    for name, p in pushed.items():
        tool = data["tools"][name]
        keys = [host(), other_platform()] if p.index else ["*"]
        assert sorted(tool["platforms"]) == sorted(keys), name
        assert tool["ref"] == p.ref
        for key in keys:
            assert tool["platforms"][key] == expected_entry(p, key), (name, key)
    assert "path" not in data["tools"]["raw"]  # as written: no path in tools.yaml
    assert data["tools"]["raw"]["platforms"]["*"]["path"] == "raw"
    # oras's default layer type on a plain file is a raw file; on a real tar it is a tar
    assert data["tools"]["raw"]["platforms"]["*"]["layers"][0]["mediaType"] == \
        ocitest.OCI_LAYER_TAR
    assert data["tools"]["tar"]["platforms"]["*"]["layers"][0]["unpack"] == "tar"
    assert data["tools"]["dock"]["platforms"][host()]["layers"][0]["mediaType"] == \
        ocitest.DOCKER_LAYER_GZIP

    # what we pushed is what the registry serves, byte for byte (independent client)
    for name in ("idx", "dock", "zip"):
        p = pushed[name]
        repo = f"{unique_repo}/{name}"
        served = ocitest.skopeo_inspect_raw(registry, repo, "1")
        assert sha(served) == p.index == data["tools"][name]["platforms"][host()]["index"]
        assert json.loads(served)["mediaType"] == p.media_type
        for key, digest in p.manifests.items():
            child = ocitest.skopeo_inspect_raw(registry, repo, digest)
            assert sha(child) == digest
            assert [ly["digest"] for ly in json.loads(child)["layers"]] == [
                ly["digest"] for ly in data["tools"][name]["platforms"][key]["layers"]]
    for name in ("raw", "tar"):
        served = ocitest.skopeo_inspect_raw(registry, f"{unique_repo}/{name}", "1")
        assert sha(served) == data["tools"][name]["platforms"]["*"]["manifest"]

    # re-running on unchanged inputs is byte-identical and does not even rewrite the file
    inode = ws.lockfile.stat().st_ino
    assert_ok(ws.lock())
    assert ws.lockfile.read_text() == text
    assert ws.lockfile.stat().st_ino == inode


def test_platform_lists_and_mapping(registry: Registry, unique_repo: str,
                                    ws: Workspace) -> None:
    plats = ["linux/amd64", "linux/arm64", "darwin/arm64", "windows/amd64"]
    idx = ocitest.push_tool_index(registry, f"{unique_repo}/multi", "1", {
        p: {"multi": script(p)} for p in plats})
    singles = {}
    for p in ("linux/amd64", "darwin/arm64"):
        art = ocitest.oras_artifact({"sc": script("sc " + p)})
        ocitest.push_artifact(registry, f"{unique_repo}/sc", p.replace("/", "-"), art)
        singles[p] = art
    ws.write({
        "platforms": ["linux/amd64", "darwin/arm64"],
        "tools": {
            "default-set": {"ref": idx.ref, "path": "multi"},
            "own-set": {"ref": idx.ref, "path": "multi",
                        "platforms": ["windows/amd64", "linux/arm64"]},
            "mapped": {"path": "sc", "platforms": {
                p: {"ref": registry.ref(f"{unique_repo}/sc", p.replace("/", "-"))}
                for p in singles}},
        },
    })
    assert_ok(ws.lock())
    tools = ws.data()["tools"]
    # the top-level list is the default; a tool's own list replaces it
    assert sorted(tools["default-set"]["platforms"]) == ["darwin/arm64", "linux/amd64"]
    assert sorted(tools["own-set"]["platforms"]) == ["linux/arm64", "windows/amd64"]
    for key, entry in tools["own-set"]["platforms"].items():
        assert entry["manifest"] == idx.manifests[key]
        assert entry["index"] == idx.index_digest
    # per-platform mapping: each platform from its own tag, no index, no tool-level ref
    mapped = tools["mapped"]
    assert "ref" not in mapped and mapped["path"] == "sc"
    assert sorted(mapped["platforms"]) == sorted(singles)
    for p, art in singles.items():
        entry = mapped["platforms"][p]
        assert entry["manifest"] == art.digest
        assert entry["ref"] == registry.ref(f"{unique_repo}/sc", p.replace("/", "-"))
        assert entry["path"] == "sc"
        assert "index" not in entry
    jsonschema.Draft202012Validator(SCHEMA).validate(ws.data())
    for p in singles:  # each platform gets its own artifact
        r = tf_main("which", "--lockfile", ws.lockfile, "mapped", "--platform", p)
        assert_ok(r)
        assert Path(r.stdout.strip()).read_bytes() == script("sc " + p)
    assert_error(tf_main("which", "--lockfile", ws.lockfile, "mapped", "--platform",
                         "linux/arm64"), 4, "darwin/arm64, linux/amd64")


def test_arm_variants_and_attestations(registry: Registry, unique_repo: str,
                                       ws: Workspace) -> None:
    arts = {p: ocitest.oras_artifact({"t": script(p)})
            for p in ("linux/arm64/v8", "linux/arm/v6", "linux/amd64")}
    for a in arts.values():
        ocitest.push_artifact(registry, unique_repo, None, a)
    entries = [a.descriptor(p) for p, a in arts.items()]
    att = ocitest.oras_artifact({"att.json": b"{}"})
    ocitest.push_artifact(registry, unique_repo, None, att)
    entries.append({**att.descriptor(), "platform": {"os": "unknown",
                                                     "architecture": "unknown"}})
    ocitest.push_manifest(registry, unique_repo, "1", ocitest.index_manifest(entries))
    ref = registry.ref(unique_repo, "1")
    ws.write({"tools": {
        "all": {"ref": ref, "path": "t"},
        "picked": {"ref": ref, "path": "t", "platforms": ["linux/arm64", "linux/arm/v7"]},
    }})
    assert_ok(ws.lock())
    tools = ws.data()["tools"]
    # every platform the index offers, attestations skipped, arm64/v8 spelled linux/arm64
    assert sorted(tools["all"]["platforms"]) == ["linux/amd64", "linux/arm/v6", "linux/arm64"]
    picked = tools["picked"]["platforms"]
    assert picked["linux/arm64"]["manifest"] == arts["linux/arm64/v8"].digest
    assert picked["linux/arm/v7"]["manifest"] == arts["linux/arm/v6"].digest  # v7 runs v6


def test_listed_platform_missing_from_index(registry: Registry, unique_repo: str,
                                            ws: Workspace) -> None:
    idx = ocitest.push_tool_index(registry, unique_repo, "1", {
        "linux/amd64": {"t": script("a")}, "darwin/arm64": {"t": script("b")}})
    ws.write({"tools": {"t": {"ref": idx.ref, "path": "t"}}})
    assert_ok(ws.lock())
    before = ws.lockfile.read_bytes()
    ws.write({"tools": {"t": {"ref": idx.ref, "path": "t",
                              "platforms": ["linux/amd64", "windows/amd64"]}}})
    r = ws.lock()
    assert_error(r, 4, "windows/amd64", "linux/amd64", "darwin/arm64", "offers")
    assert ws.lockfile.read_bytes() == before


def test_lock_tool_relocks_only_that_tool(registry: Registry, unique_repo: str,
                                          ws: Workspace) -> None:
    a = ocitest.oras_artifact({"a": script("a1")})
    b = ocitest.oras_artifact({"b": script("b1")})
    ocitest.push_artifact(registry, f"{unique_repo}/a", "v", a)
    ocitest.push_artifact(registry, f"{unique_repo}/b", "v", b)
    ws.write({"tools": {"a": {"ref": registry.ref(f"{unique_repo}/a", "v")},
                        "b": {"ref": registry.ref(f"{unique_repo}/b", "v")}}})
    assert_ok(ws.lock())
    old = ws.data()
    a2 = ocitest.oras_artifact({"a": script("a2")})
    b2 = ocitest.oras_artifact({"b": script("b2")})
    ocitest.push_artifact(registry, f"{unique_repo}/a", "v", a2)  # re-tag: new content
    ocitest.push_artifact(registry, f"{unique_repo}/b", "v", b2)
    assert_ok(ws.lock("a"))
    new = ws.data()
    assert new["tools"]["a"]["platforms"]["*"]["manifest"] == a2.digest
    assert new["tools"]["b"] == old["tools"]["b"]  # untouched, still the old digest
    assert new["tools"]["b"]["platforms"]["*"]["manifest"] == b.digest
    r = ws.lock("nosuch")
    assert_error(r, 4, "'nosuch'", "a, b")


def test_lock_check(registry: Registry, unique_repo: str, ws: Workspace) -> None:
    a = ocitest.oras_artifact({"a": script("a1")})
    ocitest.push_artifact(registry, unique_repo, "v", a)
    ws.write({"tools": {"a": {"ref": registry.ref(unique_repo, "v")}}})
    # no lockfile yet: out of date, and --check creates none
    assert_error(ws.lock("--check"), 7, "does not exist")
    assert not ws.lockfile.exists()
    assert_ok(ws.lock())
    before = ws.lockfile.read_bytes()
    mtime = ws.lockfile.stat().st_mtime_ns
    assert_ok(ws.lock("--check"))
    # drift: the tag now points at new content
    ocitest.push_artifact(registry, unique_repo, "v", ocitest.oras_artifact({"a": script("a2")}))
    r = ws.lock("--check")
    assert_error(r, 7, str(ws.lockfile), "a")
    assert ws.lockfile.read_bytes() == before
    assert ws.lockfile.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in ws.lockfile.parent.iterdir()) == ["tools.lock.json",
                                                                     "tools.yaml"]


@pytest.mark.parametrize(
    ("yaml_text", "needles"),
    [
        ("tools:\n  t: {ref: REF, pth: t}\n", ["$.tools.t", "'pth'"]),
        ("tools:\n  t: {ref: REF, path: /abs}\n", ["$.tools.t.path"]),
        ("tools:\n  t: {ref: 'REF:bad:tag'}\n", ["$.tools.t.ref", "malformed reference"]),
        ("tools:\n  t: {ref: REF\n", ["invalid YAML"]),
        ("platforms: [linux]\ntools:\n  t: {ref: REF}\n", ["$.platforms[0]"]),
    ],
)
def test_malformed_tools_yaml_leaves_lockfile_untouched(
    registry: Registry, unique_repo: str, ws: Workspace, yaml_text: str, needles: list[str]
) -> None:
    ocitest.push_artifact(registry, unique_repo, "v", ocitest.oras_artifact({"t": script("t")}))
    ref = registry.ref(unique_repo, "v")
    ws.write({"tools": {"t": {"ref": ref}}})
    assert_ok(ws.lock())
    before = ws.lockfile.read_bytes()
    ws.config.write_text(yaml_text.replace("REF", ref))
    for args in ((), ("--check",), ("t",)):
        r = ws.lock(*args)
        assert_error(r, 2, str(ws.config), *needles)
        assert ws.lockfile.read_bytes() == before


def test_malformed_lockfile_refused_on_partial_relock(registry: Registry, unique_repo: str,
                                                      ws: Workspace) -> None:
    ocitest.push_artifact(registry, unique_repo, "v", ocitest.oras_artifact({"t": script("t")}))
    ws.write({"tools": {"t": {"ref": registry.ref(unique_repo, "v")}, "u": {
        "ref": registry.ref(unique_repo, "v")}}})
    assert_ok(ws.lock())
    data = ws.data()
    data["tools"]["u"]["platforms"]["*"]["layers"][0]["size"] = "big"
    ws.lockfile.write_text(json.dumps(data))
    before = ws.lockfile.read_bytes()
    r = ws.lock("t")  # keeping u means reading the old lockfile: refused
    assert_error(r, 2, str(ws.lockfile), "$.tools.u.platforms.*.layers[0].size")
    assert ws.lockfile.read_bytes() == before


def test_missing_tag_and_repository(registry: Registry, unique_repo: str,
                                    ws: Workspace) -> None:
    ocitest.push_artifact(registry, unique_repo, "v", ocitest.oras_artifact({"t": script("t")}))
    ws.write({"tools": {"t": {"ref": registry.ref(unique_repo, "nosuchtag")}}})
    assert_error(ws.lock(), 4, "nosuchtag")
    assert not ws.lockfile.exists()
    ws.write({"tools": {"t": {"ref": registry.ref(unique_repo + "/none", "v")}}})
    assert_error(ws.lock(), 4, unique_repo + "/none")
    assert not ws.lockfile.exists()


def test_several_failures_reported_first_in_lockfile_order(
    registry: Registry, unique_repo: str, ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOOLFETCH_RETRIES", "1")
    monkeypatch.setenv("TOOLFETCH_RETRY_DELAY", "0")
    good = ocitest.oras_artifact({"g": script("g")})
    ocitest.push_artifact(registry, unique_repo, "v", good)
    dead = f"127.0.0.1:{ocitest.free_port()}/x/y:1"  # nothing listens there: exit 6
    missing = registry.ref(unique_repo, "missing")  # exit 4
    for first, second, code in (("dead", "missing", 6), ("missing", "dead", 4)):
        refs = {"dead": dead, "missing": missing}
        ws.write({"tools": {
            f"a-{first}": {"ref": refs[first]},
            f"b-{second}": {"ref": refs[second]},
            "c-good": {"ref": registry.ref(unique_repo, "v")},
        }})
        r = ws.lock()
        assert_error(r, code, f"a-{first}", f"b-{second}", dead, "missing")
        assert r.stderr.count("error: ") == 2
        assert "c-good" not in r.stderr
        assert not ws.lockfile.exists()


def test_unpack_formats_by_media_type_title_and_magic(registry: Registry, unique_repo: str,
                                                      ws: Workspace) -> None:
    """mediaType first, then the title's extension, then magic bytes."""
    exe = script("x")
    layers = {
        "by-type.bin": (ocitest.targz({"x": exe}), ocitest.OCI_LAYER_TAR_GZIP, "tar+gzip"),
        "by-ext.tgz": (ocitest.targz({"x": exe}), ocitest.OCTET_STREAM, "tar+gzip"),
        "by-magic": (ocitest.zipbytes({"x": exe}), ocitest.OCTET_STREAM, "zip"),
        "gz-magic": (ocitest.targz({"x": exe}), ocitest.OCI_LAYER_TAR, "tar+gzip"),
        "plain.tar": (ocitest.tarbytes({"x": exe}), ocitest.OCI_LAYER_TAR, "tar"),
        "tool": (exe, ocitest.OCI_LAYER_TAR, "raw"),
    }
    tools: dict[str, Any] = {}
    for i, (title, (data, mt, _)) in enumerate(layers.items()):
        art = ocitest.oras_artifact({title: data}, layer_media_type=mt)
        ocitest.push_artifact(registry, unique_repo, f"t{i}", art)
        tools[f"t{i}"] = {"ref": registry.ref(unique_repo, f"t{i}"), "path": "x"}
    tools["t5"]["path"] = "tool"
    ws.write({"tools": tools})
    assert_ok(ws.lock())
    data = ws.data()
    for i, (title, (_, mt, fmt)) in enumerate(layers.items()):
        layer = data["tools"][f"t{i}"]["platforms"]["*"]["layers"][0]
        assert (layer["title"], layer["mediaType"], layer["unpack"]) == (title, mt, fmt)


def test_oci_layout_refs_are_rebased_to_the_lockfile(registry: Registry, unique_repo: str,
                                                     tmp_path: Path, cache_dir: Path) -> None:
    idx = ocitest.push_tool_index(registry, unique_repo, "1", {
        host(): {"hello": script("layout-hello")}, other_platform(): {"hello": script("o")}})
    conf = tmp_path / "conf"
    conf.mkdir()
    ocitest.skopeo_copy(f"docker://{idx.ref}", f"oci:{conf / 'layout'}:hello")
    config = write_config(conf / "tools.yaml", {
        "mirrors": {"ghcr.io": ["oci-layout:layout"]},
        "tools": {"hello": {"ref": "oci-layout:layout:hello", "path": "hello"}}})
    lockfile = tmp_path / "out" / "tools.lock.json"
    assert_ok(tf_main("lock", "--config", config, "--lockfile", lockfile))
    data = json.loads(lockfile.read_text())
    hello = data["tools"]["hello"]
    assert hello["ref"] == "oci-layout:layout:hello"  # as written
    entry = hello["platforms"][host()]
    assert entry["ref"] == "oci-layout:../conf/layout:hello"  # relative to the lockfile
    assert data["mirrors"] == {"ghcr.io": ["oci-layout:../conf/layout"]}
    assert entry["index"] == idx.index_digest  # skopeo --preserve-digests kept the bytes
    assert entry["manifest"] == idx.manifests[host()]
    r = tf_main("which", "--lockfile", lockfile, "hello")
    assert_ok(r)
    assert Path(r.stdout.strip()).read_bytes() == script("layout-hello")


def test_path_problems(registry: Registry, unique_repo: str, ws: Workspace) -> None:
    files = ocitest.oras_artifact({"a": script("a"), "b": script("b")})
    ocitest.push_artifact(registry, unique_repo, "two", files)
    tarred = ocitest.oras_artifact({"t.tar.gz": ocitest.targz({"x": script("x")})})
    ocitest.push_artifact(registry, unique_repo, "tgz", tarred)
    two, tgz = registry.ref(unique_repo, "two"), registry.ref(unique_repo, "tgz")
    ws.write({"tools": {"t": {"ref": two, "path": "c"}}})
    assert_error(ws.lock(), 4, "'c'", "a, b")  # not among the artifact's files
    ws.write({"tools": {"t": {"ref": two}}})
    assert_error(ws.lock(), 2, "path")  # two files: which one?
    ws.write({"tools": {"t": {"ref": tgz}}})
    assert_error(ws.lock(), 2, "path")  # an archive: path must be given
    assert not ws.lockfile.exists()


def test_corrupted_manifest_exit_3(make_registry: Any, ws: Workspace) -> None:
    reg = make_registry()
    idx = ocitest.push_tool_index(reg, "acme/m", "1", {"linux/amd64": {"t": script("a")}})
    ws.write({"tools": {"m": {"ref": idx.ref, "path": "t"}}})
    assert_ok(ws.lock())
    before = ws.lockfile.read_bytes()
    digest = idx.manifests["linux/amd64"]
    raw = idx.manifest_bytes["linux/amd64"]
    # flip a byte inside a JSON string: still JSON, the registry serves it, wrong digest
    ocitest.corrupt_blob(reg, digest, offset=raw.index(b"toolfetch"))
    served = ocitest.get_manifest(reg, "acme/m", digest)
    assert served.status_code == 200 and sha(served.content) != digest
    for args in ((), ("--check",)):
        assert_error(ws.lock(*args), 3, digest, "tool m")
        assert ws.lockfile.read_bytes() == before
