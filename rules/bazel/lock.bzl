"""Lockfile -> repositories: the logic shared by the WORKSPACE macro and the bzlmod extension.

Everything here is pure (strings, dicts, lists in; strings, dicts, lists out) so that the
Bazel 4.2.3 WORKSPACE path, the Bazel 7 module extension and the starlark-pyo3 unit tests all
run exactly the same code. Only constructs Bazel 4.2.3 understands: no dict `|`, no `@@`
labels written by us, no f-strings, no `removeprefix`.

Naming: the hub repository is `<hub>` (the `name` the user gave); each tool x platform gets
`<hub>__<tool>__<os>_<arch>[_<variant>]`, and a tool locked under the platform key `"*"`
(a single manifest) gets one repository `<hub>__<tool>__any` used on every platform.
"""

load(":platforms.bzl", "bazel_constraints")

ANY_PLATFORM = "*"

# The environment the fetch depends on: Bazel refetches a tool repository when one changes.
FETCH_ENVIRON = [
    "TOOLFETCH_CACHE_DIR",
    "TOOLFETCH_OFFLINE",
    "TOOLFETCH_MIRRORS",
    "TOOLFETCH_INSECURE_REGISTRIES",
    "DOCKER_CONFIG",
    "REGISTRY_AUTH_FILE",
    "HOME",
    "PATH",
    "XDG_CACHE_HOME",
    "XDG_RUNTIME_DIR",
    "XDG_CONFIG_HOME",
]

# toolfetch's exit codes (DESIGN §5) and what to do about them.
EXIT_MEANINGS = {
    1: "internal error in toolfetch",
    2: "usage error or invalid input (flags, reference, tools.yaml or lockfile)",
    3: "integrity failure (digest or size mismatch, or an unsafe archive)",
    4: "not found (tool, platform, tag, manifest or blob)",
    5: "authentication or authorization failure",
    6: "registry unreachable after retries, or offline and not in the cache",
    7: "lockfile out of date",
    8: "local file system failure (disk full, read-only or unwritable cache or output)",
}

_EXIT_HINTS = {
    2: "Is the lockfile valid for this toolfetch version? `toolfetch lock` rewrites it.",
    3: "The bytes served do not match the digests in the lockfile; a mirror or registry is " +
       "serving different content. Nothing was installed.",
    4: "Does the registry still have what the lockfile pins? `toolfetch lock` re-resolves.",
    5: "Log in with `toolfetch login REGISTRY -u USER --password-stdin`, or point " +
       "DOCKER_CONFIG / REGISTRY_AUTH_FILE at credentials (Bazel passes both through).",
    6: "Check the network and TOOLFETCH_MIRRORS; with TOOLFETCH_OFFLINE=1 the tool must " +
       "already be in the toolfetch cache (TOOLFETCH_CACHE_DIR).",
    7: "Run `toolfetch lock` and commit the lockfile.",
    8: "Check free space and permissions of the toolfetch cache (TOOLFETCH_CACHE_DIR) and of " +
       "Bazel's output base.",
}

def exit_meaning(code):
    """Human meaning of a toolfetch exit code (or of rctx.execute's own failure codes)."""
    if code in EXIT_MEANINGS:
        return EXIT_MEANINGS[code]
    if code == 127:
        return "the fetcher could not be started (command not found)"
    if code == 256:
        return "timed out (raise the repository rule's `timeout`)"
    if code < 0 or code > 128:
        return "the fetcher was killed or could not be run"
    return "unknown exit code"

def fetch_failure_message(tool, platform, lockfile, argv, code, stdout, stderr):
    """The `fail()` text for a failed `toolfetch fetch`."""
    lines = [
        "toolfetch: fetching tool '%s' for platform %s (lockfile %s) failed" % (
            tool,
            platform,
            lockfile,
        ),
        "exit code %d: %s" % (code, exit_meaning(code)),
    ]
    if code in _EXIT_HINTS:
        lines.append("hint: " + _EXIT_HINTS[code])
    lines.append("command: " + " ".join(argv))
    if stderr.strip():
        lines.append("fetcher stderr:\n" + stderr.rstrip())
    if stdout.strip():
        lines.append("fetcher stdout:\n" + stdout.rstrip())
    return "\n".join(lines)

def parse_lockfile(text, source):
    """json.decode a tools.lock.json and check the fields the shims use."""
    lock = json.decode(text)
    if type(lock) != "dict":
        fail("toolfetch: %s: the lockfile must be a JSON object" % source)
    if lock.get("version") != 1:
        fail("toolfetch: %s: unsupported lockfile version %r (these rules read version 1)" % (
            source,
            lock.get("version"),
        ))
    tools = lock.get("tools")
    if type(tools) != "dict":
        fail("toolfetch: %s: $.tools must be an object" % source)
    for name in tools:
        tool = tools[name]
        where = "%s: $.tools.%s" % (source, name)
        if not _valid_name(name):
            fail("toolfetch: %s: invalid tool name (letters, digits, '.', '_', '-')" % where)
        if type(tool) != "dict" or type(tool.get("platforms")) != "dict" or not tool["platforms"]:
            fail("toolfetch: %s.platforms must be a non-empty object" % where)
        for key in tool["platforms"]:
            entry = tool["platforms"][key]
            if key != ANY_PLATFORM and len(key.split("/")) not in (2, 3):
                fail("toolfetch: %s.platforms: malformed platform %r" % (where, key))
            if type(entry) != "dict" or type(entry.get("path")) != "string" or not entry["path"]:
                fail("toolfetch: %s.platforms[%r].path must be a non-empty string" % (where, key))
            if entry["path"].startswith("/") or ".." in entry["path"].split("/"):
                fail("toolfetch: %s.platforms[%r].path must be relative" % (where, key))
    return lock

def _valid_name(name):
    if not name or not (name[0].isalnum()):
        return False
    for c in name.elems():
        if not (c.isalnum() or c in "._-"):
            return False
    return True

def tool_platforms(lock, tool):
    """The platform keys a tool is locked for, sorted ("*" for a single manifest)."""
    return sorted(lock["tools"][tool]["platforms"].keys())

def platform_entry(lock, tool, platform, source):
    """The lockfile entry for tool x platform; fails naming the platforms the lockfile has."""
    tools = lock["tools"]
    if tool not in tools:
        fail("toolfetch: %s has no tool '%s'; it has: %s" % (
            source,
            tool,
            ", ".join(sorted(tools.keys())) or "none",
        ))
    platforms = tools[tool]["platforms"]
    if platform in platforms:
        return platforms[platform]
    if ANY_PLATFORM in platforms:
        return platforms[ANY_PLATFORM]
    fail("toolfetch: %s does not lock tool '%s' for platform %s; it has: %s" % (
        source,
        tool,
        platform,
        ", ".join(sorted(platforms.keys())),
    ))

def repo_suffix(platform):
    if platform == ANY_PLATFORM:
        return "any"
    return platform.replace("/", "_")

def repo_name(hub, tool, platform):
    return "%s__%s__%s" % (hub, tool, repo_suffix(platform))

def plan_repos(hub, lock):
    """One dict per tool x platform repository: name, tool, platform, manifest.

    The dicts are the exact keyword arguments (besides the shared ones: lockfile, fetcher
    settings) of `toolfetch_tool_repository`, in a stable order.
    """
    repos = []
    for tool in sorted(lock["tools"].keys()):
        for platform in tool_platforms(lock, tool):
            entry = lock["tools"][tool]["platforms"][platform]
            repos.append({
                "name": repo_name(hub, tool, platform),
                "tool": tool,
                "platform": platform,
                "manifest": entry.get("manifest", ""),
            })
    return repos

def _selectable(lock, tool):
    """[(platform, [os, cpu])] for the tool, first key wins when two map to the same pair."""
    out = []
    seen = {}
    for platform in tool_platforms(lock, tool):
        constraints = bazel_constraints(platform)
        if constraints == None:
            continue
        key = ",".join(constraints)
        if key in seen:
            continue
        seen[key] = True
        out.append((platform, constraints))
    return out

def _setting_name(platform):
    return "_platform_" + repo_suffix(platform)

def _header(source):
    return "# Generated by toolfetch from %s. Do not edit: change the lockfile instead.\n" % source

def hub_build_file(hub, lock, source, tool_bzl):
    """BUILD.bazel of the hub repository: `<tool>`, `<tool>_files`, `<tool>_toolchain_type`."""
    out = [
        _header(source),
        "load(%r, %r)\n" % (tool_bzl, "toolfetch_unavailable"),
        "package(default_visibility = [\"//visibility:public\"])\n",
    ]
    settings = {}
    for tool in sorted(lock["tools"].keys()):
        for platform, constraints in _selectable(lock, tool):
            settings[_setting_name(platform)] = constraints
    for name in sorted(settings.keys()):
        out.append("config_setting(\n    name = %r,\n    constraint_values = %r,\n)\n" % (
            name,
            settings[name],
        ))
    for tool in sorted(lock["tools"].keys()):
        out.append(_hub_tool(hub, lock, tool, source))
    return "\n".join(out)

def _hub_tool(hub, lock, tool, source):
    platforms = tool_platforms(lock, tool)
    text = "# %s: %s\n" % (tool, ", ".join(platforms))
    if ANY_PLATFORM in platforms:
        repo = "@" + repo_name(hub, tool, ANY_PLATFORM)
        text += "alias(name = %r, actual = %r)\n" % (tool, repo + "//:tool")
        text += "alias(name = %r, actual = %r)\n" % (tool + "_files", repo + "//:files")
    else:
        selectable = _selectable(lock, tool)
        message = ("toolfetch: tool '%s' is not locked for this execution platform; %s has: " +
                   "%s. Add the platform to tools.yaml and run `toolfetch lock`.") % (
            tool,
            source,
            ", ".join(platforms),
        )
        if not selectable:
            text += "toolfetch_unavailable(name = %r, message = %r)\n" % ("_unavailable_" + tool, message)
            text += "alias(name = %r, actual = %r)\n" % (tool, ":_unavailable_" + tool)
            text += "alias(name = %r, actual = %r)\n" % (tool + "_files", ":_unavailable_" + tool)
        else:
            for name, target in [(tool, "tool"), (tool + "_files", "files")]:
                text += "alias(\n    name = %r,\n    actual = select(\n        {\n" % name
                for platform, _ in selectable:
                    text += "            %r: %r,\n" % (
                        ":" + _setting_name(platform),
                        "@%s//:%s" % (repo_name(hub, tool, platform), target),
                    )
                text += "        },\n        no_match_error = %r,\n    ),\n)\n" % message
    text += "toolchain_type(name = %r)\n" % (tool + "_toolchain_type")
    return text

def hub_toolchains_build_file(hub, lock, source):
    """BUILD.bazel of `@<hub>//toolchains`: one `toolchain` per tool x platform (only these,
    so `register_toolchains("@<hub>//toolchains:all")` is safe)."""
    out = [_header(source), "package(default_visibility = [\"//visibility:public\"])\n"]
    for tool in sorted(lock["tools"].keys()):
        platforms = tool_platforms(lock, tool)
        if ANY_PLATFORM in platforms:
            pairs = [(ANY_PLATFORM, [])]
        else:
            pairs = _selectable(lock, tool)
        for platform, constraints in pairs:
            out.append(("toolchain(\n    name = %r,\n    exec_compatible_with = %r,\n" +
                        "    toolchain = %r,\n    toolchain_type = %r,\n)\n") % (
                tool + "_" + repo_suffix(platform),
                constraints,
                "@%s//:toolchain" % repo_name(hub, tool, platform),
                "//:%s_toolchain_type" % tool,
            ))
    return "\n".join(out)

def hub_repositories_bzl(hub, lock, source, repositories_bzl, common):
    """`@<hub>//:repositories.bzl` for WORKSPACE: `toolfetch_register()` declares every
    tool x platform repository (lazily fetched) and registers the toolchains."""
    out = [
        _header(source),
        "load(%r, %r)\n" % (repositories_bzl, "toolfetch_tool_repository"),
        "TOOLS = %r\n" % sorted(lock["tools"].keys()),
        "_COMMON = {\n" + "".join([
            "    %r: %r,\n" % (k, common[k])
            for k in sorted(common.keys())
        ]) + "}\n",
        "_REPOS = [\n" + "".join([
            "    %r,\n" % repo
            for repo in plan_repos(hub, lock)
        ]) + "]\n",
        ("def toolfetch_register(register_toolchains = True):\n" +
         "    \"\"\"Declares the per-tool, per-platform repositories of @%s (fetched only when a\n" +
         "    build needs them) and registers their toolchains.\"\"\"\n" +
         "    for repo in _REPOS:\n" +
         "        if native.existing_rule(repo[\"name\"]) == None:\n" +
         "            kwargs = dict(_COMMON)\n" +
         "            kwargs.update(repo)\n" +
         "            toolfetch_tool_repository(**kwargs)\n" +
         "    if register_toolchains:\n" +
         "        native.register_toolchains(%r)\n") % (hub, "@%s//toolchains:all" % hub),
    ]
    return "\n".join(out)

def tool_build_file(tool, platform, entry, source, tool_bzl):
    """BUILD.bazel of a tool x platform repository; the unpacked tree is under `files/`."""
    return "\n".join([
        _header(source) + "# tool %s, platform %s, manifest %s\n" % (
            tool,
            platform,
            entry.get("manifest", "?"),
        ),
        "load(%r, %r, %r)\n" % (tool_bzl, "toolfetch_executable", "toolfetch_toolchain"),
        "package(default_visibility = [\"//visibility:public\"])\n",
        "filegroup(\n    name = \"files\",\n    srcs = glob([\"files/**\"]),\n)\n",
        "exports_files(glob([\"files/**\"]))\n",
        "toolfetch_executable(\n    name = \"tool\",\n    src = %r,\n    data = [\":files\"],\n)\n" % (
            "files/" + entry["path"]
        ),
        "toolfetch_toolchain(\n    name = \"toolchain\",\n    tool = \":tool\",\n    files = \":files\",\n)\n",
    ])

def fetch_argv(fetcher, lockfile, platform, output, tool):
    """`toolfetch fetch --lockfile L --platform P --output DIR TOOL` (fetcher: argv prefix)."""
    return fetcher + ["fetch", "--lockfile", lockfile, "--platform", platform, "--output", output, tool]

# ---- use_rctx_download: registry blob URLs for Bazel's own downloader -------------------------

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

ARCHIVE_TYPES = {"tar": "tar", "tar+gzip": "tar.gz", "tar+zstd": "tar.zst", "zip": "zip"}

# Image-spec layer types: changesets whose `.wh.` entries delete lower content (layer.md).
# toolfetch applies them (toolfetch/treekey.py); Bazel's extractor cannot.
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
    """A layer title as toolfetch accepts it (toolfetch/formats.py check_title): a relative
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
    """toolfetch/treekey.py applies_whiteouts: an image changeset, not an archive."""
    media = layer.get("mediaType", "").split(";")[0].strip().lower()
    return (layer.get("unpack") in ("tar", "tar+gzip", "tar+zstd") and
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
        else:
            fail("toolfetch: %s: layer %s has unknown unpack format %r" % (tool, digest, unpack))
    return steps
