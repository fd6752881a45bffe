"""Unit tests of tools.yaml (toolfetch.lock.config) and tools.lock.json (toolfetch.lock.lockfile):
schemas, errors naming the file and the JSON path, deterministic output, the hit path's
hand checks (``Lockfile.load_fast``) and platform matching of locked tools."""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from toolfetch.core.digest import Digest
from toolfetch.core.errors import NotFoundError, ToolfetchError, UsageError
from toolfetch.core.platform import Platform
from toolfetch.lock.config import Config, PlatformSpec
from toolfetch.lock.lockfile import Lockfile, validating
from toolfetch.lock.schema import load_schema

P = Platform.parse


def d(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


# --------------------------------------------------------------------------------------
# tools.yaml
# --------------------------------------------------------------------------------------

GOOD_YAML = """\
platforms: [linux/amd64, linux/arm64, darwin/arm64]
mirrors:
  ghcr.io: [registry.internal:5000/ghcr, "oci-layout:layout"]
tools:
  protoc:
    ref: ghcr.io/acme/tools/protoc:25.1
    path: bin/protoc
    version: "25.1"
  buf:
    ref: ghcr.io/acme/tools/buf:1.28
    path: buf
    platforms: [linux/amd64, darwin/arm64]
  shellcheck:
    path: shellcheck
    platforms:
      linux/amd64: {ref: ghcr.io/acme/tools/shellcheck:0.10-linux-amd64}
      darwin/arm64: {ref: "oci-layout:layout:sc", path: bin/shellcheck}
"""


def test_config_load_all_three_forms(tmp_path: Path) -> None:
    path = tmp_path / "tools.yaml"
    path.write_text(GOOD_YAML)
    cfg = Config.load(path)
    assert cfg.path == path
    assert cfg.platforms == (P("linux/amd64"), P("linux/arm64"), P("darwin/arm64"))
    assert cfg.mirrors == {"ghcr.io": ("registry.internal:5000/ghcr", "oci-layout:layout")}
    assert list(cfg.tools) == ["protoc", "buf", "shellcheck"]
    protoc = cfg.tools["protoc"]
    assert (protoc.ref, protoc.path, protoc.version) == (
        "ghcr.io/acme/tools/protoc:25.1", "bin/protoc", "25.1")
    assert protoc.platform_list is None and protoc.per_platform is None
    assert protoc.to_lock_fields() == {"ref": "ghcr.io/acme/tools/protoc:25.1",
                                       "path": "bin/protoc", "version": "25.1"}
    assert cfg.tools["buf"].platform_list == (P("linux/amd64"), P("darwin/arm64"))
    sc = cfg.tools["shellcheck"]
    assert sc.ref is None and sc.platform_list is None
    assert sc.per_platform == {
        # the tool-level path is the default of each platform's path
        P("linux/amd64"): PlatformSpec("ghcr.io/acme/tools/shellcheck:0.10-linux-amd64",
                                       "shellcheck"),
        P("darwin/arm64"): PlatformSpec("oci-layout:layout:sc", "bin/shellcheck"),
    }
    assert sc.to_lock_fields() == {"path": "shellcheck"}


TOOL = {"ref": "ghcr.io/a/b:1", "path": "b"}


@pytest.mark.parametrize(
    ("data", "where", "needle"),
    [
        ({}, "$", "'tools' is a required property"),
        ({"tools": {}}, "$.tools", "non-empty"),
        ({"tools": {"p": TOOL}, "extra": 1}, "$", "'extra' was unexpected"),
        ({"tools": {"-p": TOOL}}, "$.tools", "'-p'"),
        ({"tools": {"p": {"ref": 5, "path": "x"}}}, "$.tools.p.ref", "not of type 'string'"),
        ({"tools": {"p": {**TOOL, "pth": "x"}}}, "$.tools.p", "'pth' was unexpected"),
        ({"tools": {"p": {"path": "x"}}}, "$.tools.p", "'ref' is a required property"),
        ({"tools": {"p": {**TOOL, "path": "/abs"}}}, "$.tools.p.path", "'/abs'"),
        ({"tools": {"p": {**TOOL, "path": "a/../../x"}}}, "$.tools.p.path", "'a/../../x'"),
        ({"tools": {"p": {**TOOL, "platforms": ["linux"]}}}, "$.tools.p.platforms[0]",
         "'linux'"),
        ({"platforms": "linux/amd64", "tools": {"p": TOOL}}, "$.platforms",
         "not of type 'array'"),
        ({"platforms": ["linux/amd64", "linux/amd64"], "tools": {"p": TOOL}}, "$.platforms",
         "non-unique"),
        ({"mirrors": {"ghcr.io": "x"}, "tools": {"p": TOOL}}, "$.mirrors.ghcr.io",
         "not of type 'array'"),
        ({"mirrors": {"ghcr.io": ["m.local", "http://m2.local"]}, "tools": {"p": TOOL}},
         "$.mirrors.ghcr.io[1]", "malformed mirror 'http://m2.local'"),
        ({"mirrors": {"ghcr.io": ["oci-layout:"]}, "tools": {"p": TOOL}},
         "$.mirrors.ghcr.io[0]", "missing directory"),
        ({"tools": {"p": {"platforms": {"linux/amd64": {"rf": "x/y:1"}}}}},
         "$.tools.p.platforms.linux/amd64", "'rf' was unexpected"),
        ({"tools": {"p": {"platforms": {"linux/amd64": {"ref": "x/y:1", "path": "/a"}}}}},
         "$.tools.p.platforms.linux/amd64.path", "'/a'"),
        # checks beyond the schema still name the field
        ({"tools": {"p": {"ref": "ghcr.io/A/b:1"}}}, "$.tools.p.ref", "malformed reference"),
        ({"tools": {"p": {"ref": "ghcr.io/a/b@sha256:12"}}}, "$.tools.p.ref", "malformed"),
        ({"tools": {"p": {"platforms": {"linux/amd64": {"ref": "x/Y:1"}}}}},
         "$.tools.p.platforms.linux/amd64.ref", "malformed reference"),
        ({"tools": {"p": {**TOOL, "platforms": {"linux/amd64": {"ref": "x/y:1"}}}}},
         "$.tools.p", "not both"),
    ],
)
def test_config_errors_name_file_and_json_path(
    tmp_path: Path, data: dict[str, Any], where: str, needle: str
) -> None:
    path = tmp_path / "tools.yaml"
    path.write_text(json.dumps(data))
    with pytest.raises(UsageError) as exc:
        Config.load(path)
    msg = str(exc.value)
    assert exc.value.exit_code == 2
    assert msg.startswith(f"{path}: {where}: "), msg
    assert needle in msg


def test_config_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "tools.yaml"
    path.write_text("tools:\n  p: {ref: [unclosed\n")
    with pytest.raises(UsageError, match="invalid YAML") as exc:
        Config.load(path)
    assert str(path) in str(exc.value)
    with pytest.raises(UsageError, match="no such file") as exc:
        Config.load(tmp_path / "absent.yaml")
    assert str(tmp_path / "absent.yaml") in str(exc.value)


# --------------------------------------------------------------------------------------
# tools.lock.json
# --------------------------------------------------------------------------------------


def layer(seed: str, **kw: Any) -> dict[str, Any]:
    out = {"digest": d(seed), "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
           "size": 1234, "unpack": "tar+gzip"}
    out.update(kw)
    return out


def entry(seed: str, *, index: str | None = "idx", path: str = "bin/protoc",
          ref: str = "ghcr.io/acme/protoc:25.1") -> dict[str, Any]:
    out: dict[str, Any] = {"layers": [layer(seed + "-layer", title="protoc.tar.gz")],
                           "manifest": d(seed), "path": path, "ref": ref}
    if index:
        out["index"] = d(index)
    return out


def good_lock() -> dict[str, Any]:
    return {
        "mirrors": {"ghcr.io": ["registry.internal:5000/ghcr", "oci-layout:registry"]},
        "tools": {
            "protoc": {
                "path": "bin/protoc",
                "ref": "ghcr.io/acme/protoc:25.1",
                "version": "25.1",
                "platforms": {
                    "linux/amd64": entry("amd64"),
                    "linux/arm64": entry("arm64"),
                    "darwin/arm64": entry("darwin"),
                    "linux/arm/v6": entry("armv6"),
                },
            },
            "hello": {
                "path": "hello",
                "ref": "oci-layout:registry:hello",
                "platforms": {"*": {
                    "layers": [layer("hello-layer", mediaType="application/octet-stream",
                                     title="hello", unpack="raw")],
                    "manifest": d("hello"), "path": "hello", "ref": "oci-layout:registry:hello",
                }},
            },
        },
        "version": 1,
    }


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, indent=2))
    return path


def test_good_lockfile_validates_and_loads_the_same_both_ways(tmp_path: Path) -> None:
    data = good_lock()
    jsonschema.Draft202012Validator(load_schema("lockfile.schema.json")).validate(data)
    path = write_json(tmp_path / "tools.lock.json", data)
    full, fast = Lockfile.load(path), Lockfile.load_fast(path)
    assert full == fast
    assert full.mirrors == {"ghcr.io": ("registry.internal:5000/ghcr", "oci-layout:registry")}
    amd64 = full.tools["protoc"].platforms["linux/amd64"]
    assert amd64.manifest == Digest.parse(d("amd64"))
    assert amd64.index == Digest.parse(d("idx"))
    assert amd64.layers[0].digest == Digest.parse(d("amd64-layer"))
    assert amd64.layers[0].title == "protoc.tar.gz"
    assert full.tools["hello"].platforms["*"].index is None
    # round trip: what was read dumps back to the same data
    assert json.loads(full.dumps()) == data


def test_dump_is_deterministic(tmp_path: Path) -> None:
    data = good_lock()
    text = Lockfile.from_json(data, tmp_path / "l.json").dumps()
    assert text == json.dumps(data, indent=2, sort_keys=True) + "\n"
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert "\n  \"tools\": {\n    \"hello\"" in text  # 2-space indent, sorted
    # insertion order of the input does not matter
    shuffled = json.loads(json.dumps(data))
    shuffled["tools"] = dict(reversed(list(shuffled["tools"].items())))
    plats = shuffled["tools"]["protoc"]["platforms"]
    shuffled["tools"]["protoc"]["platforms"] = dict(reversed(list(plats.items())))
    shuffled = dict(reversed(list(shuffled.items())))
    assert Lockfile.from_json(shuffled, tmp_path / "l.json").dumps() == text


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "tools.lock.json"
    lf = Lockfile.from_json(good_lock(), target)
    lf.write()
    assert target.read_text() == lf.dumps()
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)
    assert sorted(p.name for p in target.parent.iterdir()) == ["tools.lock.json"]
    inode = target.stat().st_ino
    lf.write()  # replaced by rename: a new inode, same bytes
    assert target.stat().st_ino != inode
    assert target.read_text() == lf.dumps()


Mutation = Callable[[dict[str, Any]], None]


def _set(path: list[Any], value: Any) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return mutate


def _del(path: list[Any]) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        node = data
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    return mutate


AMD = ["tools", "protoc", "platforms", "linux/amd64"]
AMD_J = "$.tools.protoc.platforms.linux/amd64"

# (mutation, JSON path the schema names, JSON path the hand checks name)
LOCK_ERRORS: list[tuple[str, Mutation, str, str]] = [
    ("version", _set(["version"], 2), "$.version", "$.version"),
    ("no-version", _del(["version"]), "$", "$.version"),
    ("tools-list", _set(["tools"], []), "$.tools", "$.tools"),
    ("platforms-missing", _del(["tools", "protoc", "platforms"]), "$.tools.protoc",
     "$.tools.protoc.platforms"),
    ("entry-not-object", _set(AMD, "x"), AMD_J, AMD_J),
    ("manifest-digest", _set([*AMD, "manifest"], "sha256:1234"), f"{AMD_J}.manifest",
     f"{AMD_J}.manifest"),
    ("index-digest", _set([*AMD, "index"], "sha256:XY"), f"{AMD_J}.index", f"{AMD_J}.index"),
    ("manifest-missing", _del([*AMD, "manifest"]), AMD_J, AMD_J),
    ("path-absolute", _set([*AMD, "path"], "/bin/sh"), f"{AMD_J}.path", f"{AMD_J}.path"),
    ("path-dotdot", _set([*AMD, "path"], "bin/../../x"), f"{AMD_J}.path", f"{AMD_J}.path"),
    ("layers-empty", _set([*AMD, "layers"], []), f"{AMD_J}.layers", f"{AMD_J}.layers"),
    ("layer-size", _set([*AMD, "layers", 0, "size"], -1), f"{AMD_J}.layers[0].size",
     f"{AMD_J}.layers[0].size"),
    ("layer-size-bool", _set([*AMD, "layers", 0, "size"], True), f"{AMD_J}.layers[0].size",
     f"{AMD_J}.layers[0].size"),
    ("layer-digest", _set([*AMD, "layers", 0, "digest"], "md5:abc"),
     f"{AMD_J}.layers[0].digest", f"{AMD_J}.layers[0].digest"),
    ("layer-no-digest", _del([*AMD, "layers", 0, "digest"]), f"{AMD_J}.layers[0]",
     f"{AMD_J}.layers[0]"),
    # the key at fault, not just its object, both ways (checked before the schema)
    ("platform-key-one-part", _set(["tools", "protoc", "platforms", "linux"], entry("x")),
     "$.tools.protoc.platforms.linux", "$.tools.protoc.platforms.linux"),
    ("platform-key-upper", _set(["tools", "protoc", "platforms", "Linux/AMD64"], entry("x")),
     "$.tools.protoc.platforms.Linux/AMD64", "$.tools.protoc.platforms.Linux/AMD64"),
    ("platform-key-four-parts",
     _set(["tools", "protoc", "platforms", "linux/arm/v7/x"], entry("x")),
     "$.tools.protoc.platforms.linux/arm/v7/x", "$.tools.protoc.platforms.linux/arm/v7/x"),
    # mirrors: a fetch reads them, so the fast path checks them as the schema does
    ("mirrors-list", _set(["mirrors"], ["ghcr.io"]), "$.mirrors", "$.mirrors"),
    ("mirrors-host-string", _set(["mirrors"], {"ghcr.io": "m.local"}), "$.mirrors.ghcr.io",
     "$.mirrors.ghcr.io"),
    ("mirror-url", _set(["mirrors"], {"ghcr.io": ["m.local", "https://m2.local"]}),
     "$.mirrors.ghcr.io[1]", "$.mirrors.ghcr.io[1]"),
    ("mirror-blank", _set(["mirrors"], {"ghcr.io": ["  "]}), "$.mirrors.ghcr.io[0]",
     "$.mirrors.ghcr.io[0]"),
    ("mirror-layout-empty", _set(["mirrors"], {"ghcr.io": ["oci-layout:"]}),
     "$.mirrors.ghcr.io[0]", "$.mirrors.ghcr.io[0]"),
]


@pytest.mark.parametrize(("mutate", "schema_where", "fast_where"),
                         [c[1:] for c in LOCK_ERRORS], ids=[c[0] for c in LOCK_ERRORS])
def test_lockfile_errors_name_file_and_json_path(
    tmp_path: Path, mutate: Mutation, schema_where: str, fast_where: str
) -> None:
    data = copy.deepcopy(good_lock())
    mutate(data)
    path = write_json(tmp_path / "tools.lock.json", data)
    with pytest.raises(UsageError) as exc:
        Lockfile.load(path)
    assert exc.value.exit_code == 2
    assert str(exc.value).startswith(f"{path}: {schema_where}: "), str(exc.value)
    with pytest.raises(UsageError) as exc:
        Lockfile.load_fast(path)
    assert exc.value.exit_code == 2
    assert str(exc.value).startswith(f"{path}: {fast_where}"), str(exc.value)


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (_set([*AMD, "layers", 0, "unpack"], "rar"), f"{AMD_J}.layers[0].unpack"),
        (_set([*AMD, "extra"], 1), AMD_J),
        (_set(["tools", "bad name"], {"platforms": {"*": entry("x")}}), "$.tools"),
        (_set(["mirrors", "ghcr.io"], [""]), "$.mirrors.ghcr.io[0]"),
    ],
)
def test_schema_only_errors(tmp_path: Path, mutate: Mutation, where: str) -> None:
    """What the hit path does not use is left to the schema, which still names it."""
    data = copy.deepcopy(good_lock())
    mutate(data)
    path = write_json(tmp_path / "tools.lock.json", data)
    with pytest.raises(UsageError) as exc:
        Lockfile.load(path)
    assert str(exc.value).startswith(f"{path}: {where}: "), str(exc.value)


@pytest.mark.parametrize(("mutate", "where"), [
    (_set([*AMD, "layers", 0, "unpack"], "rar"), f"{AMD_J}.layers[0].unpack"),
    (_set(["tools", "bad name"], {"platforms": {"*": entry("x")}}), "$.tools"),
])
def test_validating_reports_schema_errors_on_leaving_the_block(
    tmp_path: Path, mutate: Mutation, where: str
) -> None:
    """The fetch runs while jsonschema validates; leaving the block raises the schema's error,
    which also replaces any error of the block (the invalid lockfile explains it best)."""
    data = copy.deepcopy(good_lock())
    mutate(data)
    path = write_json(tmp_path / "tools.lock.json", data)
    ran = []
    with pytest.raises(UsageError) as exc, validating(path) as lockfile:
        ran.append(sorted(lockfile.tools))
    assert ran and "protoc" in ran[0]
    assert str(exc.value).startswith(f"{path}: {where}: ")
    with pytest.raises(UsageError) as exc, validating(path):
        raise NotFoundError("the block's own failure")
    assert str(exc.value).startswith(f"{path}: {where}: ")
    assert isinstance(exc.value.__cause__, NotFoundError)


def test_validating_with_start_waits_for_the_event_or_the_end_of_the_block(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fetch holds the schema check back until its transport is imported (``start``);
    a block that never sets the event still gets the check, and its error, on leaving."""
    import threading

    from toolfetch.lock import schema

    data = copy.deepcopy(good_lock())
    _set([*AMD, "layers", 0, "unpack"], "rar")(data)  # only the schema refuses it
    path = write_json(tmp_path / "tools.lock.json", data)
    checked = threading.Event()
    real = schema.validate

    def recording(*args: Any) -> None:
        checked.set()
        real(*args)

    monkeypatch.setattr(schema, "validate", recording)
    ready = threading.Event()
    with pytest.raises(UsageError, match="unpack"), validating(path, start=ready):
        assert not checked.wait(0.3)  # held back
        ready.set()
        assert checked.wait(10)  # released by the event, inside the block
    checked.clear()
    with pytest.raises(UsageError, match="unpack"), validating(path, start=threading.Event()):
        assert not checked.wait(0.3)
    assert checked.is_set()  # released by leaving the block


def test_validating_a_good_lockfile_keeps_the_blocks_own_error(tmp_path: Path) -> None:
    path = write_json(tmp_path / "tools.lock.json", good_lock())
    with validating(path) as lockfile:
        assert lockfile.tools == Lockfile.load(path).tools
    with pytest.raises(NotFoundError, match="own failure"), validating(path):
        raise NotFoundError("own failure")


def test_validating_refuses_what_the_hand_checks_refuse_before_the_block(tmp_path: Path) -> None:
    data = copy.deepcopy(good_lock())
    _set([*AMD, "path"], "/bin/sh")(data)
    path = write_json(tmp_path / "tools.lock.json", data)
    entered = []
    with pytest.raises(ToolfetchError) as exc, validating(path):
        entered.append(True)
    assert not entered
    assert str(exc.value).startswith(f"{path}: {AMD_J}.path: ")  # the schema's wording


@pytest.mark.parametrize(("content", "needle"), [(None, "not found"),
                                                  ("{not json", "not valid JSON"),
                                                  ("[1, 2]", ": $")])
def test_unreadable_lockfiles(tmp_path: Path, content: str | None, needle: str) -> None:
    path = tmp_path / "tools.lock.json"
    if content is not None:
        path.write_text(content)
    for load in (Lockfile.load, Lockfile.load_fast):
        with pytest.raises(UsageError) as exc:
            load(path)
        assert str(exc.value).startswith(str(path))
        assert needle in str(exc.value)


def test_load_fast_does_not_import_jsonschema(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = write_json(tmp_path / "tools.lock.json", good_lock())
    code = ("import sys; from pathlib import Path; from toolfetch.lock.lockfile import Lockfile; "
            f"Lockfile.load_fast(Path({str(path)!r})); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('jsonschema', 'yaml', 'requests')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=dict(os.environ)).stdout
    assert out.strip() == "[]"


# --------------------------------------------------------------------------------------
# platform matching of a locked tool
# --------------------------------------------------------------------------------------


def test_for_platform_matching(tmp_path: Path) -> None:
    lf = Lockfile.from_json(good_lock(), tmp_path / "l.json")
    protoc = lf.tool("protoc")
    assert protoc.for_platform(P("linux/amd64"), lf.path)[0] == "linux/amd64"
    assert protoc.for_platform(P("linux/arm64/v8"), lf.path)[0] == "linux/arm64"
    assert protoc.for_platform(P("linux/arm/v7"), lf.path)[0] == "linux/arm/v6"
    key, locked = protoc.for_platform(P("darwin/arm64"), lf.path)
    assert key == "darwin/arm64" and locked.manifest == Digest.parse(d("darwin"))
    with pytest.raises(NotFoundError) as exc:
        protoc.for_platform(P("windows/amd64"), lf.path)
    msg = str(exc.value)
    assert exc.value.exit_code == 4
    assert "windows/amd64" in msg and str(lf.path) in msg
    for k in ("darwin/arm64", "linux/amd64", "linux/arm/v6", "linux/arm64"):
        assert k in msg


def test_star_serves_every_platform(tmp_path: Path) -> None:
    lf = Lockfile.from_json(good_lock(), tmp_path / "l.json")
    hello = lf.tool("hello")
    for plat in ("linux/amd64", "windows/amd64", "darwin/arm64", "linux/arm/v7"):
        key, locked = hello.for_platform(P(plat), lf.path)
        assert key == "*" and locked.manifest == Digest.parse(d("hello"))


def test_unknown_tool_lists_what_exists(tmp_path: Path) -> None:
    lf = Lockfile.from_json(good_lock(), tmp_path / "l.json")
    with pytest.raises(NotFoundError) as exc:
        lf.tool("protocc")
    assert exc.value.exit_code == 4
    assert "'protocc'" in str(exc.value) and "hello, protoc" in str(exc.value)
