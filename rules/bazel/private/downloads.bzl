"""use_rctx_download: registry blob URLs (and an HTTP asset's URLs) for Bazel's own
downloader, and what to download by the unpack rules toolfetch applies (pure, unit-tested
under starlark-pyo3)."""

def _is_loopback(host):
    bare = host
    if bare.startswith("["):
        bare = bare[:bare.find("]") + 1]
    elif ":" in bare:
        bare = bare[:bare.find(":")]
    return bare == "localhost" or bare.startswith("127.") or bare == "[::1]"

def parse_ref(ref):
    """`host[:port]/repo[:tag][@digest]` -> {"host", "repo"}; None for `oci-layout:` refs."""
    if ref.startswith("oci-layout:"):
        return None
    name = ref
    if "@" in name:
        name = name[:name.find("@")]
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name = name[:colon]
    first = name[:name.find("/")] if "/" in name else ""
    if first and ("." in first or ":" in first or first == "localhost"):
        return {"host": first, "repo": name[len(first) + 1:]}
    repo = name if "/" in name else "library/" + name
    return {"host": "docker.io", "repo": repo}

def parse_env_mirrors(text):
    """TOOLFETCH_MIRRORS="host=m1,m2;host2=m3" -> {host: [mirror, ...]}."""
    out = {}
    for part in (text or "").split(";"):
        part = part.strip()
        if "=" not in part:
            continue
        host = part[:part.find("=")].strip()
        out[host] = [m.strip() for m in part[part.find("=") + 1:].split(",") if m.strip()]
    return out

def blob_urls(lock, ref, digest, env_mirrors, insecure):
    """Candidate URLs for a blob, in toolfetch's source order: env mirrors, lockfile mirrors,
    upstream. `oci-layout:` mirrors are skipped (Bazel's downloader only speaks HTTP);
    loopback registries are plain HTTP, `insecure` ones are tried over HTTPS then HTTP."""
    parsed = parse_ref(ref)
    if parsed == None:
        return []
    host = parsed["host"]
    sources = []
    for mirror in env_mirrors.get(host, []) + lock.get("mirrors", {}).get(host, []):
        if mirror.startswith("oci-layout:"):
            continue
        if "/" in mirror:
            sources.append((mirror[:mirror.find("/")], mirror[mirror.find("/") + 1:] + "/" + parsed["repo"]))
        else:
            sources.append((mirror, parsed["repo"]))
    sources.append((host, parsed["repo"]))
    return _registry_blob_urls(sources, digest, insecure)

def _registry_blob_urls(sources, digest, insecure):
    """[(host, repository)] -> blob URLs: loopback plain HTTP, `insecure` HTTPS then HTTP."""
    urls = []
    for h, repo in sources:
        if h == "docker.io":
            h = "registry-1.docker.io"
        if _is_loopback(h):
            schemes = ["http"]
        elif h in insecure:
            schemes = ["https", "http"]
        else:
            schemes = ["https"]
        for scheme in schemes:
            url = "%s://%s/v2/%s/blobs/%s" % (scheme, h, repo, digest)
            if url not in urls:
                urls.append(url)
    return urls

def url_host(url):
    """`scheme://host[:port]/…` -> `host[:port]` (what tools.yaml `mirrors` are keyed by)."""
    rest = url[url.find("://") + 3:] if "://" in url else url
    for sep in ("/", "?", "#"):
        if sep in rest:
            rest = rest[:rest.find(sep)]
    return rest

def asset_urls(lock, entry, tool, env_mirrors, insecure):
    """An HTTP release asset's URLs in toolfetch's order (registry/sources.py asset_sources):
    registry mirrors of its hosts first (the blob in `<prefix>/<tool>`, where `publish
    --from-lockfile` puts it; `oci-layout:` mirrors skipped), then the asset's own URLs."""
    digest = entry["layers"][0]["digest"]
    hosts = []
    for u in entry["urls"]:
        if url_host(u) not in hosts:
            hosts.append(url_host(u))
    sources = []
    for h in hosts:
        for mirror in env_mirrors.get(h, []) + lock.get("mirrors", {}).get(h, []):
            if mirror.startswith("oci-layout:"):
                continue
            if "/" in mirror:
                sources.append((mirror[:mirror.find("/")], mirror[mirror.find("/") + 1:] + "/" + tool))
            else:
                sources.append((mirror, tool))
    urls = _registry_blob_urls(sources, digest, insecure)
    for u in entry["urls"]:
        if u not in urls:
            urls.append(u)
    return urls

# toolfetch's archive formats (tools/toolfetch/oci/formats.py FORMATS; a test keeps them
# equal) as Bazel's extractor names them. Single compressed files (gzip, zstd, xz, bzip2)
# have no extractor type: use_rctx_download refuses them by name.
ARCHIVE_TYPES = {
    "tar": "tar",
    "tar+gzip": "tar.gz",
    "tar+zstd": "tar.zst",
    "tar+xz": "tar.xz",
    "tar+bzip2": "tar.bz2",
    "zip": "zip",
}
SINGLE_FILE_FORMATS = ["raw", "gzip", "zstd", "xz", "bzip2"]

# Image-spec layer types: changesets whose `.wh.` entries delete lower content (layer.md).
# toolfetch applies them (tools/toolfetch/core/treekey.py); Bazel's extractor cannot.
IMAGE_LAYER_TYPES = [
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
]
_NUL = json.decode("\"\\u0000\"")

def check_title(title):
    """A layer title as toolfetch accepts it (tools/toolfetch/oci/formats.py check_title): a relative
    `/`-name, normalised; None when it is not one (absolute, `..`, a backslash, a NUL, a
    drive letter, naming no file)."""
    if type(title) != "string" or not title or title.startswith("/") or title.endswith("/"):
        return None
    if "\\" in title or _NUL in title:
        return None
    parts = [p for p in title.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    if len(parts[0]) >= 2 and parts[0][1] == ":" and parts[0][0].isalpha():
        return None
    return "/".join(parts)

def applies_whiteouts(layer):
    """tools/toolfetch/core/treekey.py applies_whiteouts: an image changeset, not an archive."""
    media = layer.get("mediaType", "").split(";")[0].strip().lower()
    return (layer.get("unpack") in ("tar", "tar+gzip", "tar+zstd", "tar+xz", "tar+bzip2") and
            media in IMAGE_LAYER_TYPES and layer.get("title") == None)

def download_plan(entry, tool):
    """use_rctx_download: what to download, by the unpack rules toolfetch uses.

    A list of structs (sha256 hex, `output` below files/, executable, archive type or None).
    Every raw layer is placed under its checked title and is executable (0o555 in toolfetch's
    cache, whichever tool asks). A container image of several layers (changesets whose
    whiteouts must be applied), a malformed title or an unknown format fails, so Bazel never
    builds a tree toolfetch would not; a one-layer image has nothing below it to white out.
    """
    changesets = [layer for layer in entry["layers"] if applies_whiteouts(layer)]
    if len(changesets) > 1:
        fail(("toolfetch: tool '%s' is a container image of %d layers (OCI changesets whose " +
              "whiteouts Bazel's extractor cannot apply); drop use_rctx_download to fetch it " +
              "with toolfetch") % (tool, len(changesets)))
    steps = []
    for layer in entry["layers"]:
        digest = layer["digest"]
        if not digest.startswith("sha256:"):
            fail("toolfetch: %s: layer %s is not sha256; use_rctx_download needs sha256" % (tool, digest))
        unpack = layer.get("unpack", "raw")
        if unpack == "raw":
            title = check_title(layer.get("title"))
            if title == None:
                fail(("toolfetch: %s: raw layer %s has an unsafe or missing title %r; titles " +
                      "are relative names without '..'") % (tool, digest, layer.get("title")))
            steps.append(struct(sha256 = digest[len("sha256:"):], output = title, archive = None))
        elif unpack in ARCHIVE_TYPES:
            steps.append(struct(sha256 = digest[len("sha256:"):], output = "", archive = ARCHIVE_TYPES[unpack]))
        elif unpack in SINGLE_FILE_FORMATS:
            fail(("toolfetch: %s: layer %s is a single %s-compressed file, which Bazel's " +
                  "downloader cannot decompress; drop use_rctx_download to fetch it with " +
                  "toolfetch") % (tool, digest, unpack))
        else:
            fail("toolfetch: %s: layer %s has unknown unpack format %r" % (tool, digest, unpack))
    return steps
