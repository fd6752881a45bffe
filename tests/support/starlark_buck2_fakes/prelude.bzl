# A fake Buck2 prelude, in Starlark, for evaluating rules/buck2/*.bzl under
# starlark-rust (starlark-pyo3) without a Buck2 binary. See harness.py.
#
# It mirrors the Buck2 API surface the toolfetch rules use -- `rule`, `attrs`,
# `select`, `DefaultInfo`, `RunInfo`, `cmd_args`, `ctx.actions.declare_output/run/download_file`,
# `read_config`, `native` -- with Buck2's argument names (keyword-only where Buck2's
# are), so a misspelt or unsupported argument fails here as it would in Buck2.
# Everything it records is converted to plain data (dicts, lists, strings) so the
# Python harness can resolve selects, run analysis and assert on the results.
#
# Host callables injected by the harness before this module is evaluated:
#   py_register_rule(spec) -> int       a new rule, by id
#   py_record_target(rule_id, kwargs)   a target declared while a BUCK file evaluates
#   py_read_config(section, key, default)
#   py_package_name() -> str

# Buck2's type names, for annotations in the rules under test.
AnalysisContext = typing.Any
Artifact = typing.Any
Dependency = typing.Any
Provider = typing.Any
ProviderCollection = typing.Any
Select = typing.Any

_COMMON_ATTRS = [
    "name",
    "visibility",
    "within_view",
    "labels",
    "target_compatible_with",
    "compatible_with",
    "exec_compatible_with",
    "default_target_platform",
    "metadata",
    "modifiers",
    "tests",
]

# ---------------------------------------------------------------- attrs

def _spec(kind, kwargs, **extra):
    spec = {"kind": kind, "has_default": "default" in kwargs, "default": kwargs.get("default")}
    spec.update(extra)
    return spec

def _provider_names(providers):
    return [str(p).rpartition(".")[2] for p in providers]

def _attr_string(**kwargs):
    _only(kwargs, ["default", "doc", "validate"], "attrs.string")
    return _spec("string", kwargs)

def _attr_bool(**kwargs):
    _only(kwargs, ["default", "doc"], "attrs.bool")
    return _spec("bool", kwargs)

def _attr_int(**kwargs):
    _only(kwargs, ["default", "doc"], "attrs.int")
    return _spec("int", kwargs)

def _attr_source(**kwargs):
    _only(kwargs, ["default", "doc", "allow_directory"], "attrs.source")
    return _spec("source", kwargs)

def _attr_arg(**kwargs):
    _only(kwargs, ["default", "doc", "json", "allow_empty", "anon_target_compatible"], "attrs.arg")
    return _spec("arg", kwargs)

def _dep_attr(kind):
    def make(**kwargs):
        _only(kwargs, ["default", "doc", "providers", "pulls_plugins", "pulls_and_pushes_plugins"], "attrs." + kind)
        return _spec(kind, kwargs, providers = _provider_names(kwargs.get("providers", [])))

    return make

def _attr_option(inner, **kwargs):
    _only(kwargs, ["default", "doc"], "attrs.option")
    _check_spec(inner, "attrs.option")
    return _spec("option", kwargs, inner = inner)

def _attr_list(inner, **kwargs):
    _only(kwargs, ["default", "doc"], "attrs.list")
    _check_spec(inner, "attrs.list")
    return _spec("list", kwargs, inner = inner)

def _attr_dict(key, value, **kwargs):
    _only(kwargs, ["default", "doc", "sorted"], "attrs.dict")
    _check_spec(key, "attrs.dict")
    _check_spec(value, "attrs.dict")
    return _spec("dict", kwargs, key = key, value = value)

def _only(kwargs, allowed, what):
    for k in kwargs:
        if k not in allowed:
            fail("{}() got an unexpected keyword argument '{}'".format(what, k))

def _check_spec(spec, what):
    if type(spec) != "dict" or "kind" not in spec:
        fail("{}: expected an attribute, got {}".format(what, repr(spec)))

attrs = struct(
    arg = _attr_arg,
    bool = _attr_bool,
    dep = _dep_attr("dep"),
    dict = _attr_dict,
    exec_dep = _dep_attr("exec_dep"),
    int = _attr_int,
    list = _attr_list,
    option = _attr_option,
    source = _attr_source,
    string = _attr_string,
    toolchain_dep = _dep_attr("toolchain_dep"),
)

# ---------------------------------------------------------------- select / config

def select(d):
    if type(d) != "dict" or not d:
        fail("select() expects a non-empty dict of {condition: value}")
    for k in d:
        if type(k) != "string":
            fail("select() keys must be strings, got {}".format(repr(k)))
    return {"__select__": d}

def read_config(section, key, default = None):
    return py_read_config(section, key, default)

def _package_name():
    return py_package_name()

# ---------------------------------------------------------------- rules

def rule(*, impl, attrs, doc = "", is_toolchain_rule = False, cfg = None, uses_plugins = None, supports_incoming_transition = None):
    if type(attrs) != "dict":
        fail("rule(): attrs must be a dict")
    for k, spec in attrs.items():
        _check_spec(spec, "rule() attribute " + k)
        if k in _COMMON_ATTRS:
            fail("rule(): attribute `{}` is reserved".format(k))
    rule_id = py_register_rule({
        "attrs": attrs,
        "impl": str(impl),
        "is_toolchain_rule": is_toolchain_rule,
        "doc": doc,
    })

    def instantiate(**kwargs):
        if "__fake_analyze__" in kwargs:
            return _analyze(impl, attrs, kwargs["__fake_analyze__"])
        if "__fake_rule_id__" in kwargs:
            return rule_id
        if "name" not in kwargs:
            fail("missing required attribute `name`")
        for k in kwargs:
            if k not in attrs and k not in _COMMON_ATTRS:
                fail("rule got unknown attribute `{}` (target `{}`)".format(k, kwargs["name"]))
        for k, spec in attrs.items():
            if not spec["has_default"] and k not in kwargs:
                fail("missing required attribute `{}` (target `{}`)".format(k, kwargs["name"]))
        py_record_target(rule_id, kwargs)
        return None

    return instantiate

def fake_bind_rules(table):
    """Called by the harness after a module evaluates: rule id -> exported name."""
    return {name: r(__fake_rule_id__ = True) for name, r in table.items()}

def fake_run_analysis(r, ctx_data):
    return r(__fake_analyze__ = ctx_data)

# ---------------------------------------------------------------- artifacts, cmd_args

def _artifact(path, short_path, is_output, is_dir, owner = None, projected_from = None):
    data = {
        "artifact": path,
        "short_path": short_path,
        "output": is_output,
        "dir": is_dir,
        "owner": owner,
        "projected_from": projected_from,
    }

    def as_output():
        if not is_output:
            fail("as_output() on a source artifact " + path)
        return struct(__output_marker__ = data)

    def project(rel, hide_prefix = False):
        if rel.startswith("/") or ".." in rel.split("/"):
            fail("project(): path must be relative and normalized: " + rel)
        return _artifact(path + "/" + rel, short_path + "/" + rel, is_output, False, owner, path)

    return struct(
        __artifact__ = data,
        basename = path.rpartition("/")[2],
        short_path = short_path,
        is_source = not is_output,
        owner = owner,
        as_output = as_output,
        project = project,
    )

def _is_struct_with(v, field):
    return type(v) == "struct" and hasattr(v, field)

def _normalize_item(v, fmt):
    """One command-line item, as data: {"s": str} / {"artifact": ..., "format": ...}."""
    if type(v) == "string":
        return [{"s": fmt.replace("{}", v) if fmt else v}]
    if type(v) == "int":
        return _normalize_item(str(v), fmt)
    if type(v) == "list" or type(v) == "tuple":
        out = []
        for x in v:
            out += _normalize_item(x, fmt)
        return out
    if _is_struct_with(v, "__artifact__"):
        return [dict(v.__artifact__, format = fmt, as_output = False)]
    if _is_struct_with(v, "__output_marker__"):
        return [dict(v.__output_marker__, format = fmt, as_output = True)]
    if type(v) == "dict" and "artifact" in v:  # an artifact that came back from the harness
        return [dict(v, format = fmt)]
    if type(v) == "dict" and "s" in v:
        return [{"s": fmt.replace("{}", v["s"]) if fmt else v["s"]}]
    if _is_struct_with(v, "__cmd_args__"):
        return _normalize_item(v.__cmd_args__["items"], fmt)
    if type(v) == "dict" and "__cmd_args__" in v:
        return _normalize_item(v["__cmd_args__"]["items"], fmt)
    if _is_struct_with(v, "__provider__") and v.__provider__ == "RunInfo":
        return _normalize_item(v.args, fmt)
    fail("cmd_args: unsupported value {} of type {}".format(repr(v), type(v)))

def _hidden_of(v):
    if _is_struct_with(v, "__cmd_args__"):
        return v.__cmd_args__["hidden"]
    if type(v) == "dict" and "__cmd_args__" in v:
        return v["__cmd_args__"]["hidden"]
    if _is_struct_with(v, "__provider__") and v.__provider__ == "RunInfo":
        return _hidden_of(v.args)
    if type(v) == "list" or type(v) == "tuple":
        out = []
        for x in v:
            out += _hidden_of(x)
        return out
    return []

def cmd_args(*args, hidden = [], format = None, delimiter = None, quote = None, prepend = None, ignore_artifacts = False, absolute_prefix = None, absolute_suffix = None, parent = 0, relative_to = None, replace_regex = None):
    if format != None and "{}" not in format:
        fail("cmd_args(): format string must contain {}")
    for unsupported, value in [("delimiter", delimiter), ("quote", quote), ("prepend", prepend), ("relative_to", relative_to), ("replace_regex", replace_regex), ("absolute_prefix", absolute_prefix), ("absolute_suffix", absolute_suffix)]:
        if value != None:
            fail("fake cmd_args(): `{}` is not modelled".format(unsupported))
    items = _normalize_item(list(args), format)
    hid = _hidden_of(list(args)) + _normalize_item(hidden if type(hidden) == "list" else [hidden], None)
    return struct(__cmd_args__ = {"items": items, "hidden": hid})

# ---------------------------------------------------------------- providers

def _data(v):
    """Plain data for a provider field (artifacts, cmd_args, nested providers)."""
    if v == None or type(v) in ("string", "int", "bool"):
        return v
    if type(v) == "list" or type(v) == "tuple":
        return [_data(x) for x in v]
    if type(v) == "dict":
        return {k: _data(x) for k, x in v.items()}
    if _is_struct_with(v, "__artifact__"):
        return v.__artifact__
    if _is_struct_with(v, "__cmd_args__"):
        return {"__cmd_args__": v.__cmd_args__}
    if _is_struct_with(v, "__provider__"):
        return _provider_data(v)
    fail("provider field: unsupported value {}".format(repr(v)))

def _provider_data(p):
    return {k: _data(getattr(p, k)) for k in dir(p)}

def DefaultInfo(default_output = None, default_outputs = None, other_outputs = [], sub_targets = {}):
    if default_output != None and default_outputs != None:
        fail("DefaultInfo(): default_output and default_outputs are exclusive")
    outs = [default_output] if default_output != None else (default_outputs or [])
    for name, providers in sub_targets.items():
        if type(providers) != "list":
            fail("DefaultInfo(): sub_targets[{}] must be a list of providers".format(name))
    return struct(
        __provider__ = "DefaultInfo",
        default_outputs = [_data(a) for a in outs],
        other_outputs = [_data(a) for a in other_outputs],
        sub_targets = {k: [_data(p) for p in v] for k, v in sub_targets.items()},
    )

def RunInfo(args = []):
    return struct(__provider__ = "RunInfo", args = {"__cmd_args__": cmd_args(args).__cmd_args__})

_PROVIDERS = {"DefaultInfo": DefaultInfo, "RunInfo": RunInfo}

# ---------------------------------------------------------------- analysis

def _dependency(providers_data):
    """A Dependency: indexable by provider (dep[RunInfo]), like Buck2's."""
    dep = {}
    for p in providers_data:
        dep[_PROVIDERS[p["__provider__"]]] = struct(**p)
    return dep

def _attr_value(spec, value):
    kind = spec["kind"]
    if value == None:
        return None
    if kind == "option":
        return _attr_value(spec["inner"], value)
    if kind == "list":
        return [_attr_value(spec["inner"], v) for v in value]
    if kind == "dict":
        return {_attr_value(spec["key"], k): _attr_value(spec["value"], v) for k, v in value.items()}
    if kind == "source":
        return _artifact(value["path"], value["path"], False, False)
    if kind in ("dep", "exec_dep", "toolchain_dep"):
        return _dependency(value)
    return value

def _analyze(impl, attr_specs, ctx_data):
    label = ctx_data["label"]
    declared = []
    actions = []
    prefix = "buck-out/v2/gen/{}/{}/__{}__".format(
        label["cell"],
        label["package"],
        label["name"],
    ).replace("//", "/")

    def declare_output(*filename, dir = False):
        if not filename:
            fail("declare_output(): a filename is required")
        rel = "/".join(filename)
        for d in declared:
            if d["short_path"] == rel:
                fail("declare_output(): {} declared twice".format(rel))
        art = _artifact(prefix + "/" + rel, rel, True, dir, label["cell"] + "//" + label["package"] + ":" + label["name"])
        declared.append(art.__artifact__)
        return art

    def run(arguments, *, category, identifier = None, env = None, local_only = False, prefer_local = False, prefer_remote = False, always_print_stderr = False, weight = None, allow_cache_upload = None, allow_offline_output_cache = None, exe = None, no_outputs_cleanup = False):
        if local_only and (prefer_local or prefer_remote):
            fail("run(): local_only excludes prefer_local/prefer_remote")
        args = cmd_args(arguments).__cmd_args__
        outputs = [i for i in args["items"] if i.get("as_output")]
        if not outputs:
            fail("run(): an action must have at least one output")
        for o in outputs:
            for a in actions:
                if o["artifact"] in [x["artifact"] for x in a["outputs"]]:
                    fail("run(): {} is already bound to another action".format(o["artifact"]))
        env_data = {}
        for k, v in (env or {}).items():
            env_data[k] = cmd_args(v).__cmd_args__["items"]
        actions.append({
            "category": category,
            "identifier": identifier,
            "argv": args["items"],
            "inputs": [i for i in args["items"] + args["hidden"] if "artifact" in i and not i.get("as_output")],
            "outputs": outputs,
            "env": env_data,
            "local_only": local_only,
            "prefer_local": prefer_local,
        })

    def download_file(output, url, *, vpnless_url = None, sha1 = None, sha256 = None, is_executable = False, is_deferrable = False, size_bytes = None):
        if not _is_struct_with(output, "__artifact__"):
            fail("download_file(): output must be a declared artifact")
        if sha1 == None and sha256 == None:
            fail("download_file(): a sha1 or sha256 is required")
        for a in actions:
            if output.__artifact__["artifact"] in [x["artifact"] for x in a["outputs"]]:
                fail("download_file(): {} is already bound to another action".format(output.__artifact__["artifact"]))
        actions.append({
            "category": "download_file",
            "identifier": url,
            "url": url,
            "vpnless_url": vpnless_url,
            "sha256": sha256,
            "size_bytes": size_bytes,
            "is_executable": is_executable,
            "argv": [],
            "inputs": [],
            "outputs": [{"artifact": output.__artifact__["artifact"]}],
            "env": {},
            "local_only": False,
            "prefer_local": False,
        })

    resolved = {}
    for k, spec in attr_specs.items():
        resolved[k] = _attr_value(spec, ctx_data["attrs"][k])
    ctx = struct(
        attrs = struct(**resolved),
        label = struct(name = label["name"], package = label["package"], cell = label["cell"]),
        actions = struct(declare_output = declare_output, run = run, download_file = download_file),
    )
    providers = impl(ctx)
    if type(providers) != "list":
        fail("rule implementation must return a list of providers")
    kinds = [p.__provider__ for p in providers if _is_struct_with(p, "__provider__")]
    if len(kinds) != len(providers):
        fail("rule implementation returned a non-provider")
    if "DefaultInfo" not in kinds:
        fail("rule implementation must return DefaultInfo")
    if len(kinds) != len({k: 1 for k in kinds}):
        fail("rule implementation returned a provider twice: {}".format(kinds))
    bound = []
    for a in actions:
        bound += [o["artifact"] for o in a["outputs"]]
    for d in declared:
        if d["artifact"] not in bound:
            fail("declared output {} was never bound to an action".format(d["artifact"]))
    return {
        "providers": [_provider_data(p) for p in providers],
        "actions": actions,
        "declared": declared,
    }

# ---------------------------------------------------------------- a few prelude rules

def _genrule_impl(ctx):
    fail("fake prelude: genrule analysis is not modelled")

genrule = rule(
    impl = _genrule_impl,
    attrs = {
        "bash": attrs.option(attrs.arg(), default = None),
        "cmd": attrs.option(attrs.arg(), default = None),
        "out": attrs.option(attrs.string(), default = None),
        "outs": attrs.option(attrs.dict(attrs.string(), attrs.list(attrs.string())), default = None),
        "srcs": attrs.list(attrs.source(), default = []),
        "type": attrs.option(attrs.string(), default = None),
    },
)

def _export_file_impl(ctx):
    return [DefaultInfo(default_output = ctx.attrs.src)]

export_file = rule(
    impl = _export_file_impl,
    attrs = {"mode": attrs.option(attrs.string(), default = None), "src": attrs.source()},
)

native = struct(
    export_file = export_file,
    genrule = genrule,
    package_name = _package_name,
    read_config = read_config,
    select = select,
)
