"""WORKSPACE setup (Bazel 4.2+): the public API. The implementation is under private/.

    load("@toolfetch//rules/bazel:repositories.bzl", "toolfetch_tools")
    toolfetch_tools(name = "tools", lockfile = "//:tools.lock.json")
    load("@tools//:repositories.bzl", "toolfetch_register")
    toolfetch_register()

`toolfetch_tools` declares the hub repository `@tools`. Reading the lockfile, it generates
`@tools//:repositories.bzl`, whose `toolfetch_register()` declares one repository per tool x
platform (`@tools__<tool>__<os>_<arch>`, fetched only when a build needs it) and registers
the toolchains. See docs/bazel.md.
"""

load("//rules/bazel/private:attrs.bzl", "common_values")
load("//rules/bazel/private:repository_rules.bzl", "toolfetch_hub_repository")

def toolfetch_tools(name, lockfile, **kwargs):
    """WORKSPACE macro: the hub repository `@<name>` for a toolfetch lockfile.

    Then `load("@<name>//:repositories.bzl", "toolfetch_register")` and call
    `toolfetch_register()`.

    Args:
      name: the hub repository name; targets are `@<name>//:<tool>` and `@<name>//:<tool>_files`.
      lockfile: label of tools.lock.json, e.g. "//:tools.lock.json".
      **kwargs: the attributes every tool repository shares (private/attrs.bzl): `toolfetch`
        (path of the toolfetch executable, default `toolfetch` on PATH), `python` (run
        `<python> -m toolfetch` with this checkout's tools/ on PYTHONPATH),
        `use_rctx_download` (fetch layers with Bazel's downloader) and `timeout` (seconds one
        tool x platform fetch may take).
    """
    unknown = [k for k in kwargs if k not in common_values({})]
    if unknown:
        fail("toolfetch_tools: unknown argument(s) %s" % ", ".join(unknown))
    toolfetch_hub_repository(name = name, hub = name, lockfile = lockfile, **common_values(kwargs))
