"""Issue 13: `import-dotslash` and `import-multitool` write tools.yaml entries that lock, fetch
and run, from files written in each project's documented format."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import ocitest
import pytest
import yaml
from assetserver import AssetServer
from blake3 import blake3
from tf import assert_error, assert_ok, host, run_toolfetch, script, tf_main

TOOL = script("imported")
ARCHIVE = ocitest.targz({"node-v1/bin/node": (TOOL, 0o755)})
DOTSLASH_HOST = {"linux/amd64": "linux-x86_64", "linux/arm64": "linux-aarch64"}[host()]
MULTITOOL_HOST = {"linux/amd64": ("linux", "x86_64"), "linux/arm64": ("linux", "arm64")}[host()]


@pytest.fixture
def server() -> Iterator[AssetServer]:
    s = AssetServer()
    s.files["/dist/node-v1.tar.gz"] = ARCHIVE
    s.files["/dl/buildx-linux"] = TOOL
    yield s
    s.close()


def _dotslash(server: AssetServer, digest: str, hash_kind: str) -> str:
    """A DotSlash file as DotSlash's docs write them: comments and trailing commas."""
    return f"""#!/usr/bin/env dotslash

// The Node.js runtime, pinned per platform.
{{
  "name": "node",
  "platforms": {{
    "{DOTSLASH_HOST}": {{
      "size": {len(ARCHIVE)},
      "hash": "{hash_kind}",
      "digest": "{digest}",
      "format": "tar.gz",
      "path": "node-v1/bin/node",
      "providers": [
        {{"url": "{server.url('/dist/node-v1.tar.gz')}"}},
        {{"type": "github-release", "repo": "nodejs/node", "tag": "v1", "name": "node-v1.tar.gz"}},
      ],
    }},
    "macos-aarch64": {{
      "size": 1, "hash": "blake3", "digest": "{'ab' * 32}", "format": "tar.gz",
      "path": "node-v1/bin/node",
      "providers": [{{"url": "https://nodejs.org/dist/v1/node-v1-darwin-arm64.tar.gz"}}],
    }},
  }},
}}
"""


def test_import_dotslash_then_lock_fetch_run(server: AssetServer, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "tools.yaml").write_text("# our tools\ntools:\n  # keep me\n  other:\n"
                                   "    ref: example.com/other:1\n    path: other\n")
    node = ws / "node"
    node.write_text(_dotslash(server, blake3(ARCHIVE).hexdigest(), "blake3"))
    lockfile = ws / "tools.lock.json"
    r = tf_main("import-dotslash", "--lockfile", lockfile, node)
    assert_ok(r)
    text = (ws / "tools.yaml").read_text()
    assert "# our tools" in text and "# keep me" in text  # comments stay
    tools = yaml.safe_load(text)["tools"]
    assert tools["other"] == {"ref": "example.com/other:1", "path": "other"}
    assert tools["node"] == {"arg0": "tool", "platforms": {
        host(): {"urls": [server.url("/dist/node-v1.tar.gz"),
                          "https://github.com/nodejs/node/releases/download/v1/node-v1.tar.gz"],
                 "format": "tar+gzip", "path": "node-v1/bin/node",
                 "blake3": blake3(ARCHIVE).hexdigest(), "size": len(ARCHIVE)},
        "darwin/arm64": {"url": "https://nodejs.org/dist/v1/node-v1-darwin-arm64.tar.gz",
                         "format": "tar+gzip", "path": "node-v1/bin/node",
                         "blake3": "ab" * 32, "size": 1}}}
    # lock just this host's entry (the darwin URL is not on loopback)
    del tools["other"]
    tools["node"]["platforms"].pop("darwin/arm64")
    (ws / "tools.yaml").write_text(yaml.safe_dump({"tools": tools}))
    r = tf_main("lock", "--lockfile", lockfile)
    assert_ok(r)
    assert f"pinned sha256:{hashlib.sha256(ARCHIVE).hexdigest()}" in r.stderr
    assert "declared blake3 digest and size checked" in r.stderr
    locked = json.loads(lockfile.read_text())["tools"]["node"]
    assert locked["arg0"] == "tool"
    assert locked["platforms"][host()]["blake3"] == blake3(ARCHIVE).hexdigest()
    r = run_toolfetch("run", "--lockfile", lockfile, "node", "--", "v")
    assert_ok(r)
    assert r.stdout.splitlines() == ["imported", "arg:v"]
    # again: the tool exists now
    assert_error(tf_main("import-dotslash", "--lockfile", lockfile, node), 2, "node",
                 "already has")


def test_dotslash_itself_agrees_on_the_file(server: AssetServer, tmp_path: Path) -> None:
    """The real DotSlash runs the same file (sha256 form) and gets the bytes toolfetch
    locks and fetches from the imported entry."""
    dotslash = shutil.which("dotslash")
    if dotslash is None:
        pytest.skip("dotslash (pip install dotslash) is not installed")
    ws = tmp_path / "ws"
    ws.mkdir()
    node = ws / "node"
    node.write_text(_dotslash(server, hashlib.sha256(ARCHIVE).hexdigest(), "sha256"))
    node.chmod(0o755)
    env = {**os.environ, "DOTSLASH_CACHE": str(tmp_path / "dotslash-cache")}
    ran = subprocess.run([dotslash, str(node), "x"], capture_output=True, text=True, env=env,
                         timeout=60)
    assert ran.returncode == 0, ran.stderr
    lockfile = ws / "tools.lock.json"
    assert_ok(tf_main("import-dotslash", "--lockfile", lockfile, node))
    tools = yaml.safe_load((ws / "tools.yaml").read_text())["tools"]
    assert tools["node"]["platforms"][host()]["sha256"] == hashlib.sha256(ARCHIVE).hexdigest()
    tools["node"]["platforms"].pop("darwin/arm64")
    (ws / "tools.yaml").write_text(yaml.safe_dump({"tools": tools}))
    assert_ok(tf_main("lock", "--lockfile", lockfile))
    r = run_toolfetch("run", "--lockfile", lockfile, "node", "--", "x")
    assert r.stdout == ran.stdout == "imported\narg:x\n"


def test_import_multitool_then_lock_and_run(server: AssetServer, tmp_path: Path) -> None:
    os_name, cpu = MULTITOOL_HOST
    multitool = tmp_path / "multitool.lock.json"
    multitool.write_text(json.dumps({
        "$schema": "https://raw.githubusercontent.com/theoremlp/rules_multitool/main/"
                   "lockfile.schema.json",
        "buildx": {"binaries": [
            {"kind": "file", "url": server.url("/dl/buildx-linux"),
             "sha256": hashlib.sha256(TOOL).hexdigest(), "os": os_name, "cpu": cpu},
            {"kind": "file", "url": "https://example.com/buildx-darwin",
             "sha256": "AB" * 32, "os": "macos", "cpu": "arm64"}]},
        "node": {"binaries": [
            {"kind": "archive", "url": server.url("/dist/node-v1.tar.gz"),
             "file": "node-v1/bin/node", "sha256": hashlib.sha256(ARCHIVE).hexdigest(),
             "os": os_name, "cpu": cpu, "type": "tar.gz"}]},
    }, indent=2))
    ws = tmp_path / "ws"
    r = tf_main("import-multitool", "--config", ws / "tools.yaml", multitool)
    assert_ok(r)
    tools = yaml.safe_load((ws / "tools.yaml").read_text())["tools"]
    assert tools["buildx"]["platforms"] == {
        host(): {"url": server.url("/dl/buildx-linux"), "sha256": hashlib.sha256(TOOL).hexdigest(),
                 "format": "raw", "path": "buildx"},
        "darwin/arm64": {"url": "https://example.com/buildx-darwin", "sha256": "ab" * 32,
                         "format": "raw", "path": "buildx"}}
    assert tools["node"]["platforms"][host()]["format"] == "tar+gzip"
    tools["buildx"]["platforms"].pop("darwin/arm64")
    (ws / "tools.yaml").write_text(yaml.safe_dump({"tools": tools}))
    lockfile = ws / "tools.lock.json"
    assert_ok(tf_main("lock", "--lockfile", lockfile))
    for tool, out in (("buildx", "imported"), ("node", "imported")):
        r = run_toolfetch("run", "--lockfile", lockfile, tool)
        assert_ok(r)
        assert r.stdout.splitlines() == [out]
    exe = Path(tf_main("which", "--lockfile", lockfile, "buildx").stdout.strip())
    assert exe.name == "buildx"


@pytest.mark.parametrize(("binary", "needle"), [
    ({"kind": "pkg", "url": "https://x/y.pkg", "file": "a", "sha256": "0" * 64, "os": "macos",
      "cpu": "arm64"}, "pkg"),
    ({"kind": "archive", "url": "https://x/y.deb", "file": "a", "sha256": "0" * 64,
      "os": "linux", "cpu": "x86_64", "type": ".deb"}, ".deb"),
    ({"kind": "file", "url": "https://x/y", "sha256": "0" * 64, "os": "plan9",
      "cpu": "x86_64"}, "plan9"),
])
def test_multitool_entries_toolfetch_cannot_carry_are_skipped_by_name(
        binary: dict[str, str], needle: str, tmp_path: Path) -> None:
    """A binary toolfetch cannot carry is skipped with a warning naming it; a file with
    nothing left to import is exit 2 and writes nothing."""
    multitool = tmp_path / "multitool.lock.json"
    multitool.write_text(json.dumps({"t": {"binaries": [binary]}}))
    config = tmp_path / "tools.yaml"
    r = tf_main("import-multitool", "--config", config, multitool)
    assert_error(r, 2, str(multitool), "nothing")
    assert "tool t" in r.stderr and needle in r.stderr and "skipped" in r.stderr
    assert not config.exists()


def test_import_to_stdout_writes_nothing(server: AssetServer, tmp_path: Path) -> None:
    node = tmp_path / "node"
    node.write_text(_dotslash(server, "cd" * 32, "blake3"))
    r = tf_main("import-dotslash", "--stdout", "--config", tmp_path / "tools.yaml", node)
    assert_ok(r)
    assert yaml.safe_load(r.stdout)["tools"]["node"]["platforms"][host()]["path"] \
        == "node-v1/bin/node"
    assert not (tmp_path / "tools.yaml").exists()
