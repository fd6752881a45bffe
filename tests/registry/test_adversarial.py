"""Issue 24.16 (network and registry inputs): hostile or malformed input is exit 2 or 3 naming
what is at fault, never exit 1 (an internal error) or exit 8 (the local file system).

Tables, one line per case, so a new case is one line:

* ``ANSWERS``: what a canned registry answers for a manifest (deeply nested JSON, wrong
  types), against every command that reads manifests (``lock``, ``inspect``, ``pull``,
  ``copy``);
* ``ENV_VALUES``: values of the network knobs (``inf``, ``nan``, 400 digits);
* ``INPUTS``: references, mirrors and layouts a command is given.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from canned import Canned, Reply
from tf import tf_main, write_config

DEEP = 100_000  # far past the JSON parser's recursion limit
NESTED = b'{"schemaVersion": 2, "x": ' + b"[" * DEEP + b"]" * DEEP + b"}"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
LONG_LABEL = "a" * 64

ANSWERS = [  # (name, manifest body served for tag "1"; each command must exit 3)
    ("nested-json", NESTED),
    ("nested-json-in-manifests", b'{"schemaVersion": 2, "manifests": ' + b"[" * DEEP
     + b"]" * DEEP + b"}"),
    ("media-type-a-list", json.dumps({"schemaVersion": 2, "mediaType": [OCI_MANIFEST],
                                      "layers": []}).encode()),
    ("manifests-not-a-list", json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                         "manifests": "x"}).encode()),
    ("layer-not-an-object", json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                        "layers": [7]}).encode()),
    ("size-5000-digits", b'{"schemaVersion": 2, "mediaType": "' + OCI_MANIFEST.encode()
     + b'", "layers": [{"mediaType": "a", "digest": "sha256:' + b"0" * 64
     + b'", "size": ' + b"9" * 5000 + b"}]}"),
    ("not-json", b"<html>proxy error</html>"),
]
COMMANDS = ["lock", "inspect", "pull", "copy"]

ENV_VALUES = [  # (variable, value); each is exit 2 naming the variable
    ("TOOLFETCH_RETRIES", "inf"),
    ("TOOLFETCH_RETRIES", "nan"),
    ("TOOLFETCH_RETRIES", "1e999"),
    ("TOOLFETCH_RETRIES", "9" * 400),
    ("TOOLFETCH_RETRIES", "0"),
    ("TOOLFETCH_TIMEOUT", "inf"),
    ("TOOLFETCH_TIMEOUT", "1e300"),
    ("TOOLFETCH_TIMEOUT", "-1"),
    ("TOOLFETCH_CONNECT_TIMEOUT", "inf"),
    ("TOOLFETCH_RETRY_DELAY", "inf"),
    ("TOOLFETCH_RETRY_DELAY", "1e300"),
    ("TOOLFETCH_RETRY_AFTER_MAX", "nan"),
    ("TOOLFETCH_MIN_RATE", "9" * 400),
    ("TOOLFETCH_MIN_RATE", "inf"),
    ("TOOLFETCH_MIRRORS", "docker.io=127.0.0.1:99999"),  # docker.io: the canned registry
    ("TOOLFETCH_MIRRORS", f"docker.io={LONG_LABEL}.example"),
]

INPUTS = [  # (name, argv; {h} is a canned registry, {tmp} the test's directory, exit code)
    ("ref-port-99999", ["inspect", "127.0.0.1:99999/acme/t:1"], 2),
    ("ref-port-0", ["inspect", "127.0.0.1:0/acme/t:1"], 2),
    ("ref-long-label", ["inspect", f"{LONG_LABEL}.example/acme/t:1"], 2),
    ("ref-open-ipv6", ["inspect", "[::1/acme/t:1"], 2),
    ("ref-bad-ipv6", ["inspect", "[::g]:5000/acme/t:1"], 2),
    ("copy-dest-port-99999", ["copy", "{h}/acme/t:1", "127.0.0.1:99999/acme/t:1"], 2),
    ("tags-port-99999", ["tags", "127.0.0.1:99999/acme/t"], 2),
    ("login-long-label", ["login", f"{LONG_LABEL}.example", "-u", "u", "-p", "p"], 2),
    ("layout-nested-index", ["import", "{tmp}/nested-layout"], 2),
    ("layout-nested-index-lock", ["lock", "--config", "{tmp}/nested.yaml",
                                  "--lockfile", "{tmp}/nested.lock.json"], 2),
    ("layout-nested-marker", ["import", "{tmp}/nested-marker"], 2),
]


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLFETCH_RETRY_DELAY", "0.01")


@pytest.fixture
def registry() -> Iterator[Canned]:
    with Canned() as canned:
        yield canned


def _argv(command: str, host: str, tmp_path: Path) -> list[str]:
    ref = f"{host}/acme/t:1"
    if command == "lock":
        config = write_config(tmp_path / "tools.yaml",
                              {"tools": {"t": {"ref": ref, "path": "t"}}})
        return ["lock", "--config", str(config), "--lockfile", str(tmp_path / "lock.json")]
    if command == "pull":
        return ["pull", ref, "-o", str(tmp_path / "out")]
    if command == "copy":
        return ["copy", ref, f"oci-layout:{tmp_path / 'copy'}:1"]
    return ["inspect", ref]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(("name", "body"), ANSWERS, ids=[a[0] for a in ANSWERS])
def test_a_hostile_manifest_is_exit_3(name: str, body: bytes, command: str,
                                      registry: Canned, tmp_path: Path) -> None:
    registry.routes["/v2/acme/t/manifests/1"] = Reply(200, body, {"Content-Type": OCI_MANIFEST})
    r = tf_main(*_argv(command, registry.host, tmp_path))
    assert r.returncode == 3, r.text
    assert f"{registry.host}/acme/t" in r.stderr, r.stderr


@pytest.mark.parametrize(("variable", "value"), ENV_VALUES,
                         ids=[f"{v}={x[:12]}" for v, x in ENV_VALUES])
def test_a_malformed_network_setting_is_exit_2_naming_it(
        variable: str, value: str, registry: Canned, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(variable, value.replace("docker.io", registry.host))
    r = tf_main(*_argv("lock", registry.host, tmp_path))  # mirrors, retries, the pace
    assert r.returncode == 2, r.text
    assert variable in r.stderr and len(r.stderr) < 1000, r.stderr


def _nested_layouts(tmp: Path) -> None:
    for name, bad in (("nested-layout", "index.json"), ("nested-marker", "oci-layout")):
        root = tmp / name
        (root / "blobs" / "sha256").mkdir(parents=True)
        (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        (root / "index.json").write_text('{"schemaVersion": 2, "manifests": []}')
        (root / bad).write_bytes(NESTED)
    write_config(tmp / "nested.yaml", {"tools": {"t": {"ref": "oci-layout:nested-layout:1",
                                                       "path": "t"}}})


@pytest.mark.parametrize(("name", "argv", "exit_code"), INPUTS, ids=[i[0] for i in INPUTS])
def test_a_malformed_input_is_refused_with_its_exit_code(
        name: str, argv: list[str], exit_code: int, registry: Canned, tmp_path: Path) -> None:
    _nested_layouts(tmp_path)
    args = [a.replace("{h}", registry.host).replace("{tmp}", str(tmp_path)) for a in argv]
    r = tf_main(*args)
    assert r.returncode == exit_code, r.text
    assert "internal error" not in r.stderr and len(r.stderr) < 2000, r.stderr
    assert os.environ.get("TOOLFETCH_CACHE_DIR")  # hermetic: nothing outside the test
