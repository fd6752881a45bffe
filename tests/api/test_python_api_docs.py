"""docs/python-api.md's examples run as written, against a real registry.

Each ```python block (the registry and cache methods' three, then the seven of "Examples")
runs in its own interpreter, in a project directory holding
lockfiles/tools.yaml and its lockfile, with ``registry.example.com/acme`` replaced by a
repository prefix on the test registry.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import ocitest
import pytest
from ocitest import Registry
from tf import REPO, write_config

import toolfetch

DOC = REPO / "docs" / "python-api.md"
PLACEHOLDER = "registry.example.com/acme"


def examples() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", DOC.read_text(), re.S | re.M)


def push_protoc(reg: Registry, prefix: str, version: str) -> None:
    art = ocitest.oras_artifact({"protoc": f"#!/bin/sh\necho 'libprotoc {version}'\n".encode()})
    ocitest.push_artifact(reg, f"{prefix}/protoc", "25.1", art)


@pytest.fixture
def project(registry: Registry, unique_repo: str, tmp_path: Path) -> Path:
    push_protoc(registry, unique_repo, "25.1")
    ocitest.push_artifact(registry, f"{unique_repo}/docs", "1.0", ocitest.oras_artifact(
        {"README.md": b"# docs\n", "schema.json": b"{}"}))
    root = tmp_path / "project"
    write_config(root / "lockfiles" / "tools.yaml", {"tools": {
        "protoc": {"ref": registry.ref(f"{unique_repo}/protoc", "25.1")}}})
    toolfetch.Client(root / "lockfiles" / "tools.lock.json").lock()
    return root


def run(code: str, cwd: Path, prefix: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code.replace(PLACEHOLDER, prefix)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_the_docs_have_the_promised_examples() -> None:
    text = DOC.read_text()
    blocks = examples()
    assert len(blocks) == 10
    assert all("import toolfetch" in b for b in blocks)
    for heading in ("a tool's path", "Pull an artifact", "List tags"):
        assert heading in text


def test_every_example_runs(registry: Registry, unique_repo: str, project: Path) -> None:
    prefix = f"{registry.host}/{unique_repo}"
    release, pull_twice, cache_by_tool, which, ci, relock, shim, pull, tags, cache = examples()
    r = run(release, project, prefix)
    assert r.returncode == 0 and r.stdout == "True\nTrue ['1.0']\napplication/spdx+json\n", r
    assert (project / "mirror" / "index.json").is_file()
    r = run(pull_twice, project, prefix)
    assert r.returncode == 0 and r.stdout == "2 0 2\n", r
    assert (project / "site" / "README.md").read_bytes() == b"# docs\n"
    r = run(cache_by_tool, project, prefix)
    assert r.returncode == 0 and r.stdout == "1 [('protoc *',)]\n", r
    outputs = []
    for code in (which, ci, relock, shim, pull, tags, cache):
        r = run(code, project, prefix)
        assert r.returncode == 0, f"{code}\n{r.stdout}\n{r.stderr}"
        outputs.append(r.stdout)
    assert outputs[0].strip() == "libprotoc 25.1"
    assert re.fullmatch(r"protoc: /\S+/protoc\n", outputs[1])
    assert outputs[2] == "1 tools locked\n"  # nothing moved
    assert outputs[3] == "* protoc\nprotoc cached here: *\n"
    assert (project / "third_party" / "protoc" / "protoc").read_bytes().endswith(
        b"echo 'libprotoc 25.1'\n")
    assert (project / "out" / "README.md").read_bytes() == b"# docs\n"
    assert "pulled" in outputs[4] and "schema.json" in outputs[4]
    assert outputs[5].splitlines()[0] == "['25.1']"
    assert outputs[5].splitlines()[1].startswith("tool sha256:")
    assert outputs[6] == "0 repaired; 0 bytes freed\n"

    push_protoc(registry, unique_repo, "25.1.1")  # the tag moves: the CI step fails with 7
    r = run(ci, project, prefix)
    assert r.returncode == 7 and r.stderr.startswith("error: ") and "out of date" in r.stderr
    r = run(relock, project, prefix)
    assert r.returncode == 0 and r.stdout.startswith("protoc: changed sha256:")
    assert "libprotoc 25.1.1" in run(which, project, prefix).stdout
