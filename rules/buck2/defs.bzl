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
    "//rules/buck2/private:platforms.bzl",
    "ANY_PLATFORM",
    "OCI_CPU_TO_BUCK2",
    "OCI_OS_TO_BUCK2",
    "check_locked_platforms",
    "constraint_name_select",
    "platform_select",
    "platform_suffix",
)
load(
    "//rules/buck2/private:rules.bzl",
    "toolfetch_fetch",
    "toolfetch_http_file",
    "toolfetch_tool",
    "toolfetch_toolchain",
    "toolfetch_unsupported",
)

_LOCK_VERSION = 1

def _declare_fetch(
        common: dict[str, typing.Any],
        tool: str,
        platforms: dict[str, typing.Any],
        target_name: str,
        platform: str,
        native_http: bool) -> str:
    entry = platforms[platform]
    layers = entry.get("layers") or [{}]
    if native_http and entry.get("urls") and len(layers) == 1 and layers[0].get("unpack") == "raw":
        # A plain-file HTTP asset: Buck2 downloads it (first URL) and checks its sha256.
        toolfetch_http_file(
            name = target_name,
            tool = tool,
            path = entry["path"],
            url = entry["urls"][0],
            sha256 = layers[0]["digest"].removeprefix("sha256:"),
            size_bytes = layers[0]["size"],
            visibility = common["visibility"],
        )
    else:
        toolfetch_fetch(
            name = target_name,
            tool = tool,
            platform = platform,
            path = entry["path"],
            **common
        )
    return ":" + target_name

def _check_lock(lock: typing.Any, lockfile: str) -> None:
    """Fail unless `lock` is a version 1 lockfile whose platform keys toolfetch accepts."""
    if type(lock) != "dict" or lock.get("version") != _LOCK_VERSION or type(lock.get("tools")) != "dict":
        fail("toolfetch: {} is not a version {} toolfetch lockfile (expected {{\"version\": {}, \"tools\": {{...}}}})".format(
            lockfile,
            _LOCK_VERSION,
            _LOCK_VERSION,
        ))
    for tool in sorted(lock["tools"]):
        platforms = lock["tools"][tool].get("platforms") or {}
        if not platforms:
            fail("toolfetch: tool {} in {} has no locked platforms".format(repr(tool), lockfile))
        check_locked_platforms(lockfile, tool, platforms)

def _label_name(label: str) -> str:
    return label.rpartition(":")[2] if ":" in label else label.rpartition("/")[2]

def toolfetch_tools(
        name: str,
        lock: dict[str, typing.Any],
        lockfile: str = "tools.lock.json",
        fetcher: None | str = None,
        cache_dir: None | str = None,
        env: dict[str, str] = {},
        native_http: bool = True,
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
      native_http: plain-file HTTP release assets are downloaded by Buck2 itself
        (`ctx.actions.download_file`, sha256-checked, as the prelude's http_file); set
        False for assets behind credentials, which toolfetch then fetches. Archives always
        go through toolfetch, so they are unpacked by toolfetch's rules.
      visibility: visibility of every declared target.
    """
    _check_lock(lock, lockfile)
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
        platforms = lock["tools"][tool]["platforms"]
        if ANY_PLATFORM in platforms:
            actual = _declare_fetch(common, tool, platforms, "{}__{}".format(name, tool), ANY_PLATFORM, native_http)
        else:
            by_platform = {}
            for platform in sorted(platforms):
                by_platform[platform] = _declare_fetch(
                    common,
                    tool,
                    platforms,
                    "{}__{}__{}".format(name, tool, platform_suffix(platform)),
                    platform,
                    native_http,
                )
            unsupported = "{}__{}__unsupported".format(name, tool)
            toolfetch_unsupported(
                name = unsupported,
                tool = tool,
                platforms = sorted(platforms),
                lockfile_name = _label_name(lockfile),
                locked = platform_select({p: True for p in by_platform}, False),
                exec_os = constraint_name_select(OCI_OS_TO_BUCK2, "<unmapped os>"),
                exec_cpu = constraint_name_select(OCI_CPU_TO_BUCK2, "<unmapped cpu>"),
                visibility = visibility,
            )
            actual = platform_select(by_platform, ":" + unsupported)

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
        visibility: list[str] = ["PUBLIC"],
        lockfile: str = "tools.lock.json") -> None:
    """Declare a toolchain `:<tool>` (e.g. in toolchains//:BUCK) for every locked tool.

    Each wraps `<tools_package>:<tool>`, the target `toolfetch_tools` declared in the
    package that holds the lockfile, as an exec dep: rules reach it through
    `attrs.toolchain_dep(default = "toolchains//:<tool>", providers = [RunInfo])`.
    The lock is checked as `toolfetch_tools` checks it; `lockfile` names it in errors.
    """
    _check_lock(lock, lockfile)
    package = tools_package
    if package.endswith("/") and not package.endswith("//"):
        package = package.rstrip("/")
    for tool in sorted(lock["tools"]):
        toolfetch_toolchain(
            name = tool,
            tool = "{}:{}".format(package, tool),
            visibility = visibility,
        )
