"""Mirrors: ``TOOLFETCH_MIRRORS`` first, then the lockfile's ``mirrors``, then upstream; dead
mirrors skipped fast; wrong bytes from any source discarded; a Distribution pull-through
cache serving while upstream is down."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import ocitest
import pytest
from accesslog import LogMark
from ocitest import Registry
from tf import assert_error, assert_ok, host, other_platform, script, tf_main, write_config

MakeRegistry = Callable[..., Registry]
REPO = "acme/tool"


@dataclass
class Setup:
    upstream: Registry
    ti: ocitest.ToolIndex
    lockfile: Path

    def layer(self, platform: str | None = None) -> str:
        return str(self.ti.layers[platform or host()][0]["digest"])

    def fetch(self, cache: Path, *args: str) -> object:
        return tf_main("fetch", "--cache-dir", cache, "--lockfile", self.lockfile, *args)


def setup(make_registry: MakeRegistry, tmp_path: Path, mirrors: list[str] | None = None,
          upstream: Registry | None = None) -> Setup:
    upstream = upstream or make_registry()
    # tar+gzip layers: lock reads no layer blob (an untyped one would be sniffed), only
    # each image's config (its platform must be the one the index claims)
    ti = ocitest.push_tool_index(upstream, REPO, "1", {
        p: ocitest.targz({"tool": (script(f"tool-{p}"), 0o755)})
        for p in (host(), other_platform())})
    ws = tmp_path / "ws"
    config: dict[str, object] = {"tools": {"tool": {"ref": ti.ref, "path": "tool"}}}
    if mirrors is not None:
        config["mirrors"] = {upstream.host: mirrors}
    write_config(ws / "tools.yaml", config)
    assert_ok(tf_main("lock", "--lockfile", ws / "tools.lock.json"))
    return Setup(upstream, ti, ws / "tools.lock.json")


def mirror_of(make_registry: MakeRegistry, s: Setup, prefix: str = "") -> Registry:
    m = make_registry()
    repo = f"{prefix}/{REPO}" if prefix else REPO
    assert_ok(tf_main("copy", "--all-platforms", s.ti.ref, m.ref(repo, "1")))
    return m


def blob_gets(mark: LogMark, digest: str) -> int:
    return mark.count("GET", f"/blobs/{digest}", 200)


def test_mirror_order(make_registry: MakeRegistry, tmp_path: Path,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    upstream = make_registry()
    m_env, m_lock, m_prefix = make_registry(), make_registry(), make_registry()
    s = setup(make_registry, tmp_path, mirrors=[m_lock.host], upstream=upstream)
    assert json.loads(s.lockfile.read_text())["mirrors"] == {upstream.host: [m_lock.host]}
    for m, prefix in ((m_env, ""), (m_lock, ""), (m_prefix, "mirror")):
        assert_ok(tf_main("copy", "--all-platforms", s.ti.ref, m.ref(
            f"{prefix}/{REPO}" if prefix else REPO, "1")))
    regs = {"env": m_env, "lock": m_lock, "prefix": m_prefix, "upstream": upstream}

    def served_by(cache: str) -> list[str]:
        marks = {name: LogMark(r) for name, r in regs.items()}
        assert_ok(s.fetch(tmp_path / cache))
        return [name for name, mk in marks.items() if blob_gets(mk, s.layer())]

    monkeypatch.setenv("TOOLFETCH_MIRRORS", f"{upstream.host}={m_env.host}")
    assert served_by("c1") == ["env"]
    monkeypatch.delenv("TOOLFETCH_MIRRORS")
    assert served_by("c2") == ["lock"]
    monkeypatch.setenv("TOOLFETCH_MIRRORS", f"{upstream.host}={m_prefix.host}/mirror")
    assert served_by("c3") == ["prefix"]
    # a mirror that lacks the content is passed over
    monkeypatch.setenv("TOOLFETCH_MIRRORS", f"{upstream.host}={m_prefix.host}/elsewhere")
    assert served_by("c4") == ["lock"]
    monkeypatch.setenv("TOOLFETCH_MIRRORS", "nonsense")
    assert_error(s.fetch(tmp_path / "c5"), 2, "TOOLFETCH_MIRRORS")


def test_dead_mirror_is_skipped_fast(make_registry: MakeRegistry, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    dead = f"127.0.0.1:{ocitest.free_port()}"
    s = setup(make_registry, tmp_path, mirrors=[dead])
    live = mirror_of(make_registry, s)
    monkeypatch.setenv("TOOLFETCH_MIRRORS", f"{s.upstream.host}={dead},{live.host}")
    mark = LogMark(live)
    start = time.monotonic()
    r = s.fetch(tmp_path / "c1", "--all-platforms")
    assert_ok(r)
    assert time.monotonic() - start < 5, r.stderr
    assert dead in r.stderr  # a warning names the dead mirror
    assert blob_gets(mark, s.layer()) == 1 and blob_gets(mark, s.layer(other_platform())) == 1


def test_wrong_bytes_from_a_mirror_are_discarded(make_registry: MakeRegistry,
                                                 tmp_path: Path) -> None:
    upstream = make_registry()
    bad = make_registry()
    s = setup(make_registry, tmp_path, mirrors=[bad.host], upstream=upstream)
    assert_ok(tf_main("copy", "--all-platforms", s.ti.ref, bad.ref(REPO, "1")))
    ocitest.corrupt_blob(bad, s.layer())
    mark = LogMark(upstream)
    r = s.fetch(tmp_path / "c1")
    assert_ok(r)
    assert "wrong content" in r.stderr and bad.host in r.stderr
    assert blob_gets(mark, s.layer()) == 1
    which = tf_main("which", "--cache-dir", tmp_path / "c1", "--lockfile", s.lockfile, "tool")
    assert Path(which.stdout.strip()).read_bytes() == script(f"tool-{host()}")
    # when every source serves wrong bytes: exit 3, nothing cached
    ocitest.corrupt_blob(upstream, s.layer())
    assert_error(s.fetch(tmp_path / "c2"), 3, "no source served verified content")
    assert not list((tmp_path / "c2").glob("blobs/sha256/*/*/*"))


def test_pull_through_cache_serves_while_upstream_is_down(
        make_registry: MakeRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLFETCH_RETRY_DELAY", "0.05")
    upstream = make_registry()
    proxy = make_registry(proxy_remote=upstream.url)
    s = setup(make_registry, tmp_path, mirrors=[proxy.host], upstream=upstream)
    mark = LogMark(proxy)
    assert_ok(s.fetch(tmp_path / "warm"))  # through the proxy, which caches it
    assert blob_gets(mark, s.layer()) == 1
    # the proxy caches the tag and every manifest (inspect reads them all), no more blobs
    assert_ok(tf_main("inspect", s.ti.ref.replace(upstream.host, proxy.host)))
    for art in s.ti.artifacts.values():  # and the image configs, which lock checks
        ocitest.get_blob(proxy, REPO, art.config["digest"])
        deadline = time.monotonic() + 10  # the proxy stores what it served asynchronously
        while not ocitest.blob_path(proxy, art.config["digest"]).exists():
            assert time.monotonic() < deadline, "the proxy never stored the config"
            time.sleep(0.05)
    upstream.stop()
    r = s.fetch(tmp_path / "cold")
    assert_ok(r)
    which = tf_main("which", "--cache-dir", tmp_path / "cold", "--lockfile", s.lockfile, "tool")
    assert Path(which.stdout.strip()).read_bytes() == script(f"tool-{host()}")
    # lock --check resolves the tag upstream first (down: a warning), then at the mirror
    mark = LogMark(proxy)
    check = tf_main("lock", "--check", "--lockfile", s.lockfile)
    assert_ok(check)
    assert f"source {upstream.host} failed" in check.stderr
    assert "trying the next source" in check.stderr
    assert mark.count("GET", "/manifests/1", 200) >= 1
    # what the proxy never fetched cannot be served: unreachable (6)
    assert_error(s.fetch(tmp_path / "cold2", "--platform", other_platform()), 6)


def test_a_mirror_answering_500_for_one_blob_still_serves_others(
        make_registry: MakeRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pull-through cache with upstream down answers 500 for what it never fetched; that
    must not take it out of the rotation for the content it does have."""
    monkeypatch.setenv("TOOLFETCH_RETRY_DELAY", "0.01")
    upstream = make_registry()
    proxy = make_registry(proxy_remote=upstream.url)
    tools = {}
    for name in ("a-uncached", "b-cached"):
        art = ocitest.image_artifact(host(), [ocitest.targz({"t": (script(name), 0o755)})])
        ocitest.push_artifact(upstream, f"acme/{name}", "1", art)
        tools[name] = {"ref": upstream.ref(f"acme/{name}", "1"), "path": "t"}
    ws = tmp_path / "ws"
    write_config(ws / "tools.yaml", {"mirrors": {upstream.host: [proxy.host]}, "tools": tools})
    lockfile = ws / "tools.lock.json"
    assert_ok(tf_main("lock", "--lockfile", lockfile))
    assert_ok(tf_main("fetch", "--cache-dir", tmp_path / "warm", "--lockfile", lockfile,
                      "b-cached"))
    # Distribution commits what it pulled through just after answering: wait for it, or the
    # proxy rightly answers 500 for b-cached too
    b_platforms = json.loads(lockfile.read_text())["tools"]["b-cached"]["platforms"]
    for entry in b_platforms.values():
        for layer in entry["layers"]:
            hexd = layer["digest"].split(":")[1]
            data = proxy.storage / "docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data"
            deadline = time.monotonic() + 10
            while not data.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
    upstream.stop()
    r = tf_main("fetch", "--jobs", "1", "--lockfile", lockfile)  # a-uncached goes first
    assert_error(r, 6, "a-uncached")
    assert "b-cached" not in r.stderr.partition("error:")[2]
    which = tf_main("which", "--offline", "--lockfile", lockfile, "b-cached")
    assert_ok(which)


@pytest.mark.parametrize(("mapping", "where", "needle"), [
    (["ghcr.io"], "$.mirrors", "expected an object"),
    ({"ghcr.io": "m.local"}, "$.mirrors.ghcr.io", "expected a list"),
    ({"ghcr.io": ["m.local", 7]}, "$.mirrors.ghcr.io[1]", "non-empty string"),
    ({"ghcr.io": ["HTTPS://m.local"]}, "$.mirrors.ghcr.io[0]", "malformed mirror"),
    ({"ghcr.io": ["m.local/a\tb"]}, "$.mirrors.ghcr.io[0]", "malformed mirror"),
    ({"ghcr.io": ["user@m.local"]}, "$.mirrors.ghcr.io[0]", "malformed mirror"),
    ({"ghcr.io": ["oci-layout:"]}, "$.mirrors.ghcr.io[0]", "missing directory"),
])
def test_parse_mirror_map_names_the_file_and_entry(
        tmp_path: Path, mapping: object, where: str, needle: str) -> None:
    from toolfetch.core.errors import UsageError
    from toolfetch.registry.sources import parse_mirror_map

    with pytest.raises(UsageError) as exc:
        parse_mirror_map(mapping, tmp_path, where="tools.lock.json")
    assert str(exc.value).startswith(f"tools.lock.json: {where}: "), str(exc.value)
    assert needle in str(exc.value)
    assert exc.value.exit_code == 2


def test_parse_mirror_map_reads_hosts_prefixes_and_layouts(tmp_path: Path) -> None:
    from toolfetch.registry.sources import parse_mirror_map

    got = parse_mirror_map({"ghcr.io": [" m.local:5000/cache/ ", "oci-layout:rel"]}, tmp_path)
    assert [str(m) for m in got["ghcr.io"][:1]] == ["m.local:5000/cache"]
    assert got["ghcr.io"][1].layout == tmp_path / "rel"


# Issue 24.10: a Docker Hub mirror key spelled as references are never spelled was accepted
# and never used. One line per (where the key is written, how it is spelled).
DOCKER_HUB_KEYS = [("yaml", k) for k in ("docker.io", "index.docker.io", "registry-1.docker.io")
                   ] + [("env", k) for k in ("docker.io", "index.docker.io",
                                             "registry-1.docker.io")]


@pytest.mark.parametrize(("where", "key"), DOCKER_HUB_KEYS)
def test_a_docker_hub_mirror_key_is_used_however_it_is_spelled(
        where: str, key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from toolfetch.core.reference import Reference
    from toolfetch.registry.sources import SourceFactory, parse_mirror_map

    lock_mirrors = {}
    if where == "env":
        monkeypatch.setenv("TOOLFETCH_MIRRORS", f"{key}=oci-layout:{tmp_path}/hub")
    else:
        lock_mirrors = parse_mirror_map({key: ["oci-layout:hub"]}, tmp_path)
    for text in ("alpine:3", "docker.io/library/alpine:3", "index.docker.io/library/alpine:3"):
        labels = [label for label, _ in
                  SourceFactory(lock_mirrors, offline=True).sources(Reference.parse(text))]
        assert labels == [f"oci-layout:{tmp_path}/hub"], (text, labels)


def test_two_spellings_of_docker_hub_as_mirror_keys_are_refused(tmp_path: Path) -> None:
    from toolfetch.core.errors import UsageError
    from toolfetch.registry.sources import parse_mirror_map

    with pytest.raises(UsageError, match=r"'docker\.io' and 'index\.docker\.io' name one registry"):
        parse_mirror_map({"docker.io": ["a:5000"], "index.docker.io": ["b:5000"]}, tmp_path)
