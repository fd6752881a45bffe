"""Independent OCI test helpers: a real CNCF Distribution registry plus push/build helpers.

This module deliberately does NOT import toolfetch: it is a second, independent
implementation of the bits of the distribution API that the integration tests need, so
that it can cross-check toolfetch.  Only ``requests`` and the standard library are used.

Typical use::

    with Registry() as reg:
        idx = push_tool_index(reg, "acme/protoc", "25.1", {"linux/amd64": {"protoc": b"..."}})
        assert skopeo_inspect_raw(reg, "acme/protoc", "25.1") == idx.index_bytes

Facts about Distribution 2.8 worth knowing (all verified by tests/test_fixtures_registry.py):

* Content negotiation for manifests (GET and HEAD alike):
  - an OCI index / OCI manifest is served only if its exact media type is in ``Accept`` —
    **even when asked for by digest**; otherwise 404 MANIFEST_UNKNOWN "OCI index found,
    but accept header does not support OCI indexes" (``*/*`` does not count, and an
    Accept listing only the OCI manifest type does not get you an index);
  - Docker types asked for by digest are served as stored, whatever ``Accept`` says;
  - a Docker manifest list asked for by tag without the list type in ``Accept`` is
    replaced by its linux/amd64 manifest, and a schema-2 manifest asked for by tag without
    schema 2 in ``Accept`` is down-converted to schema 1 (400 MANIFEST_INVALID "empty
    history" for configs without ``history``).
* The ``Content-Type`` of a manifest response is the media type it was PUT with, and
  ``Docker-Content-Digest`` is always sent — for blobs too, even when the stored bytes no
  longer match it (see :func:`corrupt_blob`).
* Every blob a manifest references (config included) and every manifest an index
  references must already exist, or the manifest PUT fails with 400 MANIFEST_BLOB_UNKNOWN.
* The PUT ``Content-Type`` must agree with the manifest's ``mediaType`` field (else 400
  MANIFEST_INVALID).  There is no OCI 1.1 referrers endpoint (``/referrers/`` is a 404).
* ``GET /v2/<repo>/tags/list`` of a repository holding blobs and untagged manifests but no
  tag answers 404 NAME_UNKNOWN, not ``{"tags": []}``.
* The registry reads ``REGISTRY_*`` environment variables as configuration overrides
  (``REGISTRY_AUTH_FILE`` would become ``auth: {file: …}``), so :class:`Registry` starts it
  with those variables removed.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests
from loopback import LoopbackHTTPServer

# --------------------------------------------------------------------------------------
# Media types
# --------------------------------------------------------------------------------------

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_TAR_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
ZIP = "application/zip"
OCTET_STREAM = "application/octet-stream"

#: What ``oras push file`` uses for a file without an explicit ``:type``.
ORAS_DEFAULT_LAYER_MEDIA_TYPE = OCI_LAYER_TAR
#: Default artifactType for tool artifacts built here.
TOOL_ARTIFACT_TYPE = "application/vnd.toolfetch.tool.v1"
TITLE = "org.opencontainers.image.title"
REF_NAME = "org.opencontainers.image.ref.name"

EMPTY_JSON = b"{}"
#: Everything the tests' GETs accept (the same list toolfetch sends).
ACCEPT_ALL = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST])

REGISTRY_BIN = "docker-registry"
HTTP_TIMEOUT = 30.0

Descriptor = dict[str, Any]


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of *data*."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(
    data: bytes, media_type: str, annotations: Mapping[str, str] | None = None
) -> Descriptor:
    """An OCI descriptor for *data* (key order: mediaType, digest, size, annotations)."""
    d: Descriptor = {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data)}
    if annotations:
        d["annotations"] = dict(annotations)
    return d


def encode_json(obj: Any) -> bytes:
    """Serialise a manifest the way Docker does (3-space indent, no trailing newline).

    Deliberately not the compact form, so a client that re-serialises instead of keeping
    the registry's bytes gets a different digest.
    """
    return json.dumps(obj, indent=3).encode()


# --------------------------------------------------------------------------------------
# Ports, processes
# --------------------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on *host*."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_is_open(host: str, port: int, timeout: float = 0.2) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def _pdeathsig() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _registry_env() -> dict[str, str]:
    # Distribution maps REGISTRY_<SECTION>_<KEY> env vars onto its configuration.
    return {k: v for k, v in os.environ.items() if not k.upper().startswith("REGISTRY_")}


def session(verify: bool = True) -> requests.Session:
    """A requests session that ignores proxy variables and ~/.netrc (``verify=False``: for a
    self-signed test registry, without InsecureRequestWarning noise)."""
    s = requests.Session()
    s.trust_env = False
    if not verify:
        import urllib3

        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        s.verify = False
    return s


def self_signed_cert(directory: Path, ip: str) -> tuple[Path, Path]:
    """A throwaway certificate (and key) for ``ip``, as PEM files in ``directory``."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ocitest")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(
                ipaddress.ip_address(ip))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


_live: set[Registry] = set()
_live_lock = threading.Lock()


def stop_all_registries() -> None:
    """Stop every Registry still running in this process (conftest calls it at exit)."""
    with _live_lock:
        regs = list(_live)
    for r in regs:
        r.stop()


class RegistryError(RuntimeError):
    pass


class Registry:
    """A CNCF Distribution (``docker-registry serve``) on 127.0.0.1 with its own storage.

    The registry starts in ``__init__`` (unless ``start=False``).  ``stop()`` kills it but
    keeps storage and port; ``start()`` brings it back on the same port with the same
    storage; ``close()`` (or leaving the ``with`` block) stops it and removes its temp dir
    when it created that dir itself.
    """

    def __init__(
        self,
        *,
        workdir: str | os.PathLike[str] | None = None,
        port: int | None = None,
        htpasswd: tuple[str, str] | Sequence[tuple[str, str]] | None = None,
        proxy_remote: str | None = None,
        proxy_auth: tuple[str, str] | None = None,
        token_auth: Mapping[str, Any] | None = None,
        extra_config: Mapping[str, Any] | None = None,
        tls: bool = False,
        start: bool = True,
        startup_timeout: float = 20.0,
    ) -> None:
        if shutil.which(REGISTRY_BIN) is None:
            raise RegistryError(
                f"{REGISTRY_BIN} not found on PATH (apt-get install docker-registry)"
            )
        if htpasswd is not None and token_auth is not None:
            raise ValueError("htpasswd and token_auth are mutually exclusive")
        self._owns_dir = workdir is None
        self.dir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="ocitest-registry-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.storage = self.dir / "storage"
        self.storage.mkdir(exist_ok=True)
        self.config_path = self.dir / "config.yml"
        self.log_path = self.dir / "registry.log"
        self._fixed_port = port is not None
        self.port = port if port is not None else free_port()
        self.users: list[tuple[str, str]] = []
        if htpasswd is not None:
            if isinstance(htpasswd, tuple) and len(htpasswd) == 2 and isinstance(htpasswd[0], str):
                self.users = [(str(htpasswd[0]), str(htpasswd[1]))]
            else:
                self.users = [(str(u), str(p)) for u, p in htpasswd]
        self.proxy_remote = proxy_remote
        self.proxy_auth = proxy_auth
        self.token_auth = dict(token_auth) if token_auth is not None else None
        self.extra_config = dict(extra_config or {})
        self.tls = tls
        if tls:
            self.cert_path, self.key_path = self_signed_cert(self.dir, "127.0.0.1")
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None
        self._write_config()
        if start:
            self.start()

    # ---- identity -------------------------------------------------------------------
    @property
    def host(self) -> str:
        """``127.0.0.1:PORT`` — the registry part of a reference."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (``https://`` with ``tls=True``)."""
        return f"{'https' if self.tls else 'http'}://{self.host}"

    @property
    def auth(self) -> tuple[str, str] | None:
        """The first htpasswd user, for ``requests`` (``auth=reg.auth``)."""
        return self.users[0] if self.users else None

    def ref(self, repo: str, ref: str = "latest") -> str:
        """``127.0.0.1:PORT/repo:tag`` or ``…/repo@sha256:…``."""
        sep = "@" if ref.startswith("sha256:") else ":"
        return f"{self.host}/{repo}{sep}{ref}"

    def __repr__(self) -> str:
        return f"<Registry {self.url} storage={self.storage} running={self.running}>"

    # ---- configuration --------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """The Distribution configuration this registry runs with."""
        cfg: dict[str, Any] = {
            "version": "0.1",
            "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage)},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {
                "addr": f"127.0.0.1:{self.port}",
                # fixed secret: upload state survives a restart
                "secret": "ocitest-not-a-secret",
                "headers": {"X-Content-Type-Options": ["nosniff"]},
            },
        }
        if self.tls:
            cfg["http"]["tls"] = {"certificate": str(self.cert_path), "key": str(self.key_path)}
        if self.users:
            htpasswd_path = self.dir / "htpasswd"
            lines = []
            for user, password in self.users:
                out = subprocess.run(
                    ["htpasswd", "-Bbn", user, password],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout.strip()
                lines.append(out)
            htpasswd_path.write_text("\n".join(lines) + "\n")
            cfg["auth"] = {"htpasswd": {"realm": "ocitest", "path": str(htpasswd_path)}}
        if self.token_auth is not None:
            cfg["auth"] = {"token": dict(self.token_auth)}
        if self.proxy_remote is not None:
            proxy: dict[str, str] = {"remoteurl": self.proxy_remote}
            if self.proxy_auth is not None:
                proxy["username"], proxy["password"] = self.proxy_auth
            cfg["proxy"] = proxy
        return _deep_merge(cfg, self.extra_config)

    def _write_config(self) -> None:
        # YAML is a superset of JSON: no YAML library needed.
        self.config_path.write_text(json.dumps(self.config(), indent=2) + "\n")

    # ---- lifecycle ------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self) -> Registry:
        """Start (or restart) on the same port and storage; wait until ``GET /v2/`` answers."""
        if self.running:
            return self
        attempts = 1 if self._fixed_port else 5
        last: Exception | None = None
        for _ in range(attempts):
            try:
                self._start_once()
                return self
            except RegistryError as e:
                last = e
                if "address already in use" not in str(e) or self._fixed_port:
                    break
                self.port = free_port()
                self._write_config()
        assert last is not None
        raise last

    def _start_once(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        # A just-stopped registry on our port (restart) or someone else's: wait a little.
        while port_is_open("127.0.0.1", self.port) and time.monotonic() < deadline:
            time.sleep(0.05)
        self._write_config()
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        main = threading.current_thread() is threading.main_thread()
        self.proc = subprocess.Popen(
            [REGISTRY_BIN, "serve", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            cwd=self.dir,
            env=_registry_env(),
            start_new_session=True,
            # PDEATHSIG is per parent *thread*: only safe from the main thread.
            preexec_fn=_pdeathsig if main else None,
        )
        with _live_lock:
            _live.add(self)
        s = session(verify=not self.tls)
        try:
            while True:
                if self.proc.poll() is not None:
                    rc = self.proc.returncode
                    self._reap()
                    raise RegistryError(
                        f"docker-registry exited with {rc} during startup "
                        f"(config {self.config_path}):\n{self.log_tail(since_start=True)}"
                    )
                try:
                    r = s.get(self.url + "/v2/", timeout=1.0)
                    if r.status_code in (200, 401):
                        return
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline:
                    self._kill()
                    raise RegistryError(
                        f"docker-registry did not answer GET /v2/ on {self.url} within "
                        f"{self.startup_timeout}s:\n{self.log_tail(since_start=True)}"
                    )
                time.sleep(0.05)
        finally:
            s.close()

    def _kill(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        self._reap()

    def _reap(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(Exception):
                self.proc.wait(timeout=5)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        with _live_lock:
            _live.discard(self)

    def stop(self) -> None:
        """Kill the registry process (storage and port are kept for ``start()``)."""
        self._kill()
        # wait until the port is really closed so "registry down" is deterministic
        deadline = time.monotonic() + 5
        while port_is_open("127.0.0.1", self.port) and time.monotonic() < deadline:
            time.sleep(0.02)

    def close(self) -> None:
        """Stop, and remove the temp dir if this object created it."""
        self.stop()
        if self._owns_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Registry:
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # last resort: never leak a process
        with contextlib.suppress(Exception):
            self._kill()

    def log_tail(self, lines: int = 40, since_start: bool = False) -> str:
        """The last *lines* lines of the registry log."""
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return "(no log)"
        if since_start:
            data = data[getattr(self, "_log_offset", 0) :]
        return "\n".join(data.decode(errors="replace").splitlines()[-lines:])

    # ---- HTTP -----------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        auth: tuple[str, str] | bool | None = True,
        **kw: Any,
    ) -> requests.Response:
        """An HTTP request to ``self.url + path`` (or an absolute URL).

        ``auth=True`` (default) uses the first htpasswd user if any; ``None``/``False``
        sends no credentials; a tuple uses those.
        """
        url = path if path.startswith(("http://", "https://")) else self.url + path
        if auth is True:
            auth = self.auth
        elif auth is False:
            auth = None
        kw.setdefault("timeout", HTTP_TIMEOUT)
        with session(verify=not self.tls) as s:
            return s.request(method, url, auth=auth, **kw)


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        elif v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


# --------------------------------------------------------------------------------------
# Distribution API: push / get
# --------------------------------------------------------------------------------------


def _check(r: requests.Response, what: str, ok: tuple[int, ...]) -> requests.Response:
    if r.status_code not in ok:
        raise RegistryError(f"{what}: HTTP {r.status_code} {r.text[:500]}")
    return r


def push_blob(
    reg: Registry,
    repo: str,
    data: bytes,
    media_type: str = OCTET_STREAM,
    annotations: Mapping[str, str] | None = None,
) -> Descriptor:
    """Monolithic upload (POST, then PUT ``?digest=``); returns the blob's descriptor."""
    desc = descriptor(data, media_type, annotations)
    r = _check(reg.request("POST", f"/v2/{repo}/blobs/uploads/"), f"POST upload {repo}", (202,))
    location = urljoin(reg.url + "/", r.headers["Location"])
    sep = "&" if "?" in location else "?"
    r = reg.request(
        "PUT",
        f"{location}{sep}digest={desc['digest']}",
        data=data,
        headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(data))},
    )
    _check(r, f"PUT blob {desc['digest']} to {repo}", (201,))
    served = r.headers.get("Docker-Content-Digest")
    if served is not None and served != desc["digest"]:
        raise RegistryError(f"registry stored blob as {served}, expected {desc['digest']}")
    return desc


def push_manifest(
    reg: Registry,
    repo: str,
    ref: str,
    obj_or_bytes: Mapping[str, Any] | bytes,
    media_type: str | None = None,
) -> str:
    """PUT a manifest (dict → :func:`encode_json`, bytes as-is) under a tag or digest.

    *media_type* defaults to the manifest's ``mediaType`` field.  Returns its digest.
    """
    if isinstance(obj_or_bytes, bytes | bytearray):
        body = bytes(obj_or_bytes)
    else:
        body = encode_json(obj_or_bytes)
    if media_type is None:
        media_type = json.loads(body).get("mediaType")
        if not media_type:
            raise ValueError("manifest has no mediaType: pass media_type=")
    digest = sha256_digest(body)
    r = reg.request(
        "PUT",
        f"/v2/{repo}/manifests/{ref}",
        data=body,
        headers={"Content-Type": media_type},
    )
    _check(r, f"PUT manifest {repo}:{ref}", (201,))
    served = r.headers.get("Docker-Content-Digest")
    if served is not None and served != digest:
        raise RegistryError(f"registry stored manifest as {served}, expected {digest}")
    return digest


def get_manifest(
    reg: Registry,
    repo: str,
    ref: str,
    accept: str | None = ACCEPT_ALL,
    auth: tuple[str, str] | bool | None = True,
) -> requests.Response:
    """Raw GET of a manifest (no status check; ``accept=None`` sends no Accept header)."""
    headers: dict[str, str | None] = {"Accept": accept}  # None removes requests' default
    return reg.request("GET", f"/v2/{repo}/manifests/{ref}", headers=headers, auth=auth)


def get_blob(reg: Registry, repo: str, digest: str) -> bytes:
    """The blob's bytes as the registry serves them (not verified: see corrupt_blob)."""
    r = reg.request("GET", f"/v2/{repo}/blobs/{digest}")
    _check(r, f"GET blob {repo}@{digest}", (200,))
    return r.content


def tag_exists(reg: Registry, repo: str, tag: str) -> bool:
    r = reg.request("HEAD", f"/v2/{repo}/manifests/{tag}", headers={"Accept": ACCEPT_ALL})
    return r.status_code == 200


def list_tags(reg: Registry, repo: str) -> list[str]:
    """The repository's tags; [] when it has none (Distribution then answers 404 NAME_UNKNOWN)."""
    r = reg.request("GET", f"/v2/{repo}/tags/list")
    if r.status_code == 404 and "NAME_UNKNOWN" in r.text:
        return []
    _check(r, f"tags of {repo}", (200,))
    return list(r.json().get("tags") or [])


# --------------------------------------------------------------------------------------
# Archive builders (deterministic)
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Symlink:
    target: str


@dataclasses.dataclass(frozen=True)
class Hardlink:
    target: str


@dataclasses.dataclass(frozen=True)
class Special:
    """A device or fifo member: ``kind`` is tarfile.CHRTYPE, BLKTYPE or FIFOTYPE."""

    kind: bytes = tarfile.FIFOTYPE


TarValue = bytes | tuple[bytes, int] | Symlink | Hardlink | Special
FileValue = bytes | tuple[bytes, int]


def _file_and_mode(v: FileValue, default_mode: int) -> tuple[bytes, int]:
    if isinstance(v, tuple):
        return bytes(v[0]), int(v[1])
    return bytes(v), default_mode


def tarbytes(files: Mapping[str, TarValue]) -> bytes:
    """A deterministic uncompressed tar, members in the given order, names verbatim.

    Values: ``bytes`` (mode 0o644), ``(bytes, mode)``, :class:`Symlink`, :class:`Hardlink`,
    :class:`Special`; a name ending in ``/`` is a directory (value ``(b"", mode)`` or
    anything, default 0o755).  Names are not sanitised, so ``../x`` and ``/abs`` work for
    unpack-safety tests.
    """
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, value in files.items():
            info = tarfile.TarInfo(name.rstrip("/") if name.endswith("/") and name != "/" else name)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            payload: bytes | None = None
            if name.endswith("/"):
                info.type = tarfile.DIRTYPE
                info.mode = value[1] if isinstance(value, tuple) else 0o755
            elif isinstance(value, Symlink):
                info.type = tarfile.SYMTYPE
                info.linkname = value.target
                info.mode = 0o777
            elif isinstance(value, Hardlink):
                info.type = tarfile.LNKTYPE
                info.linkname = value.target
                info.mode = 0o644
            elif isinstance(value, Special):
                info.type = value.kind
                info.mode = 0o644
            else:
                payload, info.mode = _file_and_mode(value, 0o644)
                info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload) if payload is not None else None)
    return buf.getvalue()


def gzipbytes(data: bytes) -> bytes:
    """Deterministic gzip (mtime 0, no file name)."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=6) as gz:
        gz.write(data)
    return buf.getvalue()


def targz(files: Mapping[str, TarValue]) -> bytes:
    """Deterministic ``.tar.gz`` bytes; see :func:`tarbytes` for the *files* format."""
    return gzipbytes(tarbytes(files))


def zipbytes(files: Mapping[str, FileValue]) -> bytes:
    """Deterministic zip (fixed timestamps, unix modes); values ``bytes`` or ``(bytes, mode)``.

    A name ending in ``/`` is a directory.
    """
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, value in files.items():
            zi = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            zi.create_system = 3  # unix, so external_attr carries the mode
            if name.endswith("/"):
                mode = value[1] if isinstance(value, tuple) else 0o755
                zi.external_attr = ((0o040000 | mode) << 16) | 0x10
                zf.writestr(zi, b"")
            else:
                data, mode = _file_and_mode(value, 0o644)
                zi.external_attr = (0o100000 | mode) << 16
                zi.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(zi, data)
    return buf.getvalue()


def media_type_for(title: str) -> str:
    """A layer media type guessed from a file name (octet-stream for raw files)."""
    t = title.lower()
    if t.endswith((".tar.gz", ".tgz")):
        return OCI_LAYER_TAR_GZIP
    if t.endswith((".tar.zst", ".tar.zstd", ".tzst")):
        return OCI_LAYER_TAR_ZSTD
    if t.endswith(".tar"):
        return OCI_LAYER_TAR
    if t.endswith(".zip"):
        return ZIP
    return OCTET_STREAM


# --------------------------------------------------------------------------------------
# Manifest builders
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class Artifact:
    """A manifest plus every blob it references, not yet pushed."""

    manifest: dict[str, Any]
    blobs: dict[str, bytes]  # digest -> bytes (config included)
    media_type: str = OCI_MANIFEST

    @property
    def manifest_bytes(self) -> bytes:
        return encode_json(self.manifest)

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest_bytes)

    @property
    def size(self) -> int:
        return len(self.manifest_bytes)

    @property
    def layers(self) -> list[Descriptor]:
        return list(self.manifest["layers"])

    @property
    def config(self) -> Descriptor:
        return dict(self.manifest["config"])

    def descriptor(self, platform: str | None = None) -> Descriptor:
        d: Descriptor = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if platform is not None:
            d["platform"] = parse_platform(platform)
        return d


def oras_artifact(
    files: Mapping[str, bytes],
    artifact_type: str | None = TOOL_ARTIFACT_TYPE,
    layer_media_type: str | Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> Artifact:
    """An ORAS-style OCI manifest: empty config ``{}`` and one layer per file.

    Each layer carries ``org.opencontainers.image.title``.  *layer_media_type*: one type
    for every layer, a per-title mapping, or None to guess from the title
    (:func:`media_type_for`; pass :data:`ORAS_DEFAULT_LAYER_MEDIA_TYPE` to mimic the oras
    CLI, which labels every plain file ``…layer.v1.tar``).  ``artifact_type=None`` omits
    ``artifactType`` (pre-1.1 style).
    """
    blobs: dict[str, bytes] = {sha256_digest(EMPTY_JSON): EMPTY_JSON}
    layers: list[Descriptor] = []
    for title, data in files.items():
        if isinstance(layer_media_type, Mapping):
            mt = layer_media_type.get(title) or media_type_for(title)
        else:
            mt = layer_media_type or media_type_for(title)
        d = descriptor(bytes(data), mt, {TITLE: title})
        blobs[d["digest"]] = bytes(data)
        layers.append(d)
    manifest: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_MANIFEST}
    if artifact_type is not None:
        manifest["artifactType"] = artifact_type
    manifest["config"] = descriptor(EMPTY_JSON, OCI_EMPTY)
    manifest["layers"] = layers
    if annotations:
        manifest["annotations"] = dict(annotations)
    return Artifact(manifest=manifest, blobs=blobs)


def parse_platform(platform: str) -> dict[str, str]:
    """``os/arch[/variant]`` → an OCI platform object (key order: architecture, os, variant)."""
    parts = platform.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError(f"bad platform {platform!r}: want os/arch[/variant]")
    p = {"architecture": parts[1], "os": parts[0]}
    if len(parts) == 3:
        p["variant"] = parts[2]
    return p


def _diff_id(layer: bytes) -> str:
    if layer[:2] == b"\x1f\x8b":
        with contextlib.suppress(OSError, EOFError):
            return sha256_digest(gzip.decompress(layer))
    return sha256_digest(layer)


def image_artifact(
    platform: str,
    layers: Sequence[bytes],
    docker: bool = False,
    layer_media_type: str | None = None,
    titles: Sequence[str] | None = None,
) -> Artifact:
    """A container-image style manifest (real image config with os/architecture/rootfs).

    OCI by default, Docker schema 2 with ``docker=True``.  Layers default to gzip tar
    media types; *titles* (one per layer) add ``org.opencontainers.image.title``.
    """
    plat = parse_platform(platform)
    config_obj: dict[str, Any] = {
        "architecture": plat["architecture"],
        "os": plat["os"],
        **({"variant": plat["variant"]} if "variant" in plat else {}),
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [_diff_id(x) for x in layers]},
    }
    config = json.dumps(config_obj, sort_keys=True).encode()
    lmt = layer_media_type or (DOCKER_LAYER_GZIP if docker else OCI_LAYER_TAR_GZIP)
    blobs = {sha256_digest(config): config}
    descs = []
    for i, data in enumerate(layers):
        ann = {TITLE: titles[i]} if titles else None
        d = descriptor(bytes(data), lmt, ann)
        blobs[d["digest"]] = bytes(data)
        descs.append(d)
    mt = DOCKER_MANIFEST if docker else OCI_MANIFEST
    manifest = {
        "schemaVersion": 2,
        "mediaType": mt,
        "config": descriptor(config, DOCKER_CONFIG if docker else OCI_CONFIG),
        "layers": descs,
    }
    return Artifact(manifest=manifest, blobs=blobs, media_type=mt)


def index_manifest(
    entries: Sequence[Descriptor],
    docker: bool = False,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """An OCI image index (or, ``docker=True``, a Docker manifest list) of *entries*."""
    idx: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST_LIST if docker else OCI_INDEX,
        "manifests": [dict(e) for e in entries],
    }
    if annotations:
        idx["annotations"] = dict(annotations)
    return idx


def push_artifact(reg: Registry, repo: str, ref: str | None, artifact: Artifact) -> str:
    """Push every blob of *artifact*, then its manifest under *ref* (default: its digest)."""
    for data in artifact.blobs.values():
        push_blob(reg, repo, data)
    return push_manifest(
        reg, repo, ref or artifact.digest, artifact.manifest_bytes, artifact.media_type
    )


@dataclasses.dataclass
class ToolIndex:
    """What :func:`push_tool_index` pushed."""

    host: str
    repo: str
    tag: str
    index_digest: str
    index_bytes: bytes
    media_type: str
    manifests: dict[str, str]  # platform -> manifest digest
    manifest_bytes: dict[str, bytes]  # platform -> manifest bytes
    layers: dict[str, list[Descriptor]]  # platform -> layer descriptors
    artifacts: dict[str, Artifact]

    @property
    def ref(self) -> str:
        """``127.0.0.1:PORT/repo:tag``."""
        return f"{self.host}/{self.repo}:{self.tag}"

    @property
    def platforms(self) -> list[str]:
        return list(self.manifests)


PlatformContent = Mapping[str, bytes] | bytes | Artifact


def push_tool_index(
    reg: Registry,
    repo: str,
    tag: str,
    per_platform: Mapping[str, PlatformContent],
    docker: bool = False,
    artifact_type: str | None = TOOL_ARTIFACT_TYPE,
    layer_media_type: str | Mapping[str, str] | None = None,
) -> ToolIndex:
    """One manifest per platform plus an index tagged *tag*.

    Per platform value:

    * ``dict[title, bytes]`` — OCI: an ORAS artifact with one layer per file
      (:func:`oras_artifact`); Docker: one ``rootfs.diff.tar.gzip`` layer holding the files
      (mode 0o755) in a real image config.
    * ``bytes`` — a single tar.gz layer in an image-style manifest (OCI or Docker).
    * :class:`Artifact` — pushed as built (must match *docker*).

    The index is an OCI image index, or with ``docker=True`` a Docker manifest list, with
    ``platform`` fields (``linux/arm/v7`` → ``variant: v7``).
    """
    arts: dict[str, Artifact] = {}
    for plat, content in per_platform.items():
        parse_platform(plat)
        if isinstance(content, Artifact):
            art = content
        elif isinstance(content, bytes | bytearray):
            art = image_artifact(plat, [bytes(content)], docker=docker)
        elif docker:
            layer = targz({name: (data, 0o755) for name, data in content.items()})
            art = image_artifact(plat, [layer], docker=True)
        else:
            art = oras_artifact(
                content, artifact_type=artifact_type, layer_media_type=layer_media_type
            )
        arts[plat] = art
        push_artifact(reg, repo, None, art)
    idx = index_manifest([a.descriptor(p) for p, a in arts.items()], docker=docker)
    idx_bytes = encode_json(idx)
    digest = push_manifest(reg, repo, tag, idx_bytes, idx["mediaType"])
    return ToolIndex(
        host=reg.host,
        repo=repo,
        tag=tag,
        index_digest=digest,
        index_bytes=idx_bytes,
        media_type=idx["mediaType"],
        manifests={p: a.digest for p, a in arts.items()},
        manifest_bytes={p: a.manifest_bytes for p, a in arts.items()},
        layers={p: a.layers for p, a in arts.items()},
        artifacts=arts,
    )


# --------------------------------------------------------------------------------------
# Storage tampering
# --------------------------------------------------------------------------------------


def blob_path(reg: Registry, digest: str) -> Path:
    """The blob's data file in the registry's filesystem storage."""
    algo, _, hexd = digest.partition(":")
    if algo != "sha256" or len(hexd) != 64:
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return (
        reg.storage / "docker" / "registry" / "v2" / "blobs" / "sha256" / hexd[:2] / hexd / "data"
    )


def corrupt_blob(reg: Registry, digest: str, offset: int | None = None) -> Path:
    """Flip one byte (default: the middle one) of the stored blob; size stays the same.

    The registry keeps serving it under the old digest (and ``Docker-Content-Digest``)
    with the same Content-Length: only a client that hashes notices.
    """
    path = blob_path(reg, digest)
    data = bytearray(path.read_bytes())
    if not data:
        raise ValueError(f"cannot corrupt empty blob {digest}")
    i = len(data) // 2 if offset is None else offset
    data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def delete_blob_file(reg: Registry, digest: str) -> Path:
    """Remove the stored blob's data file (the registry then answers 404 for it)."""
    path = blob_path(reg, digest)
    path.unlink()
    return path


# --------------------------------------------------------------------------------------
# skopeo
# --------------------------------------------------------------------------------------


def skopeo(
    *args: str, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[bytes]:
    """Run ``skopeo ARGS…``; on failure raise with its stderr."""
    p = subprocess.run(["skopeo", *args], capture_output=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RegistryError(
            f"skopeo {' '.join(args)} failed ({p.returncode}):\n{p.stderr.decode(errors='replace')}"
        )
    return p


def _creds(reg: Registry, creds: tuple[str, str] | bool | None) -> tuple[str, str] | None:
    if creds is True:
        return reg.auth
    if creds is False:
        return None
    return creds


def skopeo_inspect_raw(
    reg: Registry, repo: str, ref: str, creds: tuple[str, str] | bool | None = True
) -> bytes:
    """``skopeo inspect --raw --tls-verify=false docker://HOST/repo:ref`` (exact bytes)."""
    c = _creds(reg, creds)
    args = ["inspect", "--raw", "--tls-verify=false"]
    if c is not None:
        args += ["--creds", f"{c[0]}:{c[1]}"]
    else:
        args += ["--no-creds"]
    return skopeo(*args, f"docker://{reg.ref(repo, ref)}").stdout


def skopeo_copy(
    src: str,
    dst: str,
    *,
    all_platforms: bool = True,
    src_creds: tuple[str, str] | None = None,
    dest_creds: tuple[str, str] | None = None,
) -> None:
    """``skopeo copy`` between any transports (docker://, dir:, oci:DIR:TAG), digests kept."""
    args = ["--insecure-policy", "copy", "--src-tls-verify=false", "--dest-tls-verify=false"]
    args += ["--preserve-digests", "--quiet"]
    if all_platforms:
        args += ["--all"]
    if src_creds is not None:
        args += ["--src-creds", f"{src_creds[0]}:{src_creds[1]}"]
    if dest_creds is not None:
        args += ["--dest-creds", f"{dest_creds[0]}:{dest_creds[1]}"]
    skopeo(*args, src, dst)


def skopeo_copy_to_dir(
    reg: Registry,
    repo: str,
    ref: str,
    dest: str | os.PathLike[str],
    *,
    all_platforms: bool = False,
    creds: tuple[str, str] | bool | None = True,
) -> Path:
    """``skopeo copy docker://HOST/repo:ref dir:DEST``; returns DEST.

    The ``dir:`` layout holds ``manifest.json`` (the manifest as served, byte-exact) and
    one file per blob named by its hex digest.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    skopeo_copy(
        f"docker://{reg.ref(repo, ref)}",
        f"dir:{dest}",
        all_platforms=all_platforms,
        src_creds=_creds(reg, creds),
    )
    return dest


@contextlib.contextmanager
def loopback_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A threaded HTTP server on 127.0.0.1 with ``handler``; yields ``host:port``."""
    server = LoopbackHTTPServer(handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
