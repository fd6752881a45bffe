"""The examples of docs/python-api.md's "Registry and cache methods" section run as written,
against a real registry.

They are fenced ```` ```py ```` (the section's own blocks; ``test_python_api_docs.py`` runs
the ```` ```python ```` ones), each in its own interpreter, in a project directory holding
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
SECTION = "## Registry and cache methods"
PLACEHOLDER = "registry.example.com/acme"


def examples() -> list[str]:
    text = DOC.read_text()
    section = text[text.index(SECTION):]
    section = section[:section.index("\n## ", len(SECTION))]
    return re.findall(r"^```py\n(.*?)^```$", section, re.S | re.M)


@pytest.fixture
def project(registry: Registry, unique_repo: str, tmp_path: Path) -> Path:
    art = ocitest.oras_artifact({"protoc": b"#!/bin/sh\necho 'libprotoc 25.1'\n"})
    ocitest.push_artifact(registry, f"{unique_repo}/protoc", "25.1", art)
    ocitest.push_artifact(registry, f"{unique_repo}/docs", "1.0", ocitest.oras_artifact(
        {"README.md": b"# docs\n", "schema.json": b"{}"}))
    root = tmp_path / "project"
    write_config(root / "lockfiles" / "tools.yaml", {"tools": {
        "protoc": {"ref": registry.ref(f"{unique_repo}/protoc", "25.1")}}})
    toolfetch.Client(root / "lockfiles" / "tools.lock.json").lock()
    return root


def run(code: str, cwd: Path, prefix: str) -> str:
    r = subprocess.run([sys.executable, "-c", code.replace(PLACEHOLDER, prefix)], cwd=cwd,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"{code}\n{r.stdout}\n{r.stderr}"
    return r.stdout


def test_the_section_has_its_examples() -> None:
    blocks = examples()
    assert len(blocks) == 3 and all("import toolfetch" in b for b in blocks)


def test_every_example_runs(registry: Registry, unique_repo: str, project: Path) -> None:
    prefix = f"{registry.host}/{unique_repo}"
    release, pull_twice, cache = examples()
    assert run(release, project, prefix) == "True\nTrue ['1.0']\napplication/spdx+json\n"
    assert (project / "mirror" / "index.json").is_file()
    assert run(pull_twice, project, prefix) == "2 0 2\n"
    assert (project / "site" / "README.md").read_bytes() == b"# docs\n"
    assert run(cache, project, prefix) == "1 [('protoc *',)]\n"
