"""Build rules used by the generated repositories (no rules_cc / rules_java, Bazel 4.2.3+).

`toolfetch_executable` makes a file of the unpacked tree executable as a Bazel target: it
symlinks it into the output tree (`bin/<basename>`, so argv[0] keeps the tool's name) and
carries the whole tree as runfiles. `sh_binary` would do, but it pulls in rules_cc/rules_java
and fails offline on Debian's Bazel 4.2.3.

`toolfetch_toolchain` exposes the same tool through toolchain resolution:

    def _impl(ctx):
        tc = ctx.toolchains["@tools//:protoc_toolchain_type"]
        ctx.actions.run(executable = tc.files_to_run, tools = tc.files, ...)
"""

def _toolfetch_executable_impl(ctx):
    src = ctx.file.src
    out = ctx.actions.declare_file("bin/" + src.basename)
    ctx.actions.symlink(output = out, target_file = src, is_executable = True)
    runfiles = ctx.runfiles(files = [src] + ctx.files.data)
    for dep in ctx.attr.data:
        runfiles = runfiles.merge(dep[DefaultInfo].default_runfiles)
    return [DefaultInfo(
        executable = out,
        files = depset([out]),
        runfiles = runfiles,
    )]

toolfetch_executable = rule(
    implementation = _toolfetch_executable_impl,
    doc = "An executable file from a fetched tree, with the tree as runfiles.",
    attrs = {
        "src": attr.label(allow_single_file = True, mandatory = True),
        "data": attr.label_list(allow_files = True),
    },
    executable = True,
)

def _toolfetch_toolchain_impl(ctx):
    default = ctx.attr.tool[DefaultInfo]
    return [platform_common.ToolchainInfo(
        executable = ctx.executable.tool,
        files_to_run = default.files_to_run,
        files = ctx.attr.files[DefaultInfo].files,
        runfiles = default.default_runfiles,
    )]

toolfetch_toolchain = rule(
    implementation = _toolfetch_toolchain_impl,
    doc = "ToolchainInfo(executable, files_to_run, files, runfiles) for a fetched tool.",
    attrs = {
        "tool": attr.label(executable = True, cfg = "exec", mandatory = True),
        "files": attr.label(cfg = "exec", mandatory = True),
    },
)

def _toolfetch_unavailable_impl(ctx):
    fail(ctx.attr.message)

toolfetch_unavailable = rule(
    implementation = _toolfetch_unavailable_impl,
    doc = "Fails analysis with `message` (a tool the lockfile has no usable platform for).",
    attrs = {"message": attr.string()},
)
