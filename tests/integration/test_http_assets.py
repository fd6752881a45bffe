"""Issue 13: HTTP release assets in tools.yaml, pinned by `lock`, fetched like registry blobs.

Assets come from a loopback HTTP server (tests/support/assetserver.py): plain, redirecting to
another port (another origin), requiring Basic credentials, or cutting the body mid-stream.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import ocitest
import pytest
from assetserver import AssetServer
from tf import (
    assert_error,
    assert_ok,
    cache_blobs,
    cache_trees,
    host,
    run_toolfetch,
    script,
    tf_main,
    write_config,
)

from toolfetch.lock.lockfile import Lockfile

TOOL = script("from-a-release")
ARCHIVE = ocitest.targz({"ruff-1.0/bin/ruff": (TOOL, 0o755), "ruff-1.0/LICENSE": b"MIT\n"})


@pytest.fixture
def server() -> Iterator[AssetServer]:
    s = AssetServer()
    s.files["/releases/1.0/ruff-1.0.tar.gz"] = ARCHIVE
    s.files["/releases/1.0/buf-linux"] = script("buf")
    yield s
    s.close()


@pytest.fixture
def other() -> Iterator[AssetServer]:
    s = AssetServer()
    yield s
    s.close()


def _workspace(tmp_path: Path, tools: dict[str, object]) -> Path:
    write_config(tmp_path / "ws" / "tools.yaml", {"tools": tools})
    return tmp_path / "ws" / "tools.lock.json"


def _archive_tool(server: AssetServer, **extra: object) -> dict[str, object]:
    entry = {"url": server.url("/releases/1.0/ruff-1.0.tar.gz"), "path": "ruff-1.0/bin/ruff",
             **extra}
    return {"version": "1.0", "platforms": {host(): entry}}


def test_lock_pins_sha256_size_and_format_and_says_so(server: AssetServer,
                                                      tmp_path: Path) -> None:
    lockfile = _workspace(tmp_path, {
        "ruff": _archive_tool(server),
        "buf": {"platforms": {host(): {"url": server.url("/releases/1.0/buf-linux")}}},
    })
    r = tf_main("lock", "--lockfile", lockfile)
    assert_ok(r)
    sha = hashlib.sha256(ARCHIVE).hexdigest()
    assert f"pinned sha256:{sha}" in r.stderr and "tool ruff" in r.stderr  # says so
    data = json.loads(lockfile.read_text())
    ruff = data["tools"]["ruff"]["platforms"][host()]
    assert ruff == {
        "urls": [server.url("/releases/1.0/ruff-1.0.tar.gz")], "path": "ruff-1.0/bin/ruff",
        "layers": [{"digest": f"sha256:{sha}", "size": len(ARCHIVE), "unpack": "tar+gzip",
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "title": "ruff-1.0.tar.gz"}]}
    buf = data["tools"]["buf"]["platforms"][host()]
    assert buf["path"] == "buf-linux" and buf["layers"][0]["unpack"] == "raw"  # sniffed
    assert buf["layers"][0]["title"] == "buf-linux"
    Lockfile.load(lockfile)  # the schema accepts what lock wrote
    # the download went into the cache: the fetch that follows needs no request
    before = len(server.requests())
    assert_ok(tf_main("fetch", "--lockfile", lockfile))
    assert len(server.requests()) == before


def test_lock_again_and_check_need_no_network_until_tools_yaml_changes(
        server: AssetServer, tmp_path: Path) -> None:
    lockfile = _workspace(tmp_path, {"ruff": _archive_tool(server)})
    assert_ok(tf_main("lock", "--lockfile", lockfile))
    text = lockfile.read_text()
    before = len(server.requests())
    assert_ok(tf_main("lock", "--lockfile", lockfile))
    assert_ok(tf_main("lock", "--check", "--lockfile", lockfile))
    assert len(server.requests()) == before and lockfile.read_text() == text
    assert_ok(tf_main("lock", "--refresh-assets", "--lockfile", lockfile))  # when asked
    assert len(server.requests()) == before + 1
    server.files["/releases/1.1/ruff-1.1.tar.gz"] = ARCHIVE
    write_config(lockfile.parent / "tools.yaml", {"tools": {"ruff": {"platforms": {host(): {
        "url": server.url("/releases/1.1/ruff-1.1.tar.gz"), "path": "ruff-1.0/bin/ruff"}}}}})
    assert_error(tf_main("lock", "--check", "--lockfile", lockfile), 7, "ruff")
    assert lockfile.read_text() == text


def test_fetch_which_and_run_an_asset(server: AssetServer, tmp_path: Path,
                                      cache_dir: Path) -> None:
    sha = hashlib.sha256(ARCHIVE).hexdigest()
    lockfile = _workspace(tmp_path, {"ruff": _archive_tool(server, sha256=sha.upper())})
    assert_ok(tf_main("lock", "--lockfile", lockfile))
    for blob in cache_blobs(cache_dir).values():  # a fresh machine: nothing cached
        blob.unlink()
    r = tf_main("fetch", "--json", "--lockfile", lockfile)
    assert_ok(r)
    [fetched] = json.loads(r.stdout)
    exe = Path(fetched["path"])
    assert exe.read_bytes() == TOOL and exe.stat().st_mode & stat.S_IXUSR
    assert [s.path for s in server.requests()][-1] == "/releases/1.0/ruff-1.0.tar.gz"
    assert tf_main("which", "--offline", "--lockfile", lockfile, "ruff").stdout.strip() \
        == str(exe)
    r = run_toolfetch("run", "--lockfile", lockfile, "ruff", "--", "x")  # it execs
    assert_ok(r)
    assert r.stdout.splitlines() == ["from-a-release", "arg:x"]
    assert_ok(tf_main("cache", "verify"))


def test_a_wrong_sha256_fails_lock_and_writes_nothing(server: AssetServer,
                                                      tmp_path: Path, cache_dir: Path) -> None:
    lockfile = _workspace(tmp_path, {"ruff": _archive_tool(server, sha256="0" * 64)})
    r = tf_main("lock", "--lockfile", lockfile)
    assert_error(r, 3, "tool ruff", host(), "/releases/1.0/ruff-1.0.tar.gz", "0" * 64)
    assert not lockfile.exists()
    assert cache_blobs(cache_dir) == {}
    assert [p for p in (cache_dir / "tmp").iterdir()] == []


@pytest.mark.parametrize(("entry", "needle"), [
    ({"url": "ftp://example.com/x.tar.gz", "path": "x"}, "ftp://example.com/x.tar.gz"),
    ({"url": "file:///etc/passwd", "path": "x"}, "file:///etc/passwd"),
    ({"url": "https://example.com/x", "sha256": "abc"}, "'abc'"),
    ({"url": "https://example.com/x", "format": "rar"}, "'rar'"),
    ({"urls": [], "path": "x"}, "urls"),
])
def test_bad_asset_entries_are_usage_errors(entry: dict[str, object], needle: str,
                                            tmp_path: Path) -> None:
    lockfile = _workspace(tmp_path, {"t": {"platforms": {host(): entry}}})
    r = tf_main("lock", "--lockfile", lockfile)
    assert_error(r, 2, "tools.yaml", f"$.tools.t.platforms.{host()}", needle)
    assert not lockfile.exists()


def test_a_404_names_tool_platform_and_url(server: AssetServer, tmp_path: Path) -> None:
    lockfile = _workspace(tmp_path, {"t": {"platforms": {host(): {
        "url": server.url("/releases/nope.tar.gz"), "path": "t"}}}})
    assert_error(tf_main("lock", "--lockfile", lockfile), 4, "tool t", host(),
                 "/releases/nope.tar.gz", "HTTP 404")
    assert not lockfile.exists()


def test_fallback_urls_are_tried_in_order(server: AssetServer, tmp_path: Path) -> None:
    urls = [server.url("/gone/ruff-1.0.tar.gz"), server.url("/releases/1.0/ruff-1.0.tar.gz")]
    lockfile = _workspace(tmp_path, {"ruff": {"platforms": {host(): {
        "urls": urls, "path": "ruff-1.0/bin/ruff"}}}})
    assert_ok(tf_main("lock", "--lockfile", lockfile))
    assert json.loads(lockfile.read_text())["tools"]["ruff"]["platforms"][host()]["urls"] \
        == urls
    assert_ok(tf_main("fetch", "--cache-dir", tmp_path / "fresh", "--lockfile", lockfile))


def test_a_redirect_to_another_origin_never_gets_the_credentials(
        server: AssetServer, other: AssetServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    other.files["/storage/blob"] = ARCHIVE
    server.rules.redirects["/releases/2.0/ruff.tar.gz"] = other.url("/storage/blob")
    monkeypatch.setenv("TOOLFETCH_HTTP_AUTH_127_0_0_1", "Bearer s3cr3t-token")
    lockfile = _workspace(tmp_path, {"ruff": {"platforms": {host(): {
        "url": server.url("/releases/2.0/ruff.tar.gz"), "path": "ruff-1.0/bin/ruff"}}}})
    r = tf_main("lock", "--lockfile", lockfile)
    assert_ok(r)
    assert "s3cr3t" not in r.stderr + r.stdout
    assert server.requests()[-1].headers.get("Authorization") == "Bearer s3cr3t-token"
    assert "Authorization" not in other.requests()[-1].headers  # another port: another origin
    r = tf_main("fetch", "--cache-dir", tmp_path / "fresh", "--lockfile", lockfile)
    assert_ok(r)
    assert [s.path for s in other.requests()] == ["/storage/blob"] * 2
    assert all("Authorization" not in s.headers for s in other.requests())


def test_basic_auth_from_netrc(server: AssetServer, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    server.rules.basic["/releases/1.0/ruff-1.0.tar.gz"] = ("ci", "hunter2")
    lockfile = _workspace(tmp_path, {"ruff": _archive_tool(server)})
    r = tf_main("lock", "--lockfile", lockfile)
    assert_error(r, 5, "tool ruff", "HTTP 401", "no credentials")
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login ci password hunter2\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    r = tf_main("lock", "--lockfile", lockfile)
    assert_ok(r)
    assert "hunter2" not in r.stderr
    r = tf_main("fetch", "--cache-dir", tmp_path / "fresh", "--lockfile", lockfile)
    assert_ok(r)
    netrc.write_text("machine 127.0.0.1 login ci password wrong\n")
    r = tf_main("fetch", "--cache-dir", tmp_path / "fresh2", "--lockfile", lockfile)
    assert_error(r, 5, "HTTP 401", "credentials from netrc")
    assert "wrong" not in r.stderr


def test_a_credential_helper_speaking_bazels_protocol(server: AssetServer, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    server.rules.basic["/releases/1.0/ruff-1.0.tar.gz"] = ("u", "p")
    helper = tmp_path / "helper"
    asked = tmp_path / "asked.json"
    helper.write_text("#!/bin/sh\n"
                      f'[ "$1" = get ] || exit 2\ncat > {asked}\n'
                      'echo \'{"headers": {"Authorization": ["Basic dTpw"]}}\'\n')
    helper.chmod(0o755)
    monkeypatch.setenv("TOOLFETCH_CREDENTIAL_HELPER", str(helper))
    lockfile = _workspace(tmp_path, {"ruff": _archive_tool(server)})
    assert_ok(tf_main("lock", "--lockfile", lockfile))
    assert json.loads(asked.read_text()) == {"uri": server.url("/releases/1.0/ruff-1.0.tar.gz")}


def test_a_cut_mid_body_resumes_with_range(server: AssetServer, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    big = os.urandom(3 << 20)
    server.files["/big/tool"] = big
    monkeypatch.setenv("TOOLFETCH_RETRY_DELAY", "0.01")
    lockfile = _workspace(tmp_path, {"tool": {"platforms": {host(): {
        "url": server.url("/big/tool"), "sha256": hashlib.sha256(big).hexdigest()}}}})
    assert_ok(tf_main("lock", "--lockfile", lockfile))
    server.rules.cuts["/big/tool"] = [1 << 20, 1]  # the next response stops after 1 MiB
    fresh = tmp_path / "fresh"
    r = tf_main("fetch", "--json", "--cache-dir", fresh, "--lockfile", lockfile)
    assert_ok(r)
    assert Path(json.loads(r.stdout)[0]["path"]).read_bytes() == big
    ranges = [s.headers.get("Range") for s in server.requests("/big/tool")][-2:]
    assert ranges == [None, f"bytes={1 << 20}-"]


def test_bytes_that_do_not_match_the_lockfile_are_refused(server: AssetServer,
                                                          tmp_path: Path) -> None:
    lockfile = _workspace(tmp_path, {"ruff": _archive_tool(server)})
    assert_ok(tf_main("lock", "--lockfile", lockfile))
    server.files["/releases/1.0/ruff-1.0.tar.gz"] = ARCHIVE[:-1] + b"X"  # replaced upstream
    fresh = tmp_path / "fresh"
    r = tf_main("fetch", "--cache-dir", fresh, "--lockfile", lockfile)
    assert_error(r, 3, "tool ruff", host(), "/releases/1.0/ruff-1.0.tar.gz", "digest mismatch")
    assert cache_blobs(fresh) == {} and cache_trees(fresh) == {}
    server.files["/releases/1.0/ruff-1.0.tar.gz"] = ARCHIVE + b"more"  # longer
    assert_error(tf_main("fetch", "--cache-dir", fresh, "--lockfile", lockfile), 3, "size")


def test_fetch_offline_of_an_uncached_asset_exits_6(server: AssetServer,
                                                     tmp_path: Path) -> None:
    lockfile = _workspace(tmp_path, {"ruff": _archive_tool(server)})
    assert_ok(tf_main("lock", "--lockfile", lockfile))
    before = len(server.requests())
    r = tf_main("fetch", "--offline", "--cache-dir", tmp_path / "fresh", "--lockfile", lockfile)
    assert_error(r, 6, "ruff", "--offline")
    assert len(server.requests()) == before


# ------------------------------------------------------------------------------------------
# through OCI: export / import, publish --from-lockfile, mirrors by sha256
# ------------------------------------------------------------------------------------------


def _mixed_lockfile(server: AssetServer, registry: ocitest.Registry, repo: str,
                    tmp_path: Path, **config: object) -> Path:
    """ruff from a release page, oci-tool from the registry: one lockfile, side by side."""
    art = ocitest.oras_artifact({"oci-tool": script("from-oci")})
    ocitest.push_artifact(registry, repo, "1", art)
    write_config(tmp_path / "ws" / "tools.yaml", {"tools": {
        "ruff": _archive_tool(server),
        "oci-tool": {"ref": registry.ref(repo, "1"), "path": "oci-tool"},
    }, **config})
    lockfile = tmp_path / "ws" / "tools.lock.json"
    assert_ok(tf_main("lock", "--lockfile", lockfile))
    return lockfile


@pytest.mark.usefixtures("need_registry")
def test_export_import_then_fetch_offline(server: AssetServer, registry: ocitest.Registry,
                                          unique_repo: str, tmp_path: Path) -> None:
    import ocischema

    lockfile = _mixed_lockfile(server, registry, unique_repo, tmp_path)
    bundle = tmp_path / "bundle"
    assert_ok(tf_main("export", "--lockfile", lockfile, str(bundle)))
    index = ocischema.validate_layout(bundle)
    names = sorted(d["annotations"]["org.opencontainers.image.ref.name"]
                   for d in index["manifests"])
    assert names == sorted(["asset/ruff", registry.ref(unique_repo, "1")])
    sha = hashlib.sha256(ARCHIVE).hexdigest()
    assert (bundle / "blobs" / "sha256" / sha).read_bytes() == ARCHIVE
    server.close()  # the air-gapped machine: no release host, no registry
    registry.stop()
    try:
        fresh = tmp_path / "air-gapped"
        assert_ok(tf_main("--cache-dir", fresh, "import", str(bundle)))
        r = tf_main("--cache-dir", fresh, "fetch", "--offline", "--json", "--lockfile",
                    lockfile)
        assert_ok(r)
        paths = {f["tool"]: Path(f["path"]).read_bytes() for f in json.loads(r.stdout)}
        assert paths == {"ruff": TOOL, "oci-tool": script("from-oci")}
    finally:
        registry.start()


@pytest.mark.usefixtures("need_registry")
def test_publish_from_lockfile_then_fetch_through_the_registry_as_mirror(
        server: AssetServer, fresh_registry: ocitest.Registry, tmp_path: Path) -> None:
    import ocischema

    reg = fresh_registry
    release_host = f"127.0.0.1:{server.port}"
    lockfile = _mixed_lockfile(server, reg, "acme/oci-tool", tmp_path,
                               mirrors={release_host: [f"{reg.host}/mirror"]})
    r = tf_main("publish", "--from-lockfile", "--lockfile", lockfile, f"{reg.host}/mirror")
    assert_ok(r)
    [line] = r.stdout.splitlines()
    assert line.startswith(f"ruff: {reg.host}/mirror/ruff:1.0@sha256:")
    index = ocischema.validate_manifest(ocitest.get_manifest(reg, "mirror/ruff", "1.0").content)
    assert [m["platform"]["os"] + "/" + m["platform"]["architecture"]
            for m in index["manifests"]] == [host()]
    server.close()  # the release host is gone: the mirror serves the asset by sha256
    fresh = tmp_path / "fresh"
    r = tf_main("--cache-dir", fresh, "fetch", "--json", "--lockfile", lockfile, "ruff")
    assert_ok(r)
    assert Path(json.loads(r.stdout)[0]["path"]).read_bytes() == TOOL
    # skopeo, an independent peer, copies what publish wrote
    skopeo = tmp_path / "skopeo"
    import subprocess

    subprocess.run(["skopeo", "--insecure-policy", "copy", "--all", "--src-tls-verify=false",
                    f"docker://{reg.host}/mirror/ruff:1.0", f"oci:{skopeo}:x"], check=True,
                   capture_output=True)
    assert (skopeo / "blobs" / "sha256" / hashlib.sha256(ARCHIVE).hexdigest()).is_file()


def test_publish_from_lockfile_refuses_registry_tools(server: AssetServer,
                                                      tmp_path: Path) -> None:
    lockfile = _workspace(tmp_path, {"ruff": _archive_tool(server)})
    assert_ok(tf_main("lock", "--lockfile", lockfile))
    data = json.loads(lockfile.read_text())
    r = tf_main("publish", "--from-lockfile", "--lockfile", lockfile, "nope",
                "127.0.0.1:1/mirror")
    assert_error(r, 4, "nope")
    assert json.loads(lockfile.read_text()) == data


def test_bootstrap_writes_launchers_for_assets(server: AssetServer, tmp_path: Path) -> None:
    lockfile = _workspace(tmp_path, {
        "ruff": _archive_tool(server),
        "buf": {"platforms": {host(): {"url": server.url("/releases/1.0/buf-linux")}}},
    })
    assert_ok(tf_main("lock", "--lockfile", lockfile))
    bin_dir = tmp_path / "bin"
    assert_ok(tf_main("bootstrap", "--lockfile", lockfile, "--bin-dir", bin_dir))
    import subprocess

    for tool, out in (("ruff", "from-a-release"), ("buf", "buf")):
        ran = subprocess.run([str(bin_dir / tool), "y"], capture_output=True, text=True,
                             timeout=60)
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.splitlines() == [out, "arg:y"]


def test_an_oci_layout_mirror_serves_an_asset_by_sha256(server: AssetServer, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    lockfile = _workspace(tmp_path, {"ruff": _archive_tool(server)})
    assert_ok(tf_main("lock", "--lockfile", lockfile))
    bundle = tmp_path / "bundle"
    assert_ok(tf_main("export", "--lockfile", lockfile, str(bundle)))
    server.close()
    fresh = tmp_path / "fresh"
    r = tf_main("fetch", "--cache-dir", fresh, "--lockfile", lockfile)
    assert_error(r, 6, "tool ruff", host(), "/releases/1.0/ruff-1.0.tar.gz")
    monkeypatch.setenv("TOOLFETCH_MIRRORS", f"127.0.0.1:{server.port}=oci-layout:{bundle}")
    r = tf_main("fetch", "--offline", "--json", "--cache-dir", fresh, "--lockfile", lockfile)
    assert_ok(r)  # offline: a layout is local
    assert Path(json.loads(r.stdout)[0]["path"]).read_bytes() == TOOL


def test_a_404_at_fetch_names_tool_platform_and_url(server: AssetServer,
                                                    tmp_path: Path) -> None:
    lockfile = _workspace(tmp_path, {"ruff": _archive_tool(server)})
    assert_ok(tf_main("lock", "--lockfile", lockfile))
    del server.files["/releases/1.0/ruff-1.0.tar.gz"]
    fresh = tmp_path / "fresh"
    r = tf_main("fetch", "--cache-dir", fresh, "--lockfile", lockfile)
    assert_error(r, 4, "tool ruff", host(), "/releases/1.0/ruff-1.0.tar.gz", "HTTP 404")
    assert cache_blobs(fresh) == {} and cache_trees(fresh) == {}


def test_lock_upgrade_leaves_asset_tools_alone(server: AssetServer, tmp_path: Path) -> None:
    lockfile = _workspace(tmp_path, {"ruff": _archive_tool(server)})
    assert_ok(tf_main("lock", "--lockfile", lockfile))
    text = lockfile.read_text()
    before = len(server.requests())
    r = tf_main("lock", "--upgrade", "--lockfile", lockfile)
    assert_ok(r)
    assert r.stdout == "" and lockfile.read_text() == text  # `version` is informational
    assert len(server.requests()) == before


def test_no_credential_header_follows_a_redirect_to_another_origin(
        server: AssetServer, other: AssetServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every header a credential helper returns is a secret, not only Authorization."""
    other.files["/storage/blob"] = ARCHIVE
    server.rules.redirects["/releases/3.0/ruff.tar.gz"] = other.url("/storage/blob")
    helper = tmp_path / "helper"
    helper.write_text("#!/bin/sh\ncat >/dev/null\n"
                      'echo \'{"headers": {"PRIVATE-TOKEN": ["s3cr3t"], '
                      '"Authorization": ["Bearer t0ken"]}}\'\n')
    helper.chmod(0o755)
    monkeypatch.setenv("TOOLFETCH_CREDENTIAL_HELPER", str(helper))
    lockfile = _workspace(tmp_path, {"ruff": {"platforms": {host(): {
        "url": server.url("/releases/3.0/ruff.tar.gz"), "path": "ruff-1.0/bin/ruff"}}}})
    r = tf_main("lock", "--lockfile", lockfile)
    assert_ok(r)
    assert server.requests()[-1].headers.get("PRIVATE-TOKEN") == "s3cr3t"
    sent = other.requests()[-1].headers
    assert "PRIVATE-TOKEN" not in sent and "Authorization" not in sent
    assert "s3cr3t" not in r.stderr and "t0ken" not in r.stderr


def test_host_auth_never_shows_its_secret() -> None:
    from toolfetch.registry.httpauth import HostAuth

    auth = HostAuth({"Authorization": "Bearer s3cr3t"}, "$TOOLFETCH_HTTP_AUTH_X")
    assert "s3cr3t" not in repr(auth) and "s3cr3t" not in auth.describe()


def test_a_url_serving_other_bytes_than_the_sha256_is_skipped(server: AssetServer,
                                                              tmp_path: Path) -> None:
    server.files["/stale/ruff-1.0.tar.gz"] = ARCHIVE + b"stale"
    urls = [server.url("/stale/ruff-1.0.tar.gz"), server.url("/releases/1.0/ruff-1.0.tar.gz")]
    sha = hashlib.sha256(ARCHIVE).hexdigest()
    lockfile = _workspace(tmp_path, {"ruff": {"platforms": {host(): {
        "urls": urls, "sha256": sha, "path": "ruff-1.0/bin/ruff"}}}})
    r = tf_main("lock", "--lockfile", lockfile)
    assert_ok(r)
    assert "/stale/ruff-1.0.tar.gz" in r.stderr  # said, as a warning
    [layer] = json.loads(lockfile.read_text())["tools"]["ruff"]["platforms"][host()]["layers"]
    assert layer["digest"] == f"sha256:{sha}" and layer["size"] == len(ARCHIVE)


def test_a_known_sha256_in_the_cache_is_not_downloaded_again(server: AssetServer,
                                                            tmp_path: Path) -> None:
    sha = hashlib.sha256(ARCHIVE).hexdigest()
    lockfile = _workspace(tmp_path, {"ruff": _archive_tool(server, sha256=sha)})
    assert_ok(tf_main("lock", "--lockfile", lockfile))
    before = len(server.requests())
    # another entry (a new path): no pin to reuse, but the cache has the blob
    write_config(lockfile.parent / "tools.yaml", {"tools": {"ruff": {"platforms": {host(): {
        "url": server.url("/releases/1.0/ruff-1.0.tar.gz"), "sha256": sha,
        "path": "ruff-1.0/LICENSE"}}}}})
    assert_ok(tf_main("lock", "--lockfile", lockfile))
    assert len(server.requests()) == before
    entry = json.loads(lockfile.read_text())["tools"]["ruff"]["platforms"][host()]
    assert entry["path"] == "ruff-1.0/LICENSE" and entry["layers"][0]["unpack"] == "tar+gzip"
