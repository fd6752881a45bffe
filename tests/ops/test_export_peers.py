"""Issue 24.9: what skopeo and umoci can open in an ``export`` bundle, tested with both.

Every root's ``org.opencontainers.image.ref.name`` follows the image-layout grammar (an
``oci-layout:../x:1`` reference became a name with ``..`` that skopeo rejects), so every
OCI-typed root opens in both peers by its name. Docker-typed roots stay byte-exact (the
lockfile pins their digests); skopeo's ``oci:`` transport and umoci open OCI media types only,
so ``export`` says so, and this test pins that fact about the peers (docs/fleets.md).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import ocitest
import pytest
from tf import assert_ok, host, script, tf_main, write_config

REF_NAME = re.compile(r"[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*"
                      r"(?:/[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*)*")

pytestmark = pytest.mark.skipif(not (shutil.which("skopeo") and shutil.which("umoci")),
                                reason="skopeo and umoci are needed")


def _names(bundle: Path) -> dict[str, str]:
    index = json.loads((bundle / "index.json").read_text())
    return {m["annotations"]["org.opencontainers.image.ref.name"]: m["mediaType"]
            for m in index["manifests"]}


def test_skopeo_and_umoci_open_every_oci_root_by_its_name(
        registry: ocitest.Registry, unique_repo: str, tmp_path: Path) -> None:
    # an OCI image (both peers unpack it), a Docker image, and a tool from a relative layout
    layer = ocitest.targz({"bin/t": (script("t"), 0o755)})
    oci_ref = registry.ref(f"{unique_repo}/oci", "1")
    docker_ref = registry.ref(f"{unique_repo}/docker", "1")
    ocitest.push_artifact(registry, f"{unique_repo}/oci", "1",
                          ocitest.image_artifact(host(), [layer]))
    ocitest.push_artifact(registry, f"{unique_repo}/docker", "1",
                          ocitest.image_artifact(host(), [layer], docker=True))
    exe = tmp_path / "x-tool"
    exe.write_bytes(script("x"))
    assert_ok(tf_main("push", f"oci-layout:{tmp_path / 'x'}:1", exe))
    ws = tmp_path / "ws"
    write_config(ws / "tools.yaml", {"tools": {
        "oci": {"ref": oci_ref, "path": "bin/t"},
        "docker": {"ref": docker_ref, "path": "bin/t"},
        "x": {"ref": "oci-layout:../x:1", "path": "x-tool"}}})
    assert_ok(tf_main("lock", "--lockfile", ws / "tools.lock.json"))
    bundle = tmp_path / "bundle"

    r = tf_main("export", "--lockfile", ws / "tools.lock.json", bundle)
    assert_ok(r)

    names = _names(bundle)
    assert sorted(names) == sorted([oci_ref, docker_ref, "oci-layout/x:1"])
    assert all(REF_NAME.fullmatch(n) for n in names), names
    assert f"{docker_ref} is Docker-typed" in r.stderr and "umoci" in r.stderr
    listed = subprocess.run(["umoci", "ls", "--layout", str(bundle)], capture_output=True,
                            text=True, check=True).stdout.split()
    assert sorted(listed) == sorted(names)
    for name in (oci_ref, "oci-layout/x:1"):  # skopeo reads both OCI-typed roots by name
        raw = ocitest.skopeo("inspect", "--raw", f"oci:{bundle}:{name}").stdout
        assert b'"application/vnd.oci.image.manifest.v1+json"' in raw
    rootfs = tmp_path / "unpacked"
    subprocess.run(["umoci", "raw", "unpack", "--image", f"{bundle}:{oci_ref}", str(rootfs)],
                   capture_output=True, check=True)
    assert (rootfs / "bin" / "t").read_bytes() == script("t")
    # The Docker-typed root: invisible to skopeo's oci: transport, refused by umoci.
    docker = ocitest.skopeo("inspect", "--raw", f"oci:{bundle}:{docker_ref}", check=False)
    assert docker.returncode != 0 and b"no descriptor found" in docker.stderr
    refused = subprocess.run(["umoci", "raw", "unpack", "--image", f"{bundle}:{docker_ref}",
                              str(tmp_path / "docker-rootfs")], capture_output=True, text=True)
    assert refused.returncode != 0 and "not implemented" in refused.stderr
    # toolfetch itself reads every root of the bundle
    assert_ok(tf_main("import", bundle))
