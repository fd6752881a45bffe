"""Importers, field by field (issue 23 #4, issue 24 #7, #16): every DotSlash and
rules_multitool field is carried over or named in a warning or an error; wrong types are
exit 2 naming file, tool, platform and field; the JSON-with-comments reader never touches
strings and is linear; tools are inserted where the YAML parser says, and only if the result
is the old data plus exactly the new tools."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from toolfetch.core.errors import UsageError
from toolfetch.lock import jsonc
from toolfetch.lock.configedit import add_tools
from toolfetch.lock.importers import from_dotslash, from_multitool, github_release_url

SHA, B3 = "a" * 64, "b" * 64


def _dotslash(tmp_path: Path, platforms: dict[str, Any], name: str = "tool",
              extra: str = "") -> Path:
    path = tmp_path / name
    body = json.dumps({"name": name, "platforms": platforms}, indent=2)
    path.write_text(f"#!/usr/bin/env dotslash\n{extra}{body}\n")
    return path


def _entry(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"size": 10, "hash": "blake3", "digest": B3, "path": "bin/t",
                            "providers": [{"url": "https://example.com/t.tar.zst"}],
                            "format": "tar.zst"}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


@pytest.mark.parametrize(("fields", "expected"), [
    ({}, {"url": "https://example.com/t.tar.zst", "format": "tar+zstd", "path": "bin/t",
          "blake3": B3, "size": 10}),
    ({"hash": "sha256", "digest": SHA.upper()}, {"sha256": SHA}),
    ({"format": "zst", "path": "buck2"}, {"format": "zstd", "path": "buck2"}),
    ({"format": "gz"}, {"format": "gzip"}),
    ({"format": "xz"}, {"format": "xz"}),
    ({"format": "bz2"}, {"format": "bzip2"}),
    ({"format": "tar.xz"}, {"format": "tar+xz"}),
    ({"format": "tar.bz2"}, {"format": "tar+bzip2"}),
    ({"format": "tar.gz"}, {"format": "tar+gzip"}),
    ({"format": "zip"}, {"format": "zip"}),
    ({"format": None}, {"format": "raw"}),
    ({"providers": [{"type": "github-release", "repo": "facebook/buck2", "tag": "2024-01-01",
                     "name": "buck2-x86_64-unknown-linux-musl.zst"}]},
     {"url": "https://github.com/facebook/buck2/releases/download/2024-01-01/"
             "buck2-x86_64-unknown-linux-musl.zst"}),
    ({"providers": [{"type": "github-release", "repo": "ghe.example.com/team/tool",
                     "tag": "v1", "name": "t.tar.zst"}]},
     {"url": "https://ghe.example.com/team/tool/releases/download/v1/t.tar.zst"}),
    ({"providers": [{"type": "github-release", "repo": "https://ghe.example.com/team/tool",
                     "tag": "v 1", "name": "t.tar.zst"}]},
     {"url": "https://ghe.example.com/team/tool/releases/download/v%201/t.tar.zst"}),
    ({"providers": [{"type": "s3", "bucket": "b", "key": "k"},
                     {"url": "https://mirror.example/t.tar.zst"}]},
     {"url": "https://mirror.example/t.tar.zst"}),
    ({"providers": [{"url": "https://a.example/t"}, {"url": "https://b.example/t"}]},
     {"urls": ["https://a.example/t", "https://b.example/t"]}),
])
def test_dotslash_platform_fields(tmp_path: Path, fields: dict[str, Any],
                                  expected: dict[str, Any]) -> None:
    path = _dotslash(tmp_path, {"linux-x86_64": _entry(**fields)})
    (tool,) = from_dotslash(path).values()
    entry = tool["platforms"]["linux/amd64"]
    for key, value in expected.items():
        assert entry[key] == value, key
    if "urls" in expected:
        assert "url" not in entry


@pytest.mark.parametrize(("fields", "needles"), [
    ({"size": "10"}, ("platform linux-x86_64", "`size`", "'10'")),
    ({"size": -1}, ("`size`",)),
    ({"digest": ["x"]}, ("`digest`", "a list")),
    ({"digest": "xyz"}, ("`digest`", "64 hex")),
    ({"hash": "md5"}, ("unknown hash", "md5")),
    ({"path": 3}, ("`path`",)),
    ({"format": "rar"}, ("format 'rar'", "supported")),
    ({"providers": "https://x"}, ("`providers`",)),
    ({"providers": [["https://x"]]}, ("providers[0]", "a list")),
    ({"providers": [{"url": ["https://x"]}]}, ("providers[0]", "`url`", "a list")),
    ({"providers": [{"url": "ftp://x/y"}]}, ("http(s)",)),
    ({"providers": [{"type": "github-release", "repo": "x", "tag": "t", "name": "n"}]},
     ("`repo`",)),
    ({"arg0": "other"}, ("`arg0`",)),
])
def test_dotslash_wrong_values_are_exit_2_naming_the_field(
        tmp_path: Path, fields: dict[str, Any], needles: tuple[str, ...]) -> None:
    path = _dotslash(tmp_path, {"linux-x86_64": _entry(**fields)})
    with pytest.raises(UsageError) as e:
        from_dotslash(path)
    assert e.value.exit_code == 2
    for needle in (str(path), *needles):
        assert needle in e.value.message


def test_dotslash_unknown_keys_and_fields_are_named_not_dropped(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = _dotslash(tmp_path, {"linux-x86_64": _entry(readonly=False, extra=1),
                                "linux-riscv64": _entry(),
                                "freebsd-x86_64": _entry(),
                                "macos-aarch64": _entry(providers=[{"type": "s3"}])})
    with caplog.at_level(logging.WARNING, logger="toolfetch"):
        (tool,) = from_dotslash(path).values()
    assert sorted(tool["platforms"]) == ["linux/amd64", "linux/riscv64"]
    text = caplog.text
    for needle in ("freebsd-x86_64", "skipped", "readonly: false", "`extra`", "'s3' provider",
                   "macos-aarch64"):
        assert needle in text, needle


def test_dotslash_arg0(tmp_path: Path) -> None:
    default = _dotslash(tmp_path, {"linux-x86_64": _entry()}, "a")
    assert from_dotslash(default)["a"]["arg0"] == "tool"  # DotSlash's default: dotslash-file
    under = _dotslash(tmp_path, {"linux-x86_64": _entry(arg0="underlying-executable")}, "b")
    assert "arg0" not in from_dotslash(under)["b"]  # toolfetch's default: the executable
    mixed = _dotslash(tmp_path, {"linux-x86_64": _entry(arg0="underlying-executable"),
                                 "linux-aarch64": _entry()}, "c")
    with pytest.raises(UsageError, match="disagree on `arg0`"):
        from_dotslash(mixed)


def test_dotslash_name_option_and_file_name(tmp_path: Path) -> None:
    path = _dotslash(tmp_path, {"linux-x86_64": _entry()}, "buck2.dotslash")
    assert list(from_dotslash(path)) == ["buck2"]
    assert list(from_dotslash(path, "b2")) == ["b2"]


@pytest.mark.parametrize(("text", "value"), [
    ('{"u": "https://x/a,}b", }', {"u": "https://x/a,}b"}),  # a comma inside a string stays
    ('{"u": "a//b", // comment\n "v": [1, 2, ], }', {"u": "a//b", "v": [1, 2]}),
    ('{"u": "a/*b*/c" /* c, } */ , }', {"u": "a/*b*/c"}),
    ('{"q": "say \\"hi\\", }"}', {"q": 'say "hi", }'}),
    ('[1, // x\n ]', [1]),
])
def test_jsonc_never_touches_strings(text: str, value: Any) -> None:
    assert jsonc.loads(text, "f") == value


@pytest.mark.parametrize(("text", "needle"), [
    ('{"a": "open', "not closed"),
    ('{"a": 1 /* open', "not closed"),
    ("[" * 100 + "]" * 100, "nested deeper"),
    ('{"a": 1,, }', "line 1"),
    ('{"size": ' + "9" * 5000 + "}", "not valid JSON"),
])
def test_jsonc_errors_are_exit_2(text: str, needle: str) -> None:
    with pytest.raises(UsageError, match=needle):
        jsonc.loads(text, "f")


def test_jsonc_is_linear_on_many_comments() -> None:
    """600k comment lines took ~21 s with the old reader (a search from every comment to
    the end of the text); the linear one reads them at once."""
    text = "// a comment line\n" * 600_000 + '{"a": 1}'
    start = time.monotonic()
    assert jsonc.loads(text, "f") == {"a": 1}
    assert time.monotonic() - start < 5


def test_github_release_url_spellings() -> None:
    assert github_release_url("o/r", "t", "n", "w") == \
        "https://github.com/o/r/releases/download/t/n"
    assert github_release_url("https://github.com/o/r.git", "t", "n", "w") == \
        "https://github.com/o/r/releases/download/t/n"


def _multitool(tmp_path: Path, binaries: list[dict[str, Any]]) -> Path:
    path = tmp_path / "multitool.lock.json"
    path.write_text(json.dumps({"t": {"binaries": binaries}}))
    return path


def _bin(**fields: Any) -> dict[str, Any]:
    base = {"kind": "archive", "url": "https://x.example/t.tar.xz", "file": "t/bin/t",
            "sha256": SHA, "os": "linux", "cpu": "x86_64"}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


@pytest.mark.parametrize(("fields", "fmt"), [
    ({}, "tar+xz"),  # no type: the URL's extension, as Bazel's extractor
    ({"url": "https://x.example/t.txz"}, "tar+xz"),
    ({"url": "https://x.example/t.gz"}, "gzip"),  # a single gzip file, decompressed
    ({"type": ".tar.zst"}, "tar+zstd"),
    ({"type": ".tzst"}, "tar+zstd"),
    ({"type": "tar.bz2"}, "tar+bzip2"),
    ({"type": ".tbz"}, "tar+bzip2"),
    ({"type": "jar"}, "zip"), ({"type": "war"}, "zip"), ({"type": "aar"}, "zip"),
    ({"type": "tgz"}, "tar+gzip"),
    ({"kind": "file", "file": None, "url": "https://x.example/t.gz"}, "raw"),
])
def test_multitool_formats(tmp_path: Path, fields: dict[str, Any], fmt: str) -> None:
    entry = from_multitool(_multitool(tmp_path, [_bin(**fields)]))["t"]["platforms"]
    assert entry["linux/amd64"]["format"] == fmt


@pytest.mark.parametrize(("fields", "needles"), [
    ({"url": ["https://x"]}, ("`url`", "a list")),
    ({"sha256": 5}, ("`sha256`",)),
    ({"file": None}, ("`file`",)),
    ({"kind": "bundle"}, ("`kind`",)),
    ({"url": "https://x.example/t.bin"}, ("give its `type`",)),
    ({"type": "rar"}, ("format 'rar'",)),
])
def test_multitool_wrong_values(tmp_path: Path, fields: dict[str, Any],
                                needles: tuple[str, ...]) -> None:
    path = _multitool(tmp_path, [_bin(**fields)])
    with pytest.raises(UsageError) as e:
        from_multitool(path)
    for needle in (str(path), "tool t", "linux/amd64" if "kind" not in fields else "",
                   *needles):
        assert needle in e.value.message


def test_multitool_headers_and_auth_patterns_are_named(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = _multitool(tmp_path, [_bin(headers={"Accept": "application/octet-stream"},
                                      auth_patterns={"x.example": "Bearer <password>"})])
    with caplog.at_level(logging.WARNING, logger="toolfetch"):
        assert "t" in from_multitool(path)
    for needle in ("`headers`", "`auth_patterns`", "TOOLFETCH_HTTP_AUTH_<HOST>", "x.example"):
        assert needle in caplog.text


TRICKY = """\
# our tools
platforms: [linux/amd64]
tools:
  # keep me
  a:
    ref: example.com/a:1
    version: "1.0
tools:
      x"
  b:
    ref: example.com/b:1
    path: bin/b

# mirrors below
mirrors:
  example.com: [mirror.example]
"""


def test_add_tools_goes_where_the_parser_says(tmp_path: Path) -> None:
    """A line `tools:` inside a multi-line quoted string is text, not the mapping (issue
    24 #7: the text search inserted the block there, said "added", and the tool was not)."""
    config = tmp_path / "tools.yaml"
    config.write_text(TRICKY)
    add_tools(config, {"c": {"ref": "example.com/c:1"}})
    text = config.read_text()
    data = yaml.safe_load(text)
    assert list(data["tools"]) == ["a", "b", "c"]
    assert data["tools"]["a"]["version"] == "1.0 tools: x"
    assert "# keep me" in text and "# mirrors below" in text
    assert text.index("  c:") < text.index("# mirrors below")


def test_add_tools_refuses_what_it_cannot_add_exactly(tmp_path: Path) -> None:
    config = tmp_path / "tools.yaml"
    config.write_text("tools: {a: {ref: example.com/a:1}}\n")
    before = config.read_text()
    with pytest.raises(UsageError, match="block mapping"):
        add_tools(config, {"c": {"ref": "example.com/c:1"}})
    assert config.read_text() == before


def test_add_tools_to_an_invalid_or_duplicate_file_is_exit_2_and_writes_nothing(
        tmp_path: Path) -> None:
    config = tmp_path / "tools.yaml"
    for text, needle in (("tools:\n  a: {ref: x.example/a:1}\ntools:\n  b: {ref: "
                          "x.example/b:1}\n", "duplicate key 'tools'"),
                         ("tools:\n  a: {nope: 1}\n", "$.tools.a"),
                         ("tools: [\n", "invalid YAML")):
        config.write_text(text)
        with pytest.raises(UsageError, match=needle.replace("$", r"\$").replace("[", r"\[")):
            add_tools(config, {"c": {"ref": "x.example/c:1"}})
        assert config.read_text() == text


@pytest.mark.parametrize("importer", [from_dotslash, from_multitool])
@pytest.mark.parametrize(("make", "needle"), [
    (lambda p: None, "no such file"),
    (lambda p: p.mkdir(), "is a directory"),
    (lambda p: p.write_bytes(b'{"x": "\xff"}'), "not UTF-8 text (byte 7 is 0xff)"),
    (lambda p: p.write_bytes(b" " * (jsonc.MAX_BYTES + 1)), "larger than"),
])
def test_an_input_file_that_cannot_be_one_is_exit_2_naming_it(
        tmp_path: Path, importer: Any, make: Any, needle: str) -> None:
    """What the user names on the command line is read by the reader tools.yaml has: a
    missing file or a directory is a usage error (exit 2, was exit 8 for a missing one),
    as are a file past the cap and bytes that are not UTF-8; each names the file."""
    path = tmp_path / "input"
    make(path)
    with pytest.raises(UsageError) as caught:
        importer(path)
    assert caught.value.exit_code == 2
    assert str(path) in str(caught.value) and needle in str(caught.value)
