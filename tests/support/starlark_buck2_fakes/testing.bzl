# Rules a Buck2 project would write to consume toolfetch tools; the tests analyse them
# with the fake prelude to show which platform's tool a dependent gets.

def _uses_tool_impl(ctx: AnalysisContext) -> list[Provider]:
    out = ctx.actions.declare_output("version.txt")
    tool = ctx.attrs.tool if ctx.attrs.tool != None else ctx.attrs.toolchain
    ctx.actions.run(
        cmd_args(tool[RunInfo], "--version", out.as_output()),
        category = "uses_tool",
    )
    return [DefaultInfo(default_output = out)]

# A rule that runs a tool given as an exec dep, or through a toolchain.
uses_tool = rule(
    impl = _uses_tool_impl,
    attrs = {
        "tool": attrs.option(attrs.exec_dep(providers = [RunInfo]), default = None),
        "toolchain": attrs.option(attrs.toolchain_dep(providers = [RunInfo]), default = None),
    },
)

def _script_impl(ctx: AnalysisContext) -> list[Provider]:
    return [DefaultInfo(default_output = ctx.attrs.src), RunInfo(args = cmd_args(ctx.attrs.src))]

# An executable source file (stands in for a Buck2-built toolfetch).
script = rule(
    impl = _script_impl,
    attrs = {"src": attrs.source()},
)
