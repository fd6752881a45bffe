"""Tests for toolfetch.oci.layout's temp files: names that say which writer made them, and
which of them a writer removes (through ``export``: tests/ops/test_export_layout_reuse.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from toolfetch.oci import layout as oci_layout


def _dead_pid() -> int:
    p = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                       capture_output=True, text=True, check=True)
    return int(p.stdout)


def test_temp_names_say_which_writer_made_them(tmp_path: Path) -> None:
    dest = tmp_path / "blobs" / "sha256" / ("ab" * 32)
    temp = oci_layout.temp_path(dest)
    assert temp.parent == dest.parent and temp.name.startswith(f".{dest.name}.")
    owner = oci_layout.temp_owner(temp.name)
    assert owner is not None and owner[1] == os.getpid()
    assert oci_layout.temp_path(dest) != temp  # unique per call
    for name in (dest.name, f".{dest.name}.abcdefgh", ".x.part", f".{dest.name}.a-b-c.part"):
        assert oci_layout.temp_owner(name) is None
    # another machine's temp (a layout on a share) is never judged by this host's pids
    host = owner[0]
    other = "0" * 8 if host != "0" * 8 else "1" * 8
    foreign = dest.parent / temp.name.replace(host, other).replace(
        f"-{os.getpid()}-", f"-{_dead_pid()}-")
    foreign.write_bytes(b"x")
    # this host's dead writer, beside index.json: removed
    index_temp = oci_layout.temp_path(tmp_path / "index.json")
    dead = index_temp.with_name(index_temp.name.replace(f"-{os.getpid()}-", f"-{_dead_pid()}-"))
    dead.write_bytes(b"{")
    assert oci_layout.LayoutSource(tmp_path).remove_stale_temps() == []  # fresh: kept a while
    past = time.time() - oci_layout.WRITER_GRACE - 60
    os.utime(dead, (past, past))
    assert oci_layout.LayoutSource(tmp_path).remove_stale_temps() == [dead]
    assert foreign.exists() and not dead.exists()
