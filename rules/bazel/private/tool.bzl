"""Build rules used by the generated repositories (no rules_cc / rules_java, Bazel 4.2.3+).

`toolfetch_executable` makes a file of the unpacked tree executable as a Bazel target. It
mirrors the whole tree into the output tree as symlinks (`<name>/<path in the tree>`) and
returns the mirrored executable, so the tool finds its siblings however it looks: through
`$0` (`$(dirname "$0")/../share/...`), through its real path (/proc/self/exe, as protoc
does) or through runfiles, which carry the mirrored tree. argv[0] keeps the tool's own file
name. `sh_binary` would need rules_cc/rules_java, which fail offline on Debian's Bazel 4.2.3.

`toolfetch_toolchain` exposes the same tool through toolchain resolution:

    def _impl(ctx):
        tc = ctx.toolchains["@tools//:protoc_toolchain_type"]
        ctx.actions.run(executable = tc.files_to_run, tools = tc.tool_files, ...)
"""

def _tree_prefix(ctx):
    parts = [p for p in [ctx.label.workspace_root, ctx.label.package, ctx.attr.tree] if p]
    return "/".join(parts) + "/"

def _toolfetch_executable_impl(ctx):
    prefix = _tree_prefix(ctx)
    src = ctx.file.src
    if not src.path.startswith(prefix):
        fail("toolfetch_executable %s: src %s is not under %s" % (ctx.label, src.path, prefix))
    mirrored = {}
    for f in [src] + ctx.files.data:
        if not f.path.startswith(prefix) or f.path in mirrored:
            continue
        out = ctx.actions.declare_file(ctx.label.name + "/" + f.path[len(prefix):])
        ctx.actions.symlink(output = out, target_file = f, is_executable = f == src)
        mirrored[f.path] = out
    executable = mirrored[src.path]

    # The mirrored tree is both the default output (genrule `tools` and actions that list
    # the target as a tool stage it at its exec paths, beside the executable) and the
    # runfiles (`bazel run`, data deps).
    tree = mirrored.values()
    return [DefaultInfo(
        executable = executable,
        files = depset([executable] + [f for f in tree if f != executable]),
        runfiles = ctx.runfiles(files = tree),
    )]

toolfetch_executable = rule(
    implementation = _toolfetch_executable_impl,
    doc = "An executable file of a fetched tree, with the whole tree mirrored beside it.",
    attrs = {
        "src": attr.label(allow_single_file = True, mandatory = True, doc = "The executable"),
        "data": attr.label_list(allow_files = True, doc = "The tree's files"),
        "tree": attr.string(default = "files", doc = "The tree's directory in the package"),
    },
    executable = True,
)

def _toolfetch_toolchain_impl(ctx):
    default = ctx.attr.tool[DefaultInfo]
    return [platform_common.ToolchainInfo(
        executable = ctx.executable.tool,
        files_to_run = default.files_to_run,
        tool_files = default.files,
        files = ctx.attr.files[DefaultInfo].files,
        runfiles = default.default_runfiles,
    )]

toolfetch_toolchain = rule(
    implementation = _toolfetch_toolchain_impl,
    doc = "ToolchainInfo for a fetched tool: executable (File), files_to_run, tool_files " +
          "(the executable with its mirrored tree: pass as `tools`), files (the unpacked " +
          "tree as fetched), runfiles.",
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
