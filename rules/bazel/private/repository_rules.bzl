"""The repository rules: the hub (`@<name>`) and one repository per tool x platform.

The tool repository runs `toolfetch fetch --output` (or, with `use_rctx_download`, Bazel's
downloader) into `files/` and renders its BUILD file; the hub renders its BUILD files and,
for WORKSPACE, `repositories.bzl` from templates/ (render.bzl). See docs/bazel.md.
"""

load("//rules/bazel/private:attrs.bzl", "COMMON_ATTRS", "common_values")
load("//rules/bazel/private:downloads.bzl", "asset_urls", "blob_urls", "download_plan", "parse_env_mirrors")
load("//rules/bazel/private:lockfile.bzl", "FETCH_ENVIRON", "fetch_argv", "fetch_failure_message", "parse_lockfile", "platform_entry")
load("//rules/bazel/private:platforms.bzl", "oci_platform")
load("//rules/bazel/private:render.bzl", "TEMPLATES", "hub_build_file", "hub_repositories_bzl", "hub_toolchains_build_file", "tool_build_file")

def label_str(label):
    """A label string that means the same repository from inside a generated repository.

    Bazel 4 prints main-repository labels as `//pkg:name`, which a generated repository
    would read as its own; `@//pkg:name` is the main repository everywhere. bzlmod prints
    canonical `@@repo//…` labels, which load() and attributes accept as they are.
    """
    s = str(label)
    if s.startswith("@"):
        return s
    return "@" + s

_TOOL_BZL = label_str(Label("//rules/bazel/private:tool.bzl"))
_REPOSITORY_RULES_BZL = label_str(Label("//rules/bazel/private:repository_rules.bzl"))
_SOURCE_MARKER = Label("//:pyproject.toml")

def _templates(rctx):
    """templates/*.tpl of this package, by name (see render.bzl)."""
    return {
        name: rctx.read(rctx.path(Label("//rules/bazel/private:templates/%s.tpl" % name)))
        for name in TEMPLATES
    }

def host_platform(rctx):
    """The host as an OCI platform string. Bazel 4 has no rctx.os.arch: ask uname."""
    machine = ""
    if hasattr(rctx.os, "arch"):
        machine = rctx.os.arch
    elif rctx.os.name.lower().startswith("windows"):
        machine = rctx.os.environ.get("PROCESSOR_ARCHITECTURE", "")
    else:
        result = rctx.execute(["uname", "-m"])
        if result.return_code == 0:
            machine = result.stdout
    return oci_platform(rctx.os.name, machine)

def _fetcher(rctx):
    """(argv prefix, extra environment) for running toolfetch."""
    if rctx.attr.toolfetch:
        path = rctx.attr.toolfetch
        if "/" not in path and "\\" not in path:
            found = rctx.which(path)
            if found == None:
                fail("toolfetch: toolfetch = %r is not on PATH" % path)
            path = str(found)
        elif not (path.startswith("/") or (len(path) > 2 and path[1] == ":")):
            fail("toolfetch: toolfetch = %r must be an absolute path or a command on PATH" % path)
        return [path], {}
    if rctx.attr.python:
        env = {}
        source = rctx.path(_SOURCE_MARKER).dirname.get_child("tools")
        if source.exists:
            old = rctx.os.environ.get("PYTHONPATH", "")
            sep = ";" if rctx.os.name.lower().startswith("windows") else ":"
            env["PYTHONPATH"] = str(source) + (sep + old if old else "")
        return [rctx.attr.python, "-m", "toolfetch"], env
    found = rctx.which("toolfetch")
    if found == None:
        fail("toolfetch: the `toolfetch` command is not on PATH (PATH=%s). Install it " % (
            rctx.os.environ.get("PATH", ""),
        ) + "(`pip install toolfetch`), or set `toolfetch = \"/path/to/toolfetch\"` or " +
             "`python = \"/path/to/python3\"` on toolfetch_tools / toolfetch.lock.")
    return [str(found)], {}

def _lockfile_path(rctx):
    """Absolute path of the lockfile, read through rctx so Bazel watches it.

    A symlinked lockfile is resolved, so that relative `oci-layout:` sources in it are found
    relative to the real file.
    """
    path = rctx.path(rctx.attr.lockfile)
    text = rctx.read(path)
    if hasattr(path, "realpath"):
        path = path.realpath
    return str(path), text

def _run_fetcher(rctx, lockfile, platform, tool, output):
    prefix, env = _fetcher(rctx)
    argv = fetch_argv(prefix, lockfile, platform, str(rctx.path(output)), tool)
    rctx.report_progress("toolfetch fetch %s (%s)" % (tool, platform))
    result = rctx.execute(argv, environment = env, timeout = rctx.attr.timeout, quiet = True)
    if result.return_code != 0:
        fail(fetch_failure_message(
            tool,
            platform,
            label_str(rctx.attr.lockfile),
            argv,
            result.return_code,
            result.stdout,
            result.stderr,
        ))
    if result.stderr.strip():
        # Warnings (a mirror skipped, a source that served bad bytes, ...).
        print("toolfetch %s (%s): %s" % (tool, platform, result.stderr.strip()))

def _download_layers(rctx, lock, entry, tool, output):
    """use_rctx_download: each layer through Bazel's downloader, verified by sha256, placed
    by the unpack rules toolfetch applies (downloads.bzl `download_plan`)."""
    env_mirrors = parse_env_mirrors(rctx.os.environ.get("TOOLFETCH_MIRRORS", ""))
    insecure = [h.strip() for h in rctx.os.environ.get("TOOLFETCH_INSECURE_REGISTRIES", "").split(",")]
    for step in download_plan(entry, tool):
        if "urls" in entry:  # an HTTP release asset: its mirrors, then its URLs
            urls = asset_urls(lock, entry, tool, env_mirrors, insecure)
        else:
            urls = blob_urls(lock, entry["ref"], "sha256:" + step.sha256, env_mirrors, insecure)
        if not urls:
            fail(("toolfetch: tool '%s' comes from %s, which Bazel's downloader cannot read; " +
                  "drop use_rctx_download to fetch it with toolfetch") % (tool, entry["ref"]))
        if step.archive == None:
            rctx.download(
                url = urls,
                output = output + "/" + step.output,
                sha256 = step.sha256,
                executable = True,
            )
        else:
            rctx.download_and_extract(
                url = urls,
                output = output,
                sha256 = step.sha256,
                type = step.archive,
            )

def _tool_repository_impl(rctx):
    tool = rctx.attr.tool
    platform = rctx.attr.platform
    source = label_str(rctx.attr.lockfile)
    lockfile, text = _lockfile_path(rctx)
    lock = parse_lockfile(text, source)
    entry = platform_entry(lock, tool, platform, source)
    fetch_platform = platform
    if platform == "*":
        # A single manifest serves every platform; name the host so the fetcher can check.
        fetch_platform = host_platform(rctx)
    if rctx.attr.use_rctx_download:
        _download_layers(rctx, lock, entry, tool, "files")
    else:
        _run_fetcher(rctx, lockfile, fetch_platform, tool, "files")
    executable = rctx.path("files/" + entry["path"])
    if not executable.exists:
        fail("toolfetch: tool '%s' (%s): the unpacked tree has no %s (the lockfile's path)" % (
            tool,
            platform,
            entry["path"],
        ))
    rctx.file("WORKSPACE", "# Generated by toolfetch.\n")
    rctx.file("BUILD.bazel", tool_build_file(_templates(rctx), tool, platform, entry, source, _TOOL_BZL))

_TOOL_ATTRS = {
    "lockfile": attr.label(mandatory = True, allow_single_file = True),
    "tool": attr.string(mandatory = True),
    "platform": attr.string(mandatory = True, doc = "OCI os/arch[/variant], or \"*\""),
    "manifest": attr.string(doc = "The locked manifest digest, or an HTTP asset's sha256 (a lock change shows here too)"),
}
_TOOL_ATTRS.update(COMMON_ATTRS)

toolfetch_tool_repository = repository_rule(
    implementation = _tool_repository_impl,
    doc = "One tool for one platform: `toolfetch fetch` into files/, plus :tool, :files, :toolchain.",
    attrs = _TOOL_ATTRS,
    environ = FETCH_ENVIRON,
)

def _hub_repository_impl(rctx):
    source = label_str(rctx.attr.lockfile)
    lock = parse_lockfile(rctx.read(rctx.path(rctx.attr.lockfile)), source)
    hub = rctx.attr.hub or rctx.name
    templates = _templates(rctx)
    rctx.file("WORKSPACE", "# Generated by toolfetch.\n")
    rctx.file("BUILD.bazel", hub_build_file(templates, hub, lock, source, _TOOL_BZL))
    rctx.file("toolchains/BUILD.bazel", hub_toolchains_build_file(templates, hub, lock, source))
    common = common_values(rctx.attr)
    common["lockfile"] = source
    rctx.file("repositories.bzl", hub_repositories_bzl(templates, hub, lock, source, _REPOSITORY_RULES_BZL, common))

_HUB_ATTRS = {
    "lockfile": attr.label(mandatory = True, allow_single_file = True),
    "hub": attr.string(doc = "The name the tool repositories are prefixed with (the tag's name)"),
}
_HUB_ATTRS.update(COMMON_ATTRS)

toolfetch_hub_repository = repository_rule(
    implementation = _hub_repository_impl,
    doc = "The hub: @<name>//:<tool>, :<tool>_files, :<tool>_toolchain_type, //toolchains:all.",
    attrs = _HUB_ATTRS,
)
