"""The hit path cannot disagree with the full path: the real CLI, run once as a build runs it
(the hit path serves what it can) and once with ``-v`` (which only the full path takes),
prints the same stdout and exits the same."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from tf import assert_ok, probe_heavy_imports, run_toolfetch, tree_of

from toolfetch.core import host
from toolfetch.core.digest import Digest

HOST = host.host_key()
OTHER = "linux/s390x" if HOST != "linux/s390x" else "linux/amd64"
# command-line order differs from lockfile (sorted) order on purpose
TOOLS = {"zeta": [HOST, OTHER], "alpha": [HOST], "mid": ["*"], "beta": [OTHER, HOST]}


def _entry(tool: str, key: str) -> dict[str, object]:
    layer = Digest.of_bytes(f"{tool} {key}".encode())
    return {"ref": f"example.com/{tool}:1", "path": f"bin/{tool}",
            "manifest": str(Digest.of_bytes(f"manifest {tool} {key}".encode())),
            "layers": [{"digest": str(layer), "size": 5, "mediaType": "application/x-tar",
                        "unpack": "tar"}]}


@pytest.fixture
def lockfile(tmp_path: Path, cache_dir: Path) -> Path:
    """Every tool cached for every locked platform; the full `fetch` has run (the index says
    the lockfile passed its schema), so the hit path can serve."""
    path = tmp_path / "tools.lock.json"
    tools = {}
    for tool, keys in TOOLS.items():
        tools[tool] = {"platforms": {k: _entry(tool, k) for k in keys}}
        for k in keys:
            tree = tree_of(cache_dir, _entry(tool, k))
            exe = tree / "bin" / tool
            exe.parent.mkdir(parents=True)
            exe.write_text(f"#!/bin/sh\necho {tool}\n")
            exe.chmod(0o755)
            tree.with_name(tree.name + ".json").write_text("{}")
    path.write_text(json.dumps({"version": 1, "tools": tools}, indent=2) + "\n")
    assert_ok(run_toolfetch("-v", "fetch", "--all-platforms", "--lockfile", path))
    return path


def _both_ways(*argv: str) -> tuple[subprocess.CompletedProcess[str],
                                    subprocess.CompletedProcess[str]]:
    """(as a build runs it, forced onto the full path), both through `python -m toolfetch`."""
    return run_toolfetch(*argv), run_toolfetch("-v", *argv)


def _same(*argv: str) -> subprocess.CompletedProcess[str]:
    fast, full = _both_ways(*argv)
    assert (fast.returncode, fast.stdout) == (full.returncode, full.stdout), (
        f"hit path: exit {fast.returncode}\n{fast.stdout}{fast.stderr}\n"
        f"full path: exit {full.returncode}\n{full.stdout}{full.stderr}")
    return fast


@pytest.mark.parametrize("tools", [
    ["zeta", "alpha"], ["alpha", "zeta"], ["zeta", "alpha", "zeta"], ["mid", "beta", "mid"],
    ["beta", "zeta", "alpha", "mid"], [],
])
@pytest.mark.parametrize("extra", [[], ["--all-platforms"], ["--platform", HOST]])
def test_fetch_json_lists_tools_as_the_full_path_does(lockfile: Path, tools: list[str],
                                                      extra: list[str]) -> None:
    argv = ["fetch", "--json", "--lockfile", str(lockfile), *tools, *extra]
    fast = _same(*argv)
    assert fast.returncode == 0, fast.stderr
    listed = [e["tool"] for e in json.loads(fast.stdout)]
    assert listed == sorted(listed)  # lockfile order, each tool once per platform
    # and the hit path did serve it (nothing heavy imported)
    p, heavy = probe_heavy_imports(*argv)
    assert p.returncode == 0 and heavy == [], p.stderr


@pytest.mark.parametrize(("argv", "code"), [
    (["which", "--platform", "*", "mid"], 2),  # `*` is a lockfile key, not a platform
    (["which", "--platform", "*", "beta"], 2),
    (["which", "--json", "--platform", "*", "mid"], 2),
    (["which", "--platform=*", "mid"], 2),
    (["fetch", "--platform", "*", "mid"], 2),
    (["fetch", "--json", "--platform", "*"], 2),
    (["fetch", "--json", "--platform", "*", "beta", "mid"], 2),
    (["run", "--platform", "*", "mid"], 2),
    (["which", "--platform", "linux/_", "mid"], 2),
    (["which", "--platform", f"{HOST}/", "alpha"], 2),
    (["which", "--platform", HOST.upper(), "alpha"], 0),  # normalised by the full path
    (["fetch", "--json", "--platform", HOST.upper(), "alpha"], 0),
])
def test_a_platform_only_the_full_path_can_judge(lockfile: Path, argv: list[str],
                                                 code: int) -> None:
    r = _same(*argv[:1], "--lockfile", str(lockfile), *argv[1:])
    assert r.returncode == code, r.stderr
    if code:
        assert "error: " in r.stderr and r.stdout == ""


@pytest.mark.parametrize("argv", [
    ["which", "alpha"], ["which", "--json", "mid"], ["which", "--platform", HOST, "zeta"],
    ["which", "--platform", OTHER, "zeta"], ["fetch", "--platform", OTHER, "--json", "zeta"],
])
def test_what_the_hit_path_serves_matches_the_full_path(lockfile: Path,
                                                        argv: list[str]) -> None:
    full = [*argv[:1], "--lockfile", str(lockfile), *argv[1:]]
    r = _same(*full)
    assert r.returncode == 0 and r.stdout, r.stderr
    p, heavy = probe_heavy_imports(*full)
    assert p.returncode == 0 and heavy == [], p.stderr


@pytest.mark.parametrize("extra", [[], ["--json"], ["-q"], ["--platform", OTHER]])
def test_fetch_skips_a_tool_locked_for_other_platforms_as_the_full_path_does(
        lockfile: Path, cache_dir: Path, extra: list[str]) -> None:
    """Issue 23.3: `fetch` without tool names skips a tool with no entry for the platform,
    warning once (tool, platform, its platforms), and succeeds, served by the hit path too;
    named, it stays exit 4 on both paths."""
    data = json.loads(lockfile.read_text())
    elsewhere = "linux/riscv64" if HOST != "linux/riscv64" else "linux/amd64"
    data["tools"]["omega"] = {"platforms": {elsewhere: _entry("omega", elsewhere)}}
    tree = tree_of(cache_dir, _entry("omega", elsewhere))
    (tree / "bin").mkdir(parents=True)
    (tree / "bin" / "omega").write_text("#!/bin/sh\necho omega\n")
    (tree / "bin" / "omega").chmod(0o755)  # as the fixture's: sound without reading "{}"
    tree.with_name(tree.name + ".json").write_text("{}")
    lockfile.write_text(json.dumps(data, indent=2) + "\n")
    assert_ok(run_toolfetch("-v", "fetch", "--all-platforms", "--lockfile", lockfile))
    argv = ["fetch", "--lockfile", str(lockfile), *extra]
    fast, full = _both_ways(*argv)
    assert (fast.returncode, fast.stdout) == (full.returncode, full.stdout) == (
        0, full.stdout), (fast.stderr, full.stderr)
    platform = extra[-1] if "--platform" in extra else HOST
    warning = (f"warning: tool omega is not available for {platform} (locked for: "
               f"{elsewhere}); skipped (naming it makes this an error)\n")
    for r in (fast, full):
        assert r.stderr.count("omega") == (0 if "-q" in extra else 1), r.stderr
    if "-q" not in extra:
        assert warning in fast.stderr and warning in full.stderr
    if "--json" in extra:
        assert "omega" not in fast.stdout and "alpha" in fast.stdout
    p, heavy = probe_heavy_imports(*argv)
    assert p.returncode == 0 and heavy == [], p.stderr  # served by the hit path
    for named in (["fetch", "omega"], ["which", "omega"]):
        fast, full = _both_ways(named[0], "--lockfile", str(lockfile), *named[1:])
        assert fast.returncode == full.returncode == 4
        assert elsewhere in fast.stderr and "locked platforms" in fast.stderr
