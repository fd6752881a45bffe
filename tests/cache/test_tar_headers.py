"""Tar headers: a corrupt or malformed header is an error, never the end of the archive.

tarfile ends the member list silently at a header it finds invalid (after the first), and
which pax headers it finds invalid depends on the CPython release (3.13 refuses what 3.12.1
accepts). A layer must give the same tree on every machine or none at all, so toolfetch turns
every such header into an IntegrityError and checks pax records by the strictest rules itself.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from test_unpack import WHAT, m, make_tar, unpack

from toolfetch.cache.streams import check_pax_records
from toolfetch.core.errors import IntegrityError

TOOLS = Path(__file__).resolve().parents[2] / "tools"


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    d = tmp_path / "tmp" / "unpack"
    d.mkdir(parents=True)
    return d


def _ustar(*members: tuple[str, int, bytes]) -> bytes:
    """A ustar archive of (name, type, data) members written as given, pax headers included
    as raw members (tarfile would otherwise build them itself)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name, kind, data in members:
            info = tarfile.TarInfo(name)
            info.type, info.size, info.mode = bytes([kind]), len(data), 0o755
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def rec(keyword: str, value: str) -> bytes:
    """One well-formed pax record: its length counts its own digits."""
    body = f" {keyword}={value}\n".encode()
    n = len(body) + 1
    while len(str(n)) + len(body) != n:
        n += 1
    return str(n).encode() + body


def _pax_between(record: bytes) -> bytes:
    return _ustar(("bin/first", ord("0"), b"1\n"), ("././@PaxHeader", ord("x"), record),
                  ("bin/second", ord("0"), b"2\n"), ("bin/third", ord("0"), b"3\n"))


def _files(dest: Path) -> list[str]:
    return sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())


def _bad(dest: Path, data: bytes) -> str:
    with pytest.raises(IntegrityError) as exc:
        unpack(dest, data)
    msg = str(exc.value)
    assert WHAT in msg, msg
    return msg


def test_a_corrupt_second_header_is_an_error_not_a_shorter_tree(dest: Path) -> None:
    data = bytearray(make_tar(m("bin/first", b"1\n"), m("bin/second", b"2\n")))
    data[1024 + 148:1024 + 156] = b"0000000\0"  # the second member's header checksum
    msg = _bad(dest, bytes(data))
    assert "not a valid tar archive" in msg and "bad header at byte 1024" in msg, msg


def test_a_header_cut_in_the_middle_is_an_error(dest: Path) -> None:
    data = make_tar(m("bin/first", b"1\n"), m("bin/second", b"2\n"))
    msg = _bad(dest, data[:1024 + 300])  # the second header is only 300 bytes long
    assert "not a valid tar archive" in msg, msg


def test_an_archive_without_end_blocks_still_unpacks(dest: Path) -> None:
    """Many writers omit the two zero blocks; the end of the stream ends the archive."""
    data = make_tar(m("bin/first", b"1\n"), m("bin/second", b"2\n"))
    unpack(dest, data[:2048])  # two members, header + one data block each, no end blocks
    assert _files(dest) == ["bin/first", "bin/second"]


@pytest.mark.parametrize(("record", "why"), [
    (rec("comment", "hello") + b"XY", "at byte 17 has no length"),  # bytes after a record
    (b"19 comment=hello\nXY", "is not 'LENGTH KEYWORD=VALUE\\n'"),  # a length taking them in
    (b"20 path=bin/renamed!", "is not 'LENGTH KEYWORD=VALUE\\n'"),  # no closing newline
    (b"12 novalue\n", "is not 'LENGTH KEYWORD=VALUE\\n'"),  # no '='
    (b"600 path=x\n", "has a bad length 600"),  # longer than the header data
    (b"3 a=\n", "has a bad length 3"),  # shorter than the shortest record
    (b"x path=y\n", "has no length"),
])
def test_a_malformed_pax_header_is_refused_on_every_python(dest: Path, record: bytes,
                                                           why: str) -> None:
    msg = _bad(dest, _pax_between(record))
    assert "'././@PaxHeader'" in msg and why in msg, msg
    assert not (dest / "bin" / "second").exists()


@pytest.mark.parametrize("records", [
    b"",
    rec("comment", "hello"),
    b"5 x=\n",  # the shortest record: an empty value
    rec("mtime", "1700000000.123456789") + rec("comment", "hello"),
    rec("path", "bin/ünïcode"),
    rec("comment", "x" * 200),
])
def test_well_formed_pax_records_pass(records: bytes) -> None:
    assert check_pax_records(records + b"\0" * (512 - len(records))) is None


def test_a_well_formed_pax_header_still_applies(dest: Path) -> None:
    unpack(dest, _pax_between(rec("path", "bin/renamed-2nd")))
    assert _files(dest) == ["bin/first", "bin/renamed-2nd", "bin/third"]
    assert (dest / "bin" / "renamed-2nd").read_bytes() == b"2\n"


@pytest.mark.skipif(shutil.which("tar") is None, reason="needs GNU tar")
def test_gnu_tar_pax_archives_with_long_names_unpack(dest: Path, tmp_path: Path) -> None:
    """A real peer's pax output (long names, mtimes with fractions) passes the strict check."""
    src = tmp_path / "src"
    deep = src / ("d" * 120) / ("e" * 120)
    deep.mkdir(parents=True)
    (deep / ("f" * 90)).write_bytes(b"long\n")
    (src / "short").write_bytes(b"short\n")
    archive = tmp_path / "gnu.tar"
    subprocess.run(["tar", "--format=pax", "-cf", str(archive), "-C", str(src), "."],
                   check=True)
    unpack(dest, archive.read_bytes())
    rel = f"{'d' * 120}/{'e' * 120}/{'f' * 90}"
    assert (dest / rel).read_bytes() == b"long\n" and (dest / "short").read_bytes() == b"short\n"


_OTHER_PYTHONS = [p for p in (f"/root/.pyenv/versions/{v}/bin/python"
                              for v in ("3.10.13", "3.12.1", "3.13.0")) if os.path.exists(p)]
_UNPACK_AND_DIGEST = """
import sys
from pathlib import Path
from toolfetch.cache.trees import tree_digest
from toolfetch.cache.unpack import unpack_layer
from toolfetch.core.errors import IntegrityError
for arc in sys.argv[1:]:
    dest = Path(arc + ".d")
    dest.mkdir()
    try:
        unpack_layer(Path(arc), "tar", dest, title=None, what="w", whiteouts=True)
        print(Path(arc).name, tree_digest(dest)[0])
    except IntegrityError as e:
        print(Path(arc).name, "refused", str(e).split(":")[-1].strip())
"""


@pytest.mark.skipif(not _OTHER_PYTHONS, reason="no other CPython releases on this machine")
def test_one_layer_gives_one_tree_or_one_refusal_on_every_python(tmp_path: Path) -> None:
    archives = {
        "good.tar": _pax_between(rec("path", "bin/renamed-2nd")),
        "trailing.tar": _pax_between(rec("comment", "hello") + b"XY"),
        "no-newline.tar": _pax_between(b"20 path=bin/renamed!"),
        "long.tar": make_tar(m("x" * 150 + "/tool", b"t\n", pax={"comment": "c" * 300})),
    }
    verdicts = []
    for python in [sys.executable, *_OTHER_PYTHONS]:
        work = tmp_path / Path(python).parents[1].name
        work.mkdir()
        for name, data in archives.items():
            (work / name).write_bytes(data)
        out = subprocess.run(
            [python, "-c", _UNPACK_AND_DIGEST, *sorted(str(work / n) for n in archives)],
            env={**os.environ, "PYTHONPATH": str(TOOLS)}, check=True, capture_output=True,
            text=True).stdout
        verdicts.append((python, out))
    first = verdicts[0][1]
    assert first.count("refused") == 2 and "good.tar sha256:" in first, first
    for python, out in verdicts[1:]:
        assert out == first, f"{python} disagrees with {sys.executable}:\n{out}\nvs\n{first}"

