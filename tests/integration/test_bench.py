"""tools/bench runs (a small smoke configuration) and its structural findings hold.

No timing is asserted (timings belong to the benchmark, not to CI); what is asserted does not
depend on the machine: one pass over the bytes, the raw tree file hardlinked to its blob, a
cold fetch of a locked single-layer tool in at most three registry requests, a lock that
makes one request per manifest and sniffed layer, and a table with every measurement.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tf import REPO

ROOT = REPO
TOOLS = 4


@pytest.mark.usefixtures("need_registry")
def test_bench_smoke_run(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    out = tmp_path / "bench.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOOLFETCH_")}
    p = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "bench"), "--quick", "--runs", "1",
         "--big-mib", "16", "--small-mib", "8", "--tools", str(TOOLS), "--json", str(out)],
        capture_output=True, text=True, timeout=300, env=env)
    assert p.returncode == 0, p.stderr
    rows = [line for line in p.stdout.splitlines() if line.startswith("| ")][1:]
    assert len(rows) >= 12, p.stdout
    assert all(line.rstrip().endswith(("| yes |", "| **no** |")) for line in rows), p.stdout
    results = json.loads(out.read_text())["results"]
    one_pass = results["one_pass"]
    assert one_pass["hardlinked"] is True
    assert one_pass["read_per_byte"] < 0.05  # nothing read back after writing
    assert 0.95 < one_pass["written_per_byte"] < 1.05  # every byte written once
    requests = results["requests"]
    assert requests["http"] + requests["tls_probes"] <= 3, requests
    assert [line.split()[0] for line in requests["lines"]] == ["GET"]  # just the blob
    # one index + one manifest and one sniffed blob head per platform, nothing else
    assert results["lock_requests"] == TOOLS * (1 + 5 * 2)
