"""bzlmod setup (Bazel 7+): the public API. The implementation is under private/.

    toolfetch = use_extension("@toolfetch//rules/bazel:extensions.bzl", "toolfetch")
    toolfetch.lock(name = "tools", lockfile = "//:tools.lock.json")
    use_repo(toolfetch, "tools")
    register_toolchains("@tools//toolchains:all")  # only for toolchain resolution

The extension reads the lockfile and declares the hub `@tools` plus one repository per
tool x platform, with the same shared logic (private/) as the WORKSPACE macro. Repositories
are fetched lazily: a build fetches only the platforms it needs.
"""

load("//rules/bazel/private:attrs.bzl", "COMMON_ATTRS", "common_values")
load("//rules/bazel/private:lockfile.bzl", "parse_lockfile", "plan_repos")
load("//rules/bazel/private:repository_rules.bzl", "label_str", "toolfetch_hub_repository", "toolfetch_tool_repository")

_LOCK_ATTRS = {
    "name": attr.string(mandatory = True, doc = "The hub repository name (use_repo it)."),
    "lockfile": attr.label(mandatory = True, doc = "tools.lock.json"),
}
_LOCK_ATTRS.update(COMMON_ATTRS)

_lock = tag_class(
    attrs = _LOCK_ATTRS,
    doc = "A hub repository `@<name>` with the tools of a toolfetch lockfile.",
)

def _toolfetch_impl(module_ctx):
    hubs = {}
    for mod in module_ctx.modules:
        for tag in mod.tags.lock:
            lockfile = label_str(tag.lockfile)
            if tag.name in hubs:
                if hubs[tag.name] != lockfile:
                    fail("toolfetch.lock: name %r is used for both %s and %s (in module %s)" % (
                        tag.name,
                        hubs[tag.name],
                        lockfile,
                        mod.name,
                    ))
                continue
            hubs[tag.name] = lockfile
            lock = parse_lockfile(module_ctx.read(module_ctx.path(tag.lockfile)), lockfile)
            common = common_values(tag)
            for repo in plan_repos(tag.name, lock):
                kwargs = dict(common)
                kwargs.update(repo)
                toolfetch_tool_repository(lockfile = tag.lockfile, **kwargs)
            toolfetch_hub_repository(name = tag.name, hub = tag.name, lockfile = tag.lockfile, **common)

toolfetch = module_extension(
    implementation = _toolfetch_impl,
    tag_classes = {"lock": _lock},
    doc = "Hub + per-tool, per-platform repositories from toolfetch lockfiles.",
)
