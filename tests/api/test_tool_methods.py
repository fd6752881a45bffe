"""The tool and lockfile methods of ``toolfetch.Client`` as a build script uses them, against a
real registry: fetch with an output directory, list, lock with upgrades, re-check signatures,
import DotSlash and rules_multitool entries, bootstrap; which lockfile pairs with which
tools.yaml; and that one ``lock`` reads the lockfile once.
"""

from __future__ import annotations

import base64
import builtins
import dataclasses
import io
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ocitest
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from ocitest import Registry
from tf import host, other_platform, script, tf_main, write_config

import toolfetch

SHA = "a" * 64


def push_tool(reg: Registry, repo: str, name: str, text: str, tag: str = "1") -> str:
    """A single-file tool artifact printing ``text``; its reference."""
    ocitest.push_artifact(reg, repo, tag, ocitest.oras_artifact({name: script(text)}))
    return reg.ref(repo, tag)


@pytest.fixture
def project(registry: Registry, unique_repo: str, tmp_path: Path) -> Path:
    """tools.yaml with tools ``a`` and ``b``, locked; the lockfile's path."""
    write_config(tmp_path / "tools.yaml", {"tools": {
        "a": {"ref": push_tool(registry, f"{unique_repo}/a", "a", "a-1")},
        "b": {"ref": push_tool(registry, f"{unique_repo}/b", "b", "b-1")},
    }})
    lockfile = tmp_path / "tools.lock.json"
    toolfetch.Client(lockfile).lock()
    return lockfile


# ---- fetch_tools ---------------------------------------------------------------------------


def test_fetch_tools_says_where_each_tool_is_and_writes_one_tree_out(
        project: Path, tmp_path: Path, cache_dir: Path) -> None:
    with toolfetch.Client(project) as client:
        found = client.fetch_tools()
        assert [(t.tool, t.platform, t.arg0) for t in found] == [("a", "*", "executable"),
                                                                 ("b", "*", "executable")]
        for t in found:
            assert t.tree.is_relative_to(cache_dir) and t.executable == t.tree / t.tool
        out = tmp_path / "out" / "a"
        (only,) = client.fetch_tools(["a"], output=out)
        assert only == found[0]
        assert (out / "a").read_bytes() == only.executable.read_bytes()
        with pytest.raises(toolfetch.LocalIOError) as not_empty:  # never written over
            client.fetch_tools(["a"], output=out)
        assert not_empty.value.exit_code == 8 and str(out) in str(not_empty.value)
        with pytest.raises(toolfetch.UsageError):  # one tree: one tool
            client.fetch_tools(["a", "b"], output=tmp_path / "two")
        with pytest.raises(toolfetch.UsageError):
            client.fetch_tools(["a"], all_platforms=True, output=tmp_path / "all")
        assert not (tmp_path / "two").exists() and not (tmp_path / "all").exists()


def test_fetch_tools_json_is_what_the_cli_prints(project: Path) -> None:
    with toolfetch.Client(project) as client:
        found = client.fetch_tools(["b", "a"])
    r = tf_main("fetch", "--lockfile", project, "--json", "a", "b")
    assert json.loads(r.stdout) == [
        {"tool": t.tool, "platform": t.platform, "tree": str(t.tree), "path": str(t.executable)}
        for t in found]


# ---- list_tools ----------------------------------------------------------------------------


def test_list_tools_reports_sources_platforms_and_what_is_cached(
        registry: Registry, unique_repo: str, tmp_path: Path) -> None:
    idx = ocitest.push_tool_index(registry, f"{unique_repo}/multi", "1", {
        p: {"multi": script(f"multi-{p}")} for p in (host(), other_platform())})
    write_config(tmp_path / "tools.yaml", {"tools": {
        "multi": {"ref": idx.ref, "path": "multi"},
        "one": {"ref": push_tool(registry, f"{unique_repo}/one", "one", "one")}}})
    with toolfetch.Client(tmp_path / "tools.lock.json") as client:
        client.lock()
        before = client.list_tools()
        assert [row.tool for row in before] == ["multi", "one"]
        assert before[0].platforms == tuple(sorted((host(), other_platform())))
        assert before[0].source == idx.ref and before[0].sources == (idx.ref,)
        assert all(row.cached == () for row in before)
        client.fetch(["multi"])
        multi, one = client.list_tools()
        assert multi.cached == (host(),) and one.cached == ()
        with pytest.raises(dataclasses.FrozenInstanceError):
            multi.tool = "x"  # type: ignore[misc]


# ---- lock ----------------------------------------------------------------------------------


@pytest.fixture
def versioned(registry: Registry, unique_repo: str, tmp_path: Path) -> Path:
    """A tool with ``version: ">=1"`` over tags 1.0 and 1.1; the lockfile's path."""
    for tag in ("1.0", "1.1"):
        push_tool(registry, unique_repo, "v", f"v-{tag}", tag)
    write_config(tmp_path / "tools.yaml", {"tools": {"v": {
        "ref": f"{registry.host}/{unique_repo}", "version": ">=1", "path": "v"}}})
    return tmp_path / "tools.lock.json"


def test_lock_upgrade_reports_each_versioned_tool_old_and_new(
        registry: Registry, unique_repo: str, versioned: Path) -> None:
    base = f"{registry.host}/{unique_repo}"
    with toolfetch.Client(versioned) as client:
        first = client.lock(upgrade=True)
        assert first.upgrades == (toolfetch.Upgrade("v", None, f"{base}:1.1"),)
        push_tool(registry, unique_repo, "v", "v-1.2", "1.2")
        assert client.lock().upgrades == ()  # a plain lock keeps 1.1 and reports none
        (moved,) = client.lock(upgrade=True).upgrades
        assert (moved.old, moved.new, moved.moved) == (f"{base}:1.1", f"{base}:1.2", True)
        (same,) = client.lock(["v"], upgrade=True).upgrades
        assert not same.moved and same.new == f"{base}:1.2"
        assert client.which("v").read_bytes() == script("v-1.2")


@pytest.fixture
def lockfile_reads(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], int]:
    """How many times a path was opened for reading (by open(), io.open() or pathlib)."""
    seen: list[str] = []
    real = builtins.open

    def counting(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, (str, os.PathLike)) and "r" in mode and "+" not in mode:
            seen.append(os.fspath(file))
        return real(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting)
    monkeypatch.setattr(io, "open", counting)
    return lambda path: seen.count(str(path))


@pytest.mark.parametrize("upgrade", [False, True])
def test_one_lock_reads_the_lockfile_once(versioned: Path, upgrade: bool,
                                          lockfile_reads: Callable[[Path], int]) -> None:
    client = toolfetch.Client(versioned)
    client.lock()
    before = lockfile_reads(versioned)
    client.lock(upgrade=upgrade)
    assert lockfile_reads(versioned) - before == 1


# ---- verify_signatures ---------------------------------------------------------------------


def cosign_signed(reg: Registry, repo: str, key: ec.EllipticCurvePrivateKey) -> str:
    """A tool at ``repo:1`` with a cosign key-pair signature in cosign's format; its ref."""
    ref = push_tool(reg, repo, "signed", "signed")
    manifest = ocitest.sha256_digest(ocitest.get_manifest(reg, repo, "1").content)
    payload = json.dumps({"critical": {
        "identity": {"docker-reference": f"{reg.host}/{repo}"},
        "image": {"docker-manifest-digest": manifest},
        "type": "cosign container image signature"}, "optional": None}).encode()
    signature = base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
    layer = ocitest.push_blob(reg, repo, payload, "application/vnd.dev.cosign.simplesigning"
                              ".v1+json", {"dev.cosignproject.cosign/signature": signature})
    config = ocitest.push_blob(reg, repo, b"{}", ocitest.OCI_EMPTY)
    ocitest.push_manifest(reg, repo, f"sha256-{manifest.split(':')[1]}.sig", {
        "schemaVersion": 2, "mediaType": ocitest.OCI_MANIFEST, "config": config,
        "layers": [layer]})
    return ref


def test_verify_signatures_names_the_signer_and_works_offline(
        registry: Registry, unique_repo: str, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "cosign.pub").write_bytes(public)
    write_config(tmp_path / "tools.yaml", {"tools": {
        "signed": {"ref": cosign_signed(registry, f"{unique_repo}/s", key), "path": "signed",
                   "verify": {"cosign-key": "cosign.pub"}},
        "plain": {"ref": push_tool(registry, f"{unique_repo}/p", "plain", "plain")}}})
    lockfile = tmp_path / "tools.lock.json"
    toolfetch.Client(lockfile).lock()
    recorded = json.loads(lockfile.read_text())["tools"]["signed"]["platforms"]["*"]["verified"]
    plain, signed = toolfetch.Client(lockfile).verify_signatures()
    assert (plain.tool, plain.platform, plain.has_policy, plain.signer) == ("plain", "*", False,
                                                                            None)
    assert signed.has_policy and signed.signature == recorded["signature"]
    assert signed.signer == f"cosign key {recorded['key']}"
    # the signature is in the cache now: offline, the same answer for the tool named
    assert toolfetch.Client(lockfile, offline=True).verify_signatures(["signed"]) == (signed,)

    data = json.loads(lockfile.read_text())
    del data["tools"]["signed"]["platforms"]["*"]["verified"]
    lockfile.write_text(json.dumps(data))
    with pytest.raises(toolfetch.OutOfDateError) as unrecorded:
        toolfetch.Client(lockfile).verify_signatures(["signed"])
    assert unrecorded.value.exit_code == 7


# ---- import_dotslash, import_multitool -----------------------------------------------------


def dotslash(directory: Path, name: str) -> Path:
    path = directory / name
    path.write_text("#!/usr/bin/env dotslash\n" + json.dumps({"name": name, "platforms": {
        "linux-x86_64": {"size": 10, "hash": "sha256", "digest": SHA, "path": name,
                         "providers": [{"url": f"https://example.com/{name}"}]}}}))
    return path


def test_import_dotslash_adds_entries_to_the_clients_tools_yaml(tmp_path: Path) -> None:
    config = tmp_path / "ci.yml"
    config.write_text("tools:\n")
    before = config.read_text()
    client = toolfetch.Client(config=config)
    dry = client.import_dotslash([dotslash(tmp_path, "buck2")], dry_run=True)
    assert (dry.config, list(dry.tools), dry.written) == (config, ["buck2"], False)
    assert dry.tools["buck2"]["platforms"]["linux/amd64"]["url"] == "https://example.com/buck2"
    assert config.read_text() == before
    with pytest.raises(TypeError):  # a frozen value, read-only all the way down
        dry.tools["other"] = {}  # type: ignore[index]
    with pytest.raises(TypeError):
        dry.tools["buck2"]["platforms"]["linux/amd64"]["url"] = "https://evil.example/"
    assert hash(dry) == hash(dataclasses.replace(dry)) and dry == dataclasses.replace(dry)
    assert dry.plain_tools()["buck2"]["platforms"]["linux/amd64"]["url"].endswith("/buck2")
    added = client.import_dotslash([tmp_path / "buck2"], name="b2")
    assert added.written and list(added.tools) == ["b2"] and "b2:" in config.read_text()
    with pytest.raises(toolfetch.UsageError, match="one"):  # a name for two files
        client.import_dotslash([tmp_path / "buck2", dotslash(tmp_path, "x")], name="y")
    with pytest.raises(toolfetch.UsageError, match="twice"):
        client.import_dotslash([tmp_path / "buck2", tmp_path / "buck2"])


def test_import_multitool_dry_run_and_nothing_to_import(tmp_path: Path) -> None:
    lock = tmp_path / "multitool.lock.json"
    lock.write_text(json.dumps({"t": {"binaries": [{
        "kind": "file", "url": "https://x.example/t", "sha256": SHA, "os": "linux",
        "cpu": "x86_64"}]}}))
    client = toolfetch.Client(tmp_path / "tools.lock.json")
    found = client.import_multitool([lock], dry_run=True)
    assert found.config == tmp_path / "tools.yaml" and list(found.tools) == ["t"]
    assert not (tmp_path / "tools.yaml").exists()
    lock.write_text("{}")
    with pytest.raises(toolfetch.UsageError, match="nothing toolfetch can import") as none:
        client.import_multitool([lock])
    assert none.value.exit_code == 2


# ---- bootstrap -----------------------------------------------------------------------------


def test_bootstrap_plans_the_tools_this_host_lacks_once(
        registry: Registry, unique_repo: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from toolfetch.ops import plan

    idx = ocitest.push_tool_index(registry, f"{unique_repo}/elsewhere", "1", {
        other_platform(): {"e": script("e")}})
    write_config(tmp_path / "tools.yaml", {"tools": {
        "a": {"ref": push_tool(registry, f"{unique_repo}/a", "a", "a")},
        "elsewhere": {"ref": idx.ref, "path": "e"}}})
    lockfile = tmp_path / "tools.lock.json"
    calls: list[str] = []
    real = plan.unavailable

    def counted(*args: Any) -> Any:
        calls.append("unavailable")
        return real(*args)

    monkeypatch.setattr(plan, "unavailable", counted)
    with toolfetch.Client(lockfile) as client:
        client.lock()
        report = client.bootstrap(tmp_path / "bin")
    assert calls == ["unavailable"]
    assert (report.tools, report.written, report.bin_dir) == (1, 2, tmp_path / "bin")
    assert "not available" in (tmp_path / "bin" / "elsewhere").read_text() or os.name == "nt"


# ---- which lockfile, which tools.yaml ------------------------------------------------------


def pairs(tmp_path: Path) -> Iterator[tuple[dict[str, Path], Path, Path]]:
    ci, yml = tmp_path / "ci" / "ci.lock.json", tmp_path / "ci" / "ci.yml"
    yield {"lockfile": ci}, ci, tmp_path / "ci" / "tools.yaml"
    yield {"config": yml}, ci, yml
    yield {"lockfile": ci, "config": tmp_path / "other.yaml"}, ci, tmp_path / "other.yaml"


def test_lockfile_and_tools_yaml_pair_by_one_rule_in_the_cli_and_the_library(
        registry: Registry, unique_repo: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The real ``toolfetch lock`` with each pair of options (relative, from tmp_path) writes
    the lockfile the library names, from the tools.yaml the library names: each tools.yaml
    here locks a tool of its own name, so the lockfile says which one was read."""
    monkeypatch.chdir(tmp_path)
    ref = push_tool(registry, unique_repo, "t", "t")
    for given, lockfile, config in pairs(tmp_path):
        client = toolfetch.Client(**given)
        assert (client.lockfile, client.config) == (lockfile, config), given
        relative = {k: v.relative_to(tmp_path) for k, v in given.items()}
        assert toolfetch.Client(**relative).config == config
        for path in (tmp_path / "ci" / "tools.yaml", tmp_path / "ci" / "ci.yml",
                     tmp_path / "other.yaml"):
            write_config(path, {"tools": {path.stem: {"ref": ref}}})
        lockfile.unlink(missing_ok=True)
        options = [a for k, v in relative.items() for a in (f"--{k}", str(v))]
        r = tf_main("lock", *options)
        assert r.returncode == 0, (given, r.stderr)
        assert list(json.loads(lockfile.read_text())["tools"]) == [config.stem], given


def test_lock_with_config_writes_the_lockfile_beside_it(
        registry: Registry, unique_repo: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "ci" / "build-tools.yml", {"tools": {
        "a": {"ref": push_tool(registry, unique_repo, "a", "a")}}})
    result = toolfetch.Client(config=config).lock()
    assert result.lockfile.path == tmp_path / "ci" / "build-tools.lock.json"
    assert result.lockfile.path.is_file()
