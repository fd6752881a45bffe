"""Issue 24 #6, #15, #16: hostile or malformed tools.yaml and lockfile values end in exit 2
naming the file and what is wrong (never exit 1, never a traceback, never a silent drop), and
cost little. One table per file; a new case is one line."""

from __future__ import annotations

import builtins
import json
import time
from pathlib import Path
from typing import Any

import pytest
from tf import assert_error, tf_main

GOOD_ASSET = "{url: 'https://example.com/t', sha256: " + "'" + "a" * 64 + "'}"
BILLION_LAUGHS = "a: &a ['x','x','x','x','x','x','x','x','x']\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
    f"*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
    f"*{chr(97 + i)}]\n" for i in range(8)) + "tools: {t: {ref: example.com/t:1}}\n"

TOOLS_YAML: list[tuple[str, bytes, tuple[str, ...]]] = [
    ("second tools block", b"tools:\n  a: {ref: example.com/a:1}\ntools:\n  b: {ref: "
     b"example.com/b:1}\n", ("duplicate key 'tools'", "first on line 1", "line 3")),
    ("tool twice", b"tools:\n  a: {ref: example.com/a:1}\n  a: {ref: example.com/b:1}\n",
     ("duplicate key 'a'",)),
    ("platform twice", b"tools:\n  a:\n    platforms:\n      linux/amd64: " +
     GOOD_ASSET.encode() + b"\n      linux/amd64: " + GOOD_ASSET.encode() + b"\n",
     ("duplicate key 'linux/amd64'",)),
    ("alias bomb", BILLION_LAUGHS.encode(), ("anchors",)),
    ("alias", b"x: &x {ref: example.com/a:1}\ntools: {a: *x}\n", ("anchors",)),
    ("deep nesting", b"tools: " + b"[" * 5000 + b"]" * 5000 + b"\n", ("nested",)),
    ("not UTF-8", b"tools:\n  a: {ref: example.com/\xff:1}\n", ("not UTF-8",)),
    ("huge integer", b"tools:\n  a: {ref: example.com/a:1, version: " + b"9" * 5000 + b"}\n",
     ("too large",)),
    ("port out of range", b"tools:\n  a:\n    platforms:\n      linux/amd64: {url: "
     b"'http://example.com:99999/t', path: t}\n", ("$.tools.a.platforms.linux/amd64.url",
                                                    "port")),
    ("unclosed IPv6 host", b"tools:\n  a:\n    platforms:\n      linux/amd64: {url: "
     b"'http://[::1/t', path: t}\n", ("not a valid URL",)),
    ("host label too long", b"tools:\n  a:\n    platforms:\n      linux/amd64: {url: "
     b"'https://" + b"x" * 64 + b".example/t', path: t}\n", ("too long",)),
    ("url is a list", b"tools:\n  a:\n    platforms:\n      linux/amd64: {url: "
     b"['https://x.example/t'], path: t}\n", ("$.tools.a.platforms.linux/amd64",)),
    ("unknown format", b"tools:\n  a:\n    platforms:\n      linux/amd64: {url: "
     b"'https://x.example/t.rar', format: rar, path: t}\n", ("format",)),
    ("short blake3", b"tools:\n  a:\n    platforms:\n      linux/amd64: {url: "
     b"'https://x.example/t', blake3: abc, path: t}\n", ("blake3",)),
    ("unknown arg0", b"tools:\n  a: {ref: example.com/a:1, arg0: argv}\n", ("arg0",)),
]


@pytest.mark.parametrize(("case", "text", "needles"), TOOLS_YAML, ids=[c[0] for c in TOOLS_YAML])
def test_tools_yaml_is_refused_with_exit_2(tmp_path: Path, case: str, text: bytes,
                                           needles: tuple[str, ...]) -> None:
    config = tmp_path / "tools.yaml"
    config.write_bytes(text)
    lockfile = tmp_path / "tools.lock.json"
    start = time.monotonic()
    r = tf_main("lock", "--lockfile", lockfile)
    assert time.monotonic() - start < 10, case  # the alias bomb took 9 s and 750 MB
    assert_error(r, 2, str(config), *needles)
    assert len(r.stderr) < 2000  # no 52 MB error line
    assert not lockfile.exists()


def _lockfile(entry: dict[str, Any], **tool: Any) -> dict[str, Any]:
    platform = {"layers": [{"digest": "sha256:" + "0" * 64, "mediaType": "application/x",
                            "size": 1, "unpack": "raw", "title": "t"}],
                "manifest": "sha256:" + "1" * 64, "path": "t", "ref": "example.com/t:1"}
    platform.update(entry)
    return {"version": 1, "tools": {"t": {"platforms": {"*": platform}, **tool}}}


LOCKFILES: list[tuple[str, bytes, tuple[str, ...]]] = [
    ("deep nesting", b'{"version": 1, "tools": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
     ("not valid JSON",)),
    ("not UTF-8", b'{"version": 1, "tools": {"\xff": {}}}', ("not valid JSON",)),
    ("huge integer", json.dumps(_lockfile({})).replace('"size": 1', '"size": ' + "9" * 5000)
     .encode(), ("not valid JSON",)),
    ("path is .", json.dumps(_lockfile({"path": "."})).encode(), ("$.tools.t.platforms.*.path",
                                                                   "names no file")),
    ("path with NUL", json.dumps(_lockfile({"path": "bin/\x00t"})).encode(), ("NUL",)),
    ("path is a list", json.dumps(_lockfile({"path": ["t"]})).encode(), (".path",)),
    ("title is an int", json.dumps(_lockfile({"layers": [{
        "digest": "sha256:" + "0" * 64, "mediaType": "x", "size": 1, "unpack": "raw",
        "title": 5}]})).encode(), (".layers[0].title",)),
    ("unknown arg0", json.dumps(_lockfile({}, arg0="argv")).encode(), ("arg0",)),
]


@pytest.mark.parametrize(("case", "text", "needles"), LOCKFILES, ids=[c[0] for c in LOCKFILES])
@pytest.mark.parametrize("command", ["which", "fetch"])
def test_lockfile_values_are_refused_with_exit_2(tmp_path: Path, case: str, text: bytes,
                                                 needles: tuple[str, ...], command: str) -> None:
    lockfile = tmp_path / "tools.lock.json"
    lockfile.write_bytes(text)
    r = tf_main(command, "--lockfile", lockfile, "--cache-dir", tmp_path / "cache", "t")
    assert_error(r, 2, str(lockfile), *needles)


def test_an_unreadable_lockfile_is_exit_8(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    """Permission denied is the local file system (exit 8), not bad input (exit 2)."""
    lockfile = tmp_path / "tools.lock.json"
    lockfile.write_text(json.dumps(_lockfile({})))
    real_open = builtins.open

    def denying(file: Any, *args: Any, **kwargs: Any) -> Any:
        if str(file) == str(lockfile):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", denying)
    r = tf_main("which", "--lockfile", lockfile, "--cache-dir", tmp_path / "cache", "t")
    assert_error(r, 8, str(lockfile), "permission denied")


def test_a_deeply_nested_image_config_is_exit_3(registry: Any, unique_repo: str,
                                                tmp_path: Path) -> None:
    """An image whose config is JSON nested past the parser's depth: exit 3 naming the
    config, not an internal error (RecursionError)."""
    import ocitest

    config = ocitest.push_blob(registry, unique_repo, b"[" * 100_000 + b"]" * 100_000,
                               ocitest.OCI_CONFIG)
    layer = ocitest.push_blob(registry, unique_repo, b"#!/bin/sh\n", "application/x-tool",
                              {"org.opencontainers.image.title": "t"})
    ocitest.push_manifest(registry, unique_repo, "1", {
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config, "layers": [layer]})
    config_path = tmp_path / "tools.yaml"
    config_path.write_text(f"tools:\n  t: {{ref: '{registry.ref(unique_repo, '1')}'}}\n")
    r = tf_main("lock", "--lockfile", tmp_path / "tools.lock.json")
    assert_error(r, 3, "image config", config["digest"])
