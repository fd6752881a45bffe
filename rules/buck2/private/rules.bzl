# The Buck2 rules behind rules/buck2/defs.bzl (its macros are the public API).
#
# `toolfetch_fetch` runs `toolfetch fetch --output` into a declared output directory as a
# local-only action; `toolfetch_http_file` downloads a plain-file HTTP asset with Buck2's own
# downloader; `toolfetch_tool` forwards the fetch its select picked for the
# configuration; `toolfetch_unsupported` fails analysis naming the locked platforms;
# `toolfetch_toolchain` wraps a tool as a toolchain.

load(":platforms.bzl", "ANY_PLATFORM")

def _fetch_impl(ctx: AnalysisContext) -> list[Provider]:
    tree = ctx.actions.declare_output(ctx.attrs.tool, dir = True)
    if ctx.attrs.fetcher_target != None:
        fetcher = ctx.attrs.fetcher_target[RunInfo]
    else:
        fetcher = ctx.attrs.fetcher
    argv = [fetcher, "fetch", "--lockfile", ctx.attrs.lockfile]
    if ctx.attrs.platform != ANY_PLATFORM:
        # A tool locked under "*" is one manifest for every platform: the lock has
        # no platform to name, so the fetcher picks it for whatever host runs it.
        argv += ["--platform", ctx.attrs.platform]
    argv += ["--output", tree.as_output(), ctx.attrs.tool]
    env = dict(ctx.attrs.env)
    if ctx.attrs.cache_dir:
        env["TOOLFETCH_CACHE_DIR"] = ctx.attrs.cache_dir
    ctx.actions.run(
        cmd_args(argv),
        category = "toolfetch_fetch",
        identifier = "{} {}".format(ctx.attrs.tool, ctx.attrs.platform),
        env = env,
        # Needs the network, registry credentials and the shared content-addressed
        # cache on the machine running the build: never remote.
        local_only = True,
    )
    exe = tree.project(ctx.attrs.path)
    return [
        DefaultInfo(
            default_output = tree,
            sub_targets = {
                "exe": [DefaultInfo(default_output = exe, other_outputs = [tree])],
            },
        ),
        RunInfo(args = cmd_args(exe, hidden = tree)),
    ]

toolfetch_fetch = rule(
    impl = _fetch_impl,
    doc = "Fetches one locked tool for one platform into a declared output directory.",
    attrs = {
        "cache_dir": attrs.string(default = ""),
        "env": attrs.dict(attrs.string(), attrs.string(), default = {}),
        "fetcher": attrs.string(default = "toolfetch"),
        "fetcher_target": attrs.option(attrs.exec_dep(providers = [RunInfo]), default = None),
        "lockfile": attrs.source(),
        "path": attrs.string(),
        "platform": attrs.string(),
        "tool": attrs.string(),
    },
)

def _http_file_impl(ctx: AnalysisContext) -> list[Provider]:
    # Buck2's own downloader, verified by sha256 (as the prelude's http_file): a plain-file
    # HTTP asset needs neither toolfetch nor its cache, and works with remote execution.
    exe = ctx.actions.declare_output(ctx.attrs.tool, ctx.attrs.path)
    ctx.actions.download_file(
        exe,
        ctx.attrs.url,
        sha256 = ctx.attrs.sha256,
        size_bytes = ctx.attrs.size_bytes,
        is_executable = True,
    )
    return [
        DefaultInfo(default_output = exe, sub_targets = {"exe": [DefaultInfo(default_output = exe)]}),
        RunInfo(args = cmd_args(exe)),
    ]

toolfetch_http_file = rule(
    impl = _http_file_impl,
    doc = "A locked plain-file HTTP asset, downloaded by Buck2 itself (no credentials).",
    attrs = {
        "path": attrs.string(),
        "sha256": attrs.string(),
        "size_bytes": attrs.int(),
        "tool": attrs.string(),
        "url": attrs.string(),
    },
)

def _forward_impl(ctx: AnalysisContext) -> list[Provider]:
    return [ctx.attrs.actual[DefaultInfo], ctx.attrs.actual[RunInfo]]

toolfetch_tool = rule(
    impl = _forward_impl,
    doc = "A locked tool for the platform this target is configured for (select on os/cpu).",
    attrs = {
        "actual": attrs.dep(providers = [RunInfo]),
        "platforms": attrs.list(attrs.string(), default = []),
        "tool": attrs.string(),
    },
)

def _unsupported_impl(ctx: AnalysisContext) -> list[Provider]:
    if ctx.attrs.locked:
        # Built directly (e.g. `buck2 build //...`) in a configuration the lock covers:
        # nothing selects this target there, so there is nothing to report.
        return [DefaultInfo()]
    fail(
        ("toolfetch: tool \"{tool}\" is not locked for this execution platform " +
         "({os}/{cpu}); {lockfile} has: {platforms}. Add the platform to tools.yaml " +
         "and run `toolfetch lock`.").format(
            tool = ctx.attrs.tool,
            os = ctx.attrs.exec_os,
            cpu = ctx.attrs.exec_cpu,
            lockfile = ctx.attrs.lockfile_name,
            platforms = ", ".join(ctx.attrs.platforms),
        ),
    )

toolfetch_unsupported = rule(
    impl = _unsupported_impl,
    doc = "The DEFAULT arm of a tool's select: analysis fails naming the locked platforms.",
    attrs = {
        "exec_cpu": attrs.string(default = "<unmapped cpu>"),
        "exec_os": attrs.string(default = "<unmapped os>"),
        "locked": attrs.bool(default = False),
        "lockfile_name": attrs.string(default = "the lockfile"),
        "platforms": attrs.list(attrs.string()),
        "tool": attrs.string(),
    },
)

def _toolchain_impl(ctx: AnalysisContext) -> list[Provider]:
    return [ctx.attrs.tool[DefaultInfo], ctx.attrs.tool[RunInfo]]

toolfetch_toolchain = rule(
    impl = _toolchain_impl,
    doc = "A toolchain (toolchains//:<tool>) wrapping a toolfetch tool for the execution platform.",
    attrs = {
        "tool": attrs.exec_dep(providers = [RunInfo]),
    },
    is_toolchain_rule = True,
)
