"""What a script gets from the facade's switches and list arguments, whatever the method:

* ``Client(offline=True)`` (and ``TOOLFETCH_OFFLINE=1`` on the command line) refuses a
  registry reference before any connection, exit 6, on every method that reads or writes a
  registry (``lock`` and ``export`` included); ``oci-layout:`` references stay usable;
* a bare string where a list is expected is one item, never its characters;
* ``copy`` names its source first when both references are bad, and has ``toolfetch
  copy``'s default parallelism.
"""

from __future__ import annotations

import inspect
import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ocitest
import pytest
from accesslog import LogMark
from assetserver import AssetServer
from ocitest import Registry
from tf import host, script, tf_main, write_config

import toolfetch
from toolfetch.api.client import kept_digests
from toolfetch.cli.parser import build_parser


class CountingListener:
    """A loopback port that accepts connections, counts them and answers nothing."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.host = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.stopped = True
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[CountingListener]:
    found = CountingListener()
    yield found
    found.close()


def _file(tmp_path: Path) -> Path:
    path = tmp_path / "tool"
    path.write_bytes(b"#!/bin/sh\necho hi\n")
    return path


CALLS: dict[str, Callable[[toolfetch.Client, str, Path], Any]] = {
    "list_tags": lambda c, r, p: c.list_tags(r),
    "get_artifact_info": lambda c, r, p: c.get_artifact_info(f"{r}:1"),
    "pull": lambda c, r, p: c.pull(f"{r}:1", p / "out"),
    "exists": lambda c, r, p: c.exists(f"{r}:1"),
    "manifest_digest": lambda c, r, p: c.manifest_digest(f"{r}:1"),
    "referrers": lambda c, r, p: c.referrers(f"{r}:1"),
    "push": lambda c, r, p: c.push(f"{r}:1", [_file(p)]),
    "publish": lambda c, r, p: c.publish(f"{r}:1", {"linux/amd64": [_file(p)]}),
    "attach": lambda c, r, p: c.attach(f"{r}:1", [_file(p)], artifact_type="a/b"),
    "tag": lambda c, r, p: c.tag(f"{r}:1", ["2"]),
    "copy from": lambda c, r, p: c.copy(f"{r}:1", f"oci-layout:{p / 'l'}:1"),
    "copy to": lambda c, r, p: c.copy(f"oci-layout:{p / 'l'}:1", f"{r}:1"),
    "login": lambda c, r, p: c.login(r.split("/")[0], "user", "secret"),
}


@pytest.mark.parametrize("method", sorted(CALLS))
def test_offline_refuses_a_registry_before_any_connection(
        method: str, listener: CountingListener, tmp_path: Path) -> None:
    client = toolfetch.Client(tmp_path / "tools.lock.json", cache_dir=tmp_path / "cache",
                              offline=True)
    with pytest.raises(toolfetch.UnreachableError) as refused:
        CALLS[method](client, f"{listener.host}/acme/tool", tmp_path)
    assert refused.value.exit_code == 6
    assert listener.host in str(refused.value) and "offline" in str(refused.value)
    assert listener.connections == 0


def test_offline_lock_and_export_need_no_registry_they_cannot_reach(
        listener: CountingListener, registry: Registry, unique_repo: str,
        tmp_path: Path) -> None:
    """``lock`` resolves only layouts offline; ``export`` of a lockfile whose blobs are not
    cached fails offline rather than asking the registry the lockfile names."""
    config = tmp_path / "tools.yaml"
    lockfile = tmp_path / "tools.lock.json"
    write_config(config, {"tools": {"t": {"ref": f"{listener.host}/acme/t:1"}}})
    offline = toolfetch.Client(lockfile, cache_dir=tmp_path / "cache", offline=True)
    with pytest.raises(toolfetch.UnreachableError) as refused:
        offline.lock()
    assert refused.value.exit_code == 6 and "offline" in str(refused.value)
    assert not lockfile.exists()

    # a real lockfile, then pointed at the listener: its blobs are in no cache
    ocitest.push_artifact(registry, f"{unique_repo}/t", "1",
                          ocitest.oras_artifact({"t": b"#!/bin/sh\n"}))
    write_config(config, {"tools": {"t": {"ref": registry.ref(f"{unique_repo}/t", "1")}}})
    toolfetch.Client(lockfile, cache_dir=tmp_path / "other-cache").lock()
    lockfile.write_text(lockfile.read_text().replace(registry.host, listener.host))
    with pytest.raises(toolfetch.UnreachableError) as export_refused:
        offline.export(tmp_path / "bundle", all_platforms=True)
    assert export_refused.value.exit_code == 6
    assert listener.connections == 0


def test_offline_still_reads_and_writes_layouts(tmp_path: Path) -> None:
    client = toolfetch.Client(tmp_path / "tools.lock.json", cache_dir=tmp_path / "cache",
                              offline=True)
    layout = f"oci-layout:{tmp_path / 'layout'}"
    pushed = client.push(f"{layout}:1", [_file(tmp_path)])
    assert client.list_tags(layout) == ["1"]
    assert client.manifest_digest(f"{layout}:1") == pushed.digest


def test_the_cli_honours_toolfetch_offline_for_registry_commands(
        listener: CountingListener, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLFETCH_OFFLINE", "1")
    r = tf_main("tags", f"{listener.host}/acme/tool")
    assert r.returncode == 6, r
    assert r.stderr.startswith("error: tags ") and "offline" in r.stderr
    assert listener.connections == 0


def test_a_bare_string_is_one_item_never_its_characters(tmp_path: Path) -> None:
    client = toolfetch.Client(tmp_path / "tools.lock.json", cache_dir=tmp_path / "cache")
    layout = f"oci-layout:{tmp_path / 'layout'}"
    tool = _file(tmp_path)
    client.push(f"{layout}:1", str(tool))  # one file, not the path's characters
    client.tag(f"{layout}:1", "v2")  # one tag, not "v" and "2"
    assert sorted(client.list_tags(layout)) == ["1", "v2"]
    assert [p.name for p in client.pull(f"{layout}:1", tmp_path / "out")] == ["tool"]

    write_config(tmp_path / "tools.yaml", {"tools": {"tool": {"ref": f"{layout}:1"}}})
    client.lock("tool")  # one tool, not "t", "o", "o", "l"
    lockfile = tmp_path / "tools.lock.json"
    assert list(json.loads(lockfile.read_text())["tools"]) == ["tool"]
    assert kept_digests(str(lockfile)) == kept_digests([lockfile]) != set()


def test_copy_names_its_source_first_and_defaults_to_four_jobs(tmp_path: Path) -> None:
    client = toolfetch.Client(tmp_path / "tools.lock.json", cache_dir=tmp_path / "cache")
    with pytest.raises(toolfetch.UsageError) as both_bad:
        client.copy("not a ref!", "nor this one!")
    assert "not a ref!" in str(both_bad.value)
    argv = ["copy", "a/b:1", "c/d:1"]
    cli_default = build_parser(argv).parse_args(argv).jobs
    assert inspect.signature(client.copy).parameters["jobs"].default == cli_default == 4
    with pytest.raises(toolfetch.UsageError):
        client.copy(f"oci-layout:{tmp_path}:1", f"oci-layout:{tmp_path / 'x'}:1", jobs=0)


def test_copy_passes_its_jobs_on_from_the_library_and_the_command_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default (4, whatever the client's ``jobs``) and ``--jobs N`` reach the copy."""
    from toolfetch.ops import copy_pull

    seen: list[int] = []

    def copy(*args: Any, jobs: int, **kwargs: Any) -> str:
        seen.append(jobs)
        return "sha256:" + "0" * 64

    monkeypatch.setattr(copy_pull, "copy", copy)
    src, dst = f"oci-layout:{tmp_path / 'a'}:1", f"oci-layout:{tmp_path / 'b'}:1"
    toolfetch.Client(tmp_path / "tools.lock.json", jobs=8).copy(src, dst)
    toolfetch.Client(tmp_path / "tools.lock.json").copy(src, dst, jobs=2)
    assert tf_main("copy", src, dst).returncode == 0
    assert tf_main("copy", "--jobs", "3", src, dst).returncode == 0
    assert seen == [4, 2, 4, 3]


def test_a_bare_mount_from_string_is_one_repository(registry: Registry, unique_repo: str,
                                                     tmp_path: Path) -> None:
    client = toolfetch.Client(tmp_path / "tools.lock.json", cache_dir=tmp_path / "cache")
    tool = _file(tmp_path)
    client.push(registry.ref(f"{unique_repo}/src", "1"), [tool])
    mark = LogMark(registry)
    client.push(registry.ref(f"{unique_repo}/dst", "1"), [tool],
                mount_from=f"{unique_repo}/src")
    assert mark.count("POST", f"/v2/{unique_repo}/dst/blobs/uploads/?mount=", 201) == 2


def _asset_lockfile(tmp_path: Path, server: Any) -> toolfetch.Client:
    server.files["/releases/1.0/buf"] = script("buf")
    write_config(tmp_path / "tools.yaml", {"tools": {"buf": {
        "version": "1.0", "platforms": {host(): {"url": server.url("/releases/1.0/buf")}}}}})
    client = toolfetch.Client(tmp_path / "tools.lock.json", cache_dir=tmp_path / "cache")
    client.lock()
    client.fetch()  # the asset is cached: publishing it needs no download
    return client


def test_publish_from_lockfile_takes_a_prefix_with_a_slash_and_works_offline_to_a_layout(
        registry: Registry, unique_repo: str, listener: CountingListener,
        tmp_path: Path) -> None:
    server = AssetServer()
    try:
        client = _asset_lockfile(tmp_path, server)
        published = client.publish_from_lockfile(f"{registry.host}/{unique_repo}/")
        assert str(published["buf"].reference) == f"{registry.host}/{unique_repo}/buf:1.0"
    finally:
        server.close()  # offline, below, nothing may ask the asset server either
    offline = toolfetch.Client(tmp_path / "tools.lock.json", cache_dir=tmp_path / "cache",
                               offline=True)
    layout = offline.publish_from_lockfile(f"oci-layout:{tmp_path / 'mirror'}", "buf")
    assert offline.list_tags(f"oci-layout:{tmp_path / 'mirror'}/buf") == ["1.0"]
    assert layout["buf"].digest == published["buf"].digest  # the same index, byte for byte
    for prefix in (f"{listener.host}/acme", f"{listener.host}/acme/", listener.host):
        with pytest.raises(toolfetch.UnreachableError) as refused:
            offline.publish_from_lockfile(prefix)
        assert f"needs the registry {listener.host}," in str(refused.value)
    assert listener.connections == 0
