"""The attributes the WORKSPACE macro, the bzlmod tag and every repository share: read here
once (`COMMON_ATTRS`, `common_values`), so the two setups cannot drift."""

COMMON_ATTRS = {
    "toolfetch": attr.string(
        doc = "Path of the toolfetch executable (default: `toolfetch` on PATH). A bare " +
              "name is looked up on PATH.",
    ),
    "python": attr.string(
        doc = "Run the fetcher as `<python> -m toolfetch`, with this toolfetch checkout's " +
              "`tools/` first on PYTHONPATH (its dependencies must be installed).",
    ),
    "use_rctx_download": attr.bool(
        default = False,
        doc = "Download layers with Bazel's own downloader (rctx.download + extract) " +
              "instead of running toolfetch. Anonymous registries only; see docs/bazel.md.",
    ),
    "timeout": attr.int(default = 3600, doc = "Seconds a fetch may take."),
}

# The defaults of COMMON_ATTRS, for the WORKSPACE macro's keyword arguments.
COMMON_DEFAULTS = {"toolfetch": "", "python": "", "use_rctx_download": False, "timeout": 3600}

def common_values(attrs):
    """The COMMON_ATTRS values of a rule's `attr`, a tag, or a dict of keyword arguments."""
    if type(attrs) == "dict":
        return {name: attrs.get(name, COMMON_DEFAULTS[name]) for name in COMMON_DEFAULTS}
    return {name: getattr(attrs, name) for name in COMMON_DEFAULTS}
