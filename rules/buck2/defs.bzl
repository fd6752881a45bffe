# Buck2 rules for tools locked by toolfetch (docs/buck2.md).
#
#     load("@toolfetch//rules/buck2:defs.bzl", "toolfetch_tools")
#     load(":tools.lock.json", lock = "value")
#     toolfetch_tools(name = "tools", lock = lock)
#
# declares `:<tool>` (DefaultInfo + RunInfo) for every tool in the lockfile. `:<tool>`
# selects, on the prelude's os/cpu constraints of the configuration it is built in,
# one `:<name>__<tool>__<os>_<arch>` target per locked platform; each of those runs
#
#     toolfetch fetch --lockfile <lockfile> --platform <os/arch> --output <dir> <tool>
#
# as a local-only action (it needs the network and the shared toolfetch cache) into
# a declared output directory that holds the tool's whole unpacked tree. Used as an
# `attrs.exec_dep` (or through `$(exe ...)`, or a toolchain), `:<tool>` is configured
# for the execution platform, so the select picks the execution platform's tool.

load(
    ":platforms.bzl",
    "ANY_PLATFORM",
    "OCI_CPU_TO_BUCK2",
    "OCI_OS_TO_BUCK2",
    "buck2_constraints",
    "platform_suffix",
)

_LOCK_VERSION = 1

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

def _platform_select(by_platform: dict[str, typing.Any], default: typing.Any) -> typing.Any:
    """A select on the prelude's os, then cpu, constraints (nested as the prelude does).

    `by_platform` maps OCI platforms to values; platforms Buck2 has no constraint for
    are left out, as are later platforms that map onto constraints already taken
    (`linux/arm64` and `linux/arm64/v8`). Every unmatched case picks `default`.
    """
    by_os = {}
    for platform in sorted(by_platform):
        constraints = buck2_constraints(platform)
        if constraints == None:
            continue
        os, cpu = constraints
        arms = by_os.setdefault(os, {})
        if cpu not in arms:
            arms[cpu] = by_platform[platform]
    outer = {"DEFAULT": default}
    for os in sorted(by_os):
        inner = {"DEFAULT": default}
        for cpu in sorted(by_os[os]):
            inner[cpu] = by_os[os][cpu]
        outer[os] = select(inner)
    return select(outer)

def _constraint_name_select(table: dict[str, str], default: str) -> typing.Any:
    arms = {"DEFAULT": default}
    for oci_name, constraint in table.items():
        arms[constraint] = oci_name
    return select(arms)

def _declare_fetch(
        common: dict[str, typing.Any],
        tool: str,
        platforms: dict[str, typing.Any],
        target_name: str,
        platform: str) -> str:
    toolfetch_fetch(
        name = target_name,
        tool = tool,
        platform = platform,
        path = platforms[platform]["path"],
        **common
    )
    return ":" + target_name

def _label_name(label: str) -> str:
    return label.rpartition(":")[2] if ":" in label else label.rpartition("/")[2]

def toolfetch_tools(
        name: str,
        lock: dict[str, typing.Any],
        lockfile: str = "tools.lock.json",
        fetcher: None | str = None,
        cache_dir: None | str = None,
        env: dict[str, str] = {},
        visibility: list[str] = ["PUBLIC"]) -> None:
    """Declare `:<tool>` for every tool in a toolfetch lockfile.

    Args:
      name: prefix of the per-platform targets (`<name>__<tool>__<os>_<arch>`).
      lock: the decoded lockfile (`load(":tools.lock.json", lock = "value")`).
      lockfile: the same lockfile as a source (a path in this package, or a label such
        as `root//:tools.lock.json` naming an `export_file`); it is an input of every
        fetch action, so a lock change re-runs them.
      fetcher: the toolfetch executable: a command on PATH or an absolute path, or a
        target label (`//tools:toolfetch`) providing RunInfo. Default: buckconfig
        `toolfetch.fetcher`, else `toolfetch`.
      cache_dir: TOOLFETCH_CACHE_DIR for the fetch actions. Default: buckconfig
        `toolfetch.cache_dir`, else the fetcher's own default.
      env: extra environment for the fetch actions.
      visibility: visibility of every declared target.
    """
    if type(lock) != "dict" or lock.get("version") != _LOCK_VERSION or type(lock.get("tools")) != "dict":
        fail("toolfetch: {} is not a version {} toolfetch lockfile (expected {{\"version\": {}, \"tools\": {{...}}}})".format(
            lockfile,
            _LOCK_VERSION,
            _LOCK_VERSION,
        ))
    if fetcher == None:
        fetcher = read_config("toolfetch", "fetcher", "toolfetch")
    if cache_dir == None:
        cache_dir = read_config("toolfetch", "cache_dir", "")
    common = {
        "cache_dir": cache_dir,
        "env": env,
        "lockfile": lockfile,
        "visibility": visibility,
    }
    if fetcher.startswith(":") or "//" in fetcher:
        common["fetcher_target"] = fetcher
    else:
        common["fetcher"] = fetcher

    for tool in sorted(lock["tools"]):
        platforms = lock["tools"][tool].get("platforms") or {}
        if not platforms:
            fail("toolfetch: tool {} in {} has no locked platforms".format(repr(tool), lockfile))

        if ANY_PLATFORM in platforms:
            actual = _declare_fetch(common, tool, platforms, "{}__{}".format(name, tool), ANY_PLATFORM)
        else:
            by_platform = {}
            for platform in sorted(platforms):
                by_platform[platform] = _declare_fetch(
                    common,
                    tool,
                    platforms,
                    "{}__{}__{}".format(name, tool, platform_suffix(platform)),
                    platform,
                )
            unsupported = "{}__{}__unsupported".format(name, tool)
            toolfetch_unsupported(
                name = unsupported,
                tool = tool,
                platforms = sorted(platforms),
                lockfile_name = _label_name(lockfile),
                locked = _platform_select({p: True for p in by_platform}, False),
                exec_os = _constraint_name_select(OCI_OS_TO_BUCK2, "<unmapped os>"),
                exec_cpu = _constraint_name_select(OCI_CPU_TO_BUCK2, "<unmapped cpu>"),
                visibility = visibility,
            )
            actual = _platform_select(by_platform, ":" + unsupported)

        toolfetch_tool(
            name = tool,
            tool = tool,
            platforms = sorted(platforms),
            actual = actual,
            visibility = visibility,
        )

def toolfetch_toolchains(
        lock: dict[str, typing.Any],
        tools_package: str = "root//",
        visibility: list[str] = ["PUBLIC"]) -> None:
    """Declare a toolchain `:<tool>` (e.g. in toolchains//:BUCK) for every locked tool.

    Each wraps `<tools_package>:<tool>`, the target `toolfetch_tools` declared in the
    package that holds the lockfile, as an exec dep: rules reach it through
    `attrs.toolchain_dep(default = "toolchains//:<tool>", providers = [RunInfo])`.
    """
    package = tools_package
    if package.endswith("/") and not package.endswith("//"):
        package = package.rstrip("/")
    for tool in sorted(lock["tools"]):
        toolfetch_toolchain(
            name = tool,
            tool = "{}:{}".format(package, tool),
            visibility = visibility,
        )
