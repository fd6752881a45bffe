# A rule that runs a toolfetch tool obtained through a toolchain (toolchains//:greet),
# the way prelude rules reach compilers: `attrs.toolchain_dep` + RunInfo.

def _tool_version_impl(ctx: AnalysisContext) -> list[Provider]:
    out = ctx.actions.declare_output(ctx.label.name + ".txt")
    ctx.actions.run(
        cmd_args("/bin/sh", "-c", "\"$1\" > \"$2\"", "sh", ctx.attrs._greet[RunInfo], out.as_output()),
        category = "greet",
    )
    return [DefaultInfo(default_output = out)]

tool_version = rule(
    impl = _tool_version_impl,
    attrs = {
        "_greet": attrs.toolchain_dep(default = "toolchains//:greet", providers = [RunInfo]),
    },
)
