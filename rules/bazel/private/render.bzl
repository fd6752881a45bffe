"""The files the repositories generate, rendered from templates/*.tpl (pure).

`render(template, values)` replaces each `{key}`; values that land in Starlark code are
passed through `repr`, so a name or message can never break out of its string. The
repository rules read the templates (`TEMPLATES`) and pass them in, so the unit tests render
the same files from the same templates without Bazel.
"""

load("//rules/bazel/private:lockfile.bzl", "ANY_PLATFORM", "plan_repos", "repo_name", "repo_suffix", "selectable", "tool_platforms")

TEMPLATES = [
    "hub.BUILD",
    "hub_config_setting",
    "hub_tool",
    "hub_unavailable",
    "repositories.bzl",
    "tool.BUILD",
    "toolchain",
    "toolchains.BUILD",
]

def render(template, values):
    """`template` with every `{key}` of `values` replaced by its value."""
    for key in sorted(values.keys()):
        template = template.replace("{" + key + "}", values[key])
    return template

def _setting_name(platform):
    return "_platform_" + repo_suffix(platform)

def _not_locked(tool, platforms, source):
    return ("toolfetch: tool '%s' is not locked for this execution platform; %s has: " +
            "%s. Add the platform to tools.yaml and run `toolfetch lock`.") % (
        tool,
        source,
        ", ".join(platforms),
    )

def _select(hub, tool, choices, target, message):
    arms = {":" + _setting_name(p): "@%s//:%s" % (repo_name(hub, tool, p), target) for p, _ in choices}
    return "select(%r, no_match_error = %r)" % (arms, message)

def _hub_tool(templates, hub, lock, tool, source):
    platforms = tool_platforms(lock, tool)
    choices = selectable(lock, tool)
    prefix = ""
    if ANY_PLATFORM in platforms:
        repo = "@" + repo_name(hub, tool, ANY_PLATFORM)
        actual = {"tool": repr(repo + "//:tool"), "files": repr(repo + "//:files")}
    elif not choices:
        unavailable = "_unavailable_" + tool
        prefix = render(templates["hub_unavailable"], {
            "name": repr(unavailable),
            "message": repr(_not_locked(tool, platforms, source)),
        })
        actual = {"tool": repr(":" + unavailable), "files": repr(":" + unavailable)}
    else:
        message = _not_locked(tool, platforms, source)
        actual = {t: _select(hub, tool, choices, t, message) for t in ("tool", "files")}
    return prefix + render(templates["hub_tool"], {
        "tool": tool,
        "platforms": ", ".join(platforms),
        "tool_name": repr(tool),
        "tool_actual": actual["tool"],
        "files_name": repr(tool + "_files"),
        "files_actual": actual["files"],
        "toolchain_type": repr(tool + "_toolchain_type"),
    })

def hub_build_file(templates, hub, lock, source, tool_bzl):
    """BUILD.bazel of the hub repository: `<tool>`, `<tool>_files`, `<tool>_toolchain_type`."""
    settings = {}
    for tool in sorted(lock["tools"].keys()):
        for platform, constraints in selectable(lock, tool):
            settings[_setting_name(platform)] = constraints
    return render(templates["hub.BUILD"], {
        "source": source,
        "tool_bzl": repr(tool_bzl),
        "config_settings": "".join([
            render(templates["hub_config_setting"], {"name": repr(n), "constraints": repr(settings[n])})
            for n in sorted(settings.keys())
        ]),
        "tools": "".join([_hub_tool(templates, hub, lock, t, source) for t in sorted(lock["tools"].keys())]),
    })

def hub_toolchains_build_file(templates, hub, lock, source):
    """BUILD.bazel of `@<hub>//toolchains`: one `toolchain` per tool x platform."""
    toolchains = []
    for tool in sorted(lock["tools"].keys()):
        if ANY_PLATFORM in tool_platforms(lock, tool):
            pairs = [(ANY_PLATFORM, [])]
        else:
            pairs = selectable(lock, tool)
        for platform, constraints in pairs:
            toolchains.append(render(templates["toolchain"], {
                "name": repr(tool + "_" + repo_suffix(platform)),
                "constraints": repr(constraints),
                "toolchain": repr("@%s//:toolchain" % repo_name(hub, tool, platform)),
                "toolchain_type": repr("//:%s_toolchain_type" % tool),
            }))
    return render(templates["toolchains.BUILD"], {"source": source, "toolchains": "".join(toolchains)})

def hub_repositories_bzl(templates, hub, lock, source, repositories_bzl, common):
    """`@<hub>//:repositories.bzl` for WORKSPACE: `toolfetch_register()` declares every
    tool x platform repository (lazily fetched) and registers the toolchains."""
    return render(templates["repositories.bzl"], {
        "source": source,
        "repositories_bzl": repr(repositories_bzl),
        "tools": repr(sorted(lock["tools"].keys())),
        "common": repr(common),
        "repos": repr(plan_repos(hub, lock)),
        "hub": hub,
        "toolchains_label": repr("@%s//toolchains:all" % hub),
    })

def tool_build_file(templates, tool, platform, entry, source, tool_bzl):
    """BUILD.bazel of a tool x platform repository; the unpacked tree is under `files/`."""
    return render(templates["tool.BUILD"], {
        "source": source,
        "tool": tool,
        "platform": platform,
        "manifest": entry.get("manifest") or ("asset " + ", ".join(entry.get("urls", ["?"]))),
        "tool_bzl": repr(tool_bzl),
        "src": repr("files/" + entry["path"]),
    })
