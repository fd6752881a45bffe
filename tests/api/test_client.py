"""``toolfetch.Client`` as a build script uses it, against a real registry: get a tool's
path, fetch several, lock and read what changed, pull, list tags, inspect (a WASM module and
a component among them), verify and clear the cache; and the exit code each failure carries.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import ocitest
import pytest
from ocitest import Registry
from tf import cache_blobs, host, other_platform, script, write_config

import toolfetch

WASM_CONFIG = "application/vnd.wasm.config.v0+json"
WASM_MODULE_LAYER = "application/vnd.wasm.content.layer.v1+wasm"
WASM_COMPONENT_LAYER = "application/vnd.wasm.component.v1+wasm"


def push_tool(reg: Registry, repo: str, name: str, text: str, tag: str = "1") -> str:
    """A single-file tool artifact printing ``text``; its reference."""
    ocitest.push_artifact(reg, repo, tag, ocitest.oras_artifact({name: script(text)}))
    return reg.ref(repo, tag)


@pytest.fixture
def project(registry: Registry, unique_repo: str, tmp_path: Path) -> Path:
    """tools.yaml with tools ``a`` and ``b`` (not locked yet); the lockfile's path."""
    write_config(tmp_path / "lockfiles" / "tools.yaml", {"tools": {
        "a": {"ref": push_tool(registry, f"{unique_repo}/a", "a", "a-1")},
        "b": {"ref": push_tool(registry, f"{unique_repo}/b", "b", "b-1")},
    }})
    return tmp_path / "lockfiles" / "tools.lock.json"


def output_of(exe: Path) -> str:
    return subprocess.run([exe], capture_output=True, text=True, check=True).stdout.split()[0]


def test_a_build_script_locks_gets_paths_and_reads_what_changed(
        registry: Registry, unique_repo: str, project: Path, cache_dir: Path) -> None:
    with toolfetch.Client(project) as client:
        first = client.lock()
        assert first.changed and project.is_file()
        assert sorted(first.lockfile.tools) == ["a", "b"]
        assert client.cache_dir == cache_dir  # $TOOLFETCH_CACHE_DIR, as the CLI takes it
        a = client.which("a")
        assert a.is_absolute() and a.is_relative_to(cache_dir) and output_of(a) == "a-1"
        both = client.fetch(["a", "b"])
        assert set(both) == {"a", "b"} and both["a"] == a and output_of(both["b"]) == "b-1"
        assert client.fetch() == both  # no tools named: every tool for this host

        push_tool(registry, f"{unique_repo}/a", "a", "a-2")  # the tag moves upstream
        with pytest.raises(toolfetch.OutOfDateError) as drift:
            client.lock(check=True)
        assert drift.value.exit_code == 7 and str(project) in str(drift.value)
        again = client.lock()
        assert [(c.tool, c.kind) for c in again.changes] == [("a", "changed")]
        change = again.changes[0]
        assert change.old != change.new and change.new == json.loads(
            project.read_text())["tools"]["a"]["platforms"]["*"]["manifest"]
        assert output_of(client.which("a")) == "a-2"
        assert client.lock().changes == ()  # nothing moved since


def test_fetch_for_every_platform_keys_paths_by_tool_and_platform(
        registry: Registry, unique_repo: str, tmp_path: Path) -> None:
    idx = ocitest.push_tool_index(registry, f"{unique_repo}/multi", "1", {
        p: {"multi": script(f"multi-{p}")} for p in (host(), other_platform())})
    write_config(tmp_path / "tools.yaml", {"tools": {"multi": {"ref": idx.ref,
                                                                "path": "multi"}}})
    with toolfetch.Client(tmp_path / "tools.lock.json") as client:
        client.lock()
        paths = client.fetch(all_platforms=True)
        assert sorted(paths) == sorted(f"multi@{p}" for p in (host(), other_platform()))
        assert output_of(paths[f"multi@{host()}"]) == f"multi-{host()}"
        other = client.which("multi", platform=other_platform())
        assert other == paths[f"multi@{other_platform()}"]
        with pytest.raises(toolfetch.UsageError):
            client.fetch(platform=host(), all_platforms=True)


def test_failures_raise_the_classes_of_the_cli_exit_codes(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toolfetch.Client(project).lock()
    with toolfetch.Client(project, offline=True) as client:  # nothing cached yet
        with pytest.raises(toolfetch.UnreachableError) as offline:
            client.which("a")
        assert offline.value.exit_code == 6
        with pytest.raises(toolfetch.NotFoundError) as missing:
            client.which("nope")
        assert missing.value.exit_code == 4 and "nope" in str(missing.value)
        with pytest.raises(toolfetch.UsageError) as usage:
            client.lock(check=True, upgrade=True)
        assert usage.value.exit_code == 2
    monkeypatch.setenv("TOOLFETCH_OFFLINE", "Yes")  # offline=None follows the environment
    with pytest.raises(toolfetch.UnreachableError):
        toolfetch.Client(project).which("a")
    monkeypatch.setenv("TOOLFETCH_OFFLINE", "sometimes")  # refused as the CLI refuses it
    with pytest.raises(toolfetch.UsageError, match="TOOLFETCH_OFFLINE='sometimes'"):
        toolfetch.Client(project)
    with pytest.raises(toolfetch.UsageError, match="jobs"):
        toolfetch.Client(project, offline=False, jobs=0)
    assert output_of(toolfetch.Client(project, offline=False).which("a")) == "a-1"
    with pytest.raises(toolfetch.UsageError) as bad_lockfile:
        project.write_text("{not json")
        toolfetch.Client(project).which("a")
    assert bad_lockfile.value.exit_code == 2


def test_pull_writes_titled_layers_and_never_replaces(registry: Registry, unique_repo: str,
                                                      tmp_path: Path) -> None:
    art = ocitest.oras_artifact({"readme.txt": b"hello\n", "data.json": b"{}"})
    ocitest.push_artifact(registry, unique_repo, "v1", art)
    out = tmp_path / "out"
    written = toolfetch.Client().pull(registry.ref(unique_repo, "v1"), out)
    assert sorted(p.name for p in written) == ["data.json", "readme.txt"]
    assert (out / "readme.txt").read_bytes() == b"hello\n"
    (out / "data.json").write_text("mine")
    with pytest.raises(toolfetch.UsageError) as refused:
        toolfetch.Client().pull(registry.ref(unique_repo, "v1"), out)
    assert refused.value.exit_code == 2 and (out / "data.json").read_text() == "mine"
    with pytest.raises(toolfetch.NotFoundError):
        toolfetch.Client().pull(registry.ref(unique_repo, "no-such-tag"), tmp_path / "x")


def test_list_tags(registry: Registry, unique_repo: str) -> None:
    for tag in ("2.0", "1.0", "latest"):
        push_tool(registry, unique_repo, "t", tag, tag)
    client = toolfetch.Client()
    assert sorted(client.list_tags(f"{registry.host}/{unique_repo}")) == ["1.0", "2.0",
                                                                          "latest"]
    with pytest.raises(toolfetch.UsageError):
        client.list_tags(registry.ref(unique_repo, "1.0"))


def push_wasm(reg: Registry, repo: str, tag: str, layer_type: str) -> str:
    config = json.dumps({"architecture": "wasm", "os": "wasip1"}).encode()
    module = b"\0asm\x01\0\0\0"
    ocitest.push_blob(reg, repo, config)
    ocitest.push_blob(reg, repo, module)
    ocitest.push_manifest(reg, repo, tag, {
        "schemaVersion": 2, "mediaType": ocitest.OCI_MANIFEST,
        "config": ocitest.descriptor(config, WASM_CONFIG),
        "layers": [ocitest.descriptor(module, layer_type, {ocitest.TITLE: "app.wasm"})]})
    return reg.ref(repo, tag)


def test_get_artifact_info_types_kinds_and_the_wasm_flavour(registry: Registry,
                                                            unique_repo: str) -> None:
    client = toolfetch.Client()
    module = client.get_artifact_info(push_wasm(registry, unique_repo, "module",
                                                WASM_MODULE_LAYER))
    assert module.kind == "wasm" and module.wasm == toolfetch.WasmInfo("module", "preview1")
    assert module.artifact_type == WASM_CONFIG and module.layers[0].title == "app.wasm"
    assert module.config is not None and module.config.media_type == WASM_CONFIG
    component = client.get_artifact_info(push_wasm(registry, unique_repo, "component",
                                                   WASM_COMPONENT_LAYER))
    assert component.wasm == toolfetch.WasmInfo("component", "preview2")

    tool_ref = push_tool(registry, unique_repo, "t", "t")
    tool = client.get_artifact_info(tool_ref)
    assert (tool.kind, tool.wasm, tool.is_index) == ("tool", None, False)
    raw = ocitest.get_manifest(registry, unique_repo, "1").content
    assert tool.digest == ocitest.sha256_digest(raw) and tool.size == len(raw)
    assert tool.reference == tool_ref and tool.total_size == sum(
        d.size for d in tool.layers) + 2  # the empty config {}

    idx = ocitest.push_tool_index(registry, f"{unique_repo}/idx", "1", {
        p: {"x": b"x"} for p in (host(), other_platform())})
    index = client.get_artifact_info(idx.ref)
    assert index.is_index and index.digest == idx.index_digest
    assert sorted(index.platforms) == sorted([host(), other_platform()])
    assert {c.platform: c.digest for c in index.manifests} == idx.manifests
    with pytest.raises(toolfetch.NotFoundError):
        client.get_artifact_info(registry.ref(unique_repo, "missing"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        index.kind = "x"  # type: ignore[misc]


def test_verify_cache_finds_and_repairs_damage(project: Path, cache_dir: Path) -> None:
    with toolfetch.Client(project) as client:
        client.lock()
        client.fetch()
    assert toolfetch.Client(project).verify_cache().intact
    blob = next(iter(cache_blobs(cache_dir).values()))
    blob.chmod(0o644)
    blob.write_bytes(b"damaged")
    with toolfetch.Client(project) as client:
        found = client.verify_cache()
        assert not found.intact and not found.repaired
        assert ("blob", f"sha256:{blob.name}") in {(p.kind, p.digest) for p in found.problems}
        # a value, not the command line's sentence (`cache verify` words it)
        assert not str(found.problems[0]).startswith("bad ")
        repaired = client.verify_cache(repair=True)
        assert repaired.repaired and repaired.dropped == len(repaired.problems)
        assert repaired.refetched == project
    assert toolfetch.Client(project).verify_cache().intact
    assert output_of(toolfetch.Client(project, offline=True).which("a")) == "a-1"


def test_clear_cache_spares_held_and_kept_trees(project: Path, cache_dir: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLFETCH_GC_GRACE", "0")  # no grace: only holds and keeps protect
    toolfetch.Client(project).lock()
    with toolfetch.Client(project) as client:
        client.fetch()
        held = client.clear_cache(max_size=0)
        assert held.removed == () and len(held.kept_in_use) == 2  # this client's two trees
    with toolfetch.Client(project) as client:
        assert client.clear_cache(max_size="0", keep=[project]).removed == ()
        dry = client.clear_cache(unused_for=0, dry_run=True)
        assert len(dry.removed) == 4 and cache_blobs(cache_dir)  # two trees, two blobs
        gone = client.clear_cache(max_size="0")
        assert gone.size_after < gone.size_before and cache_blobs(cache_dir) == {}
        with pytest.raises(toolfetch.UsageError) as bad_size:
            client.clear_cache(max_size="lots")
        assert bad_size.value.exit_code == 2 and "max_size" in str(bad_size.value)


def test_export_then_import_layout_serves_an_offline_machine(project: Path,
                                                             tmp_path: Path) -> None:
    toolfetch.Client(project).lock()
    stats = toolfetch.Client(project).export(tmp_path / "bundle")
    assert stats.blobs >= 2 and (tmp_path / "bundle" / "index.json").is_file()
    airgapped = toolfetch.Client(project, cache_dir=tmp_path / "other-cache", offline=True)
    assert airgapped.import_layout(tmp_path / "bundle").skipped == 0
    with airgapped:
        a = airgapped.which("a")
    assert a.is_relative_to(tmp_path / "other-cache") and output_of(a) == "a-1"
