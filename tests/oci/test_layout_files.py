"""Issue 24.15 (layouts): an OCI layout is read as regular files only, with size caps.

``index.json``, ``oci-layout`` or a blob that is a FIFO blocked ``import``, ``lock`` and
``fetch`` for ever; one that links to ``/dev/zero`` read until memory ran out. Each case runs
toolfetch in a subprocess with a timeout (a hang fails the test instead of holding the run),
one line per (file, what it is, command).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from tf import run_toolfetch, write_config

PAYLOAD = b"#!/bin/sh\necho layout\n"
CONFIG = b"{}"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _manifest() -> bytes:
    return json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": _digest(CONFIG),
                   "size": len(CONFIG)},
        "layers": [{"mediaType": "application/octet-stream", "digest": _digest(PAYLOAD),
                    "size": len(PAYLOAD),
                    "annotations": {"org.opencontainers.image.title": "tool"}}],
    }).encode()


def make_layout(root: Path) -> None:
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    manifest = _manifest()
    for data in (PAYLOAD, CONFIG, manifest):
        (blobs / _digest(data)[7:]).write_bytes(data)
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": _digest(manifest),
        "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": "1"}}]}))


FILES = {"index.json": "index.json", "oci-layout": "oci-layout",
         "manifest": f"blobs/sha256/{_digest(_manifest())[7:]}",
         "layer": f"blobs/sha256/{_digest(PAYLOAD)[7:]}"}
CASES = [  # (file, replaced by, command, exit code)
    ("index.json", "fifo", "import", 2),
    ("index.json", "fifo", "lock", 2),
    ("index.json", "dev-zero", "import", 2),
    ("index.json", "dev-zero", "lock", 2),
    ("index.json", "huge", "lock", 2),
    ("oci-layout", "fifo", "import", 2),
    ("oci-layout", "dev-zero", "import", 2),
    ("manifest", "fifo", "import", 3),
    ("manifest", "fifo", "lock", 3),
    ("manifest", "dev-zero", "lock", 3),
    ("layer", "fifo", "fetch", 3),
    ("layer", "dev-zero", "fetch", 3),
    ("layer", "fifo", "import", 3),
]


@pytest.mark.parametrize(("name", "kind", "command", "exit_code"), CASES,
                         ids=["-".join(map(str, c)) for c in CASES])
def test_a_layout_file_that_is_no_regular_file_is_refused(
        name: str, kind: str, command: str, exit_code: int, tmp_path: Path) -> None:
    layout = tmp_path / "src"
    make_layout(layout)
    config = write_config(tmp_path / "tools.yaml", {"tools": {"t": {
        "ref": "oci-layout:src:1", "path": "tool"}}})
    lockfile = tmp_path / "tools.lock.json"
    if command == "fetch":  # locked while the layout was sound
        locked = run_toolfetch("lock", "--config", config, "--lockfile", lockfile)
        assert locked.returncode == 0, locked.stderr
    target = layout / FILES[name]
    target.unlink()
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "dev-zero":
        target.symlink_to("/dev/zero")
    else:
        target.write_bytes(b" " * (17 << 20))  # past the 16 MiB cap of index.json
    argv = {"import": ["import", layout],
            "lock": ["lock", "--config", config, "--lockfile", lockfile],
            "fetch": ["fetch", "--lockfile", lockfile]}[command]
    r = run_toolfetch(*argv, timeout=60)
    assert r.returncode == exit_code, r.stderr
    assert FILES[name].rpartition("/")[2] in r.stderr, r.stderr
