"""Reading a toolfetch lockfile and planning its repositories (pure: data in, data out).

Shared by the WORKSPACE macro and the bzlmod extension, and unit-tested under starlark-pyo3,
so both setups run exactly the same code. Only constructs Bazel 4.2.3 understands: no dict
`|`, no `@@` labels written by us, no f-strings, no `removeprefix`.

Naming: the hub repository is `<hub>` (the `name` the user gave); each tool x platform gets
`<hub>__<tool>__<os>_<arch>[_<variant>]`, and a tool locked under the platform key `"*"`
(a single manifest) gets one repository `<hub>__<tool>__any`, used on every platform (the
Buck2 rules spell it `any` too).
"""

load("//rules/bazel/private:platforms.bzl", "bazel_constraints", "canonical_platform")

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

# toolfetch's exit codes (docs/design.md, "Exit codes") and what to do about them.
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
    """json.decode a tools.lock.json and check the fields the shims use.

    A tool's platform keys are checked as toolfetch checks them: no platform spelled twice
    (`linux/arm64` and `linux/arm64/v8`), and "*" never next to specific platforms.
    """
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
        _check_platform_keys(source, name, tool["platforms"])
    return lock

def _check_platform_keys(source, tool, platforms):
    """Refuse keys toolfetch itself refuses: one platform spelled twice (`linux/arm` and
    `linux/arm/v7`), or "*" next to specific platforms (which one would serve is ambiguous)."""
    keys = sorted(platforms.keys())
    if ANY_PLATFORM in keys and len(keys) > 1:
        fail(("toolfetch: %s: tool '%s' is locked for '*' and for %s; a tool is locked " +
              "either for '*' (one manifest for every platform) or per platform, not both") % (
            source,
            tool,
            ", ".join([k for k in keys if k != ANY_PLATFORM]),
        ))
    seen = {}
    for key in keys:
        canonical = canonical_platform(key)
        if canonical in seen:
            fail(("toolfetch: %s: tool '%s' is locked for both %s and %s, which are the same " +
                  "platform (%s); keep one of them") % (
                source,
                tool,
                seen[canonical],
                key,
                canonical,
            ))
        seen[canonical] = key

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
                "manifest": entry.get("manifest") or _asset_digest(entry),
            })
    return repos

def _asset_digest(entry):
    """An HTTP asset has no manifest: its one layer's digest names what is locked."""
    layers = entry.get("layers") or []
    return layers[0].get("digest", "") if layers and type(layers[0]) == "dict" else ""

def selectable(lock, tool):
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

def fetch_argv(fetcher, lockfile, platform, output, tool):
    """`toolfetch fetch --lockfile L --platform P --output DIR TOOL` (fetcher: argv prefix)."""
    return fetcher + ["fetch", "--lockfile", lockfile, "--platform", platform, "--output", output, tool]
