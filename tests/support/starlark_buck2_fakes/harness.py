"""Evaluate Buck2 .bzl/BUCK files under starlark-rust (starlark-pyo3) with a fake prelude.

This is not Buck2. It reproduces the parts of Buck2's model the toolfetch rules depend
on, so tests can assert on them:

* loading: cells (``cell//pkg:file.bzl``, ``@cell//…``, ``:file.bzl`` relative to the
  loading file), ``.json`` loads binding ``value``;
* the fake prelude (``prelude.bzl`` here) injected as globals into every file;
* the unconfigured target graph: targets recorded per package while a BUCK file runs;
* configuration: ``select`` resolved against a set of constraint values, nested selects
  included, with Buck2's "DEFAULT or error" rule;
* analysis: a configured target's rule implementation run with resolved attributes,
  ``dep``s configured for the target platform and ``exec_dep``s for the execution
  platform (a toolchain's exec deps use its dependent's execution platform).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import starlark as sl

HERE = Path(__file__).resolve().parent
PRELUDE = HERE / "prelude.bzl"

# Constraint values the real prelude defines (prelude//os/constraints, prelude//cpu/constraints
# re-exported as prelude//os:* and prelude//cpu:*); a select on anything else is a typo.
PRELUDE_OS = {
    "linux",
    "macos",
    "windows",
    "freebsd",
    "android",
    "iphoneos",
    "wasi",
    "none",
    "fuchsia",
}
PRELUDE_CPU = {"x86_64", "arm64", "arm32", "x86_32", "riscv64", "wasm32"}
KNOWN_CONSTRAINTS = {f"prelude//os:{o}" for o in PRELUDE_OS} | {
    f"prelude//cpu:{c}" for c in PRELUDE_CPU
}

_EXTENSIONS = [
    "StructType",
    "RecordType",
    "EnumType",
    "Map",
    "Filter",
    "Partial",
    "Debug",
    "Print",
    "Pprint",
    "Json",
    "Typing",
    "Internal",
]
_PRELUDE_EXPORTS = [
    "AnalysisContext",
    "Artifact",
    "DefaultInfo",
    "Dependency",
    "Provider",
    "ProviderCollection",
    "RunInfo",
    "Select",
    "attrs",
    "cmd_args",
    "export_file",
    "fake_bind_rules",
    "fake_run_analysis",
    "genrule",
    "native",
    "read_config",
    "rule",
    "select",
]
_RULE_ASSIGN = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*rule\(", re.M)


def dialect() -> sl.Dialect:
    """Buck2's dialect as far as the binding exposes it: types, f-strings, kw-only args."""
    d = sl.Dialect.extended()
    d.enable_types = sl.DialectTypes.ENABLE
    d.enable_f_strings = True
    d.enable_keyword_only_arguments = True
    d.enable_positional_only_arguments = True
    d.enable_top_level_stmt = True
    d.enable_load_reexport = False
    return d


def globals_() -> sl.Globals:
    return sl.Globals.extended_by([getattr(sl.LibraryExtension, n) for n in _EXTENSIONS])


class Buck2Error(Exception):
    """A build error the fake detects (bad select, missing target, analysis failure)."""


@dataclass(frozen=True)
class Label:
    cell: str
    package: str
    name: str

    def __str__(self) -> str:
        return f"{self.cell}//{self.package}:{self.name}"

    @classmethod
    def parse(cls, text: str, cell: str, package: str) -> Label:
        if text.startswith(":"):
            return cls(cell, package, text[1:])
        text = text.lstrip("@")
        if "//" not in text:
            raise Buck2Error(f"not a target label: {text!r}")
        c, _, rest = text.partition("//")
        pkg, _, name = rest.partition(":")
        if not name:
            name = pkg.rpartition("/")[2]
        return cls(c or cell, pkg, name)


@dataclass
class Target:
    label: Label
    rule_id: int
    attrs: dict[str, Any]


@dataclass
class Platform:
    """A configuration: the constraint values it carries."""

    name: str
    constraints: frozenset[str]

    @classmethod
    def of(cls, os: str | None, cpu: str | None) -> Platform:
        cs = set()
        if os:
            cs.add(f"prelude//os:{os}")
        if cpu:
            cs.add(f"prelude//cpu:{cpu}")
        return cls(f"{os}-{cpu}", frozenset(cs))


@dataclass
class FakeBuck2:
    cells: dict[str, Path]
    config: dict[tuple[str, str], str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._dialect = dialect()
        self._globals = globals_()
        self._modules: dict[Path, sl.FrozenModule] = {}
        self._rule_modules: dict[int, sl.FrozenModule] = {}
        self.rule_specs: dict[int, dict[str, Any]] = {}
        self.rule_names: dict[int, str] = {}
        self.targets: dict[Label, Target] = {}
        self._package: tuple[str, str] | None = None
        self._analysis: dict[tuple[Label, str, str], dict[str, Any]] = {}
        self._prelude = self._load_prelude()

    # ------------------------------------------------------------- host callables
    def _register_rule(self, spec: dict[str, Any]) -> int:
        rid = len(self.rule_specs) + 1
        self.rule_specs[rid] = spec
        return rid

    def _record_target(self, rule_id: int, kwargs: dict[str, Any]) -> None:
        if self._package is None:
            raise Buck2Error("targets can only be declared while a BUCK file is evaluated")
        cell, package = self._package
        label = Label(cell, package, kwargs["name"])
        if label in self.targets:
            raise Buck2Error(f"target {label} declared twice")
        self.targets[label] = Target(label, rule_id, kwargs)

    def _read_config(self, section: str, key: str, default: Any = None) -> Any:
        return self.config.get((section, key), default)

    def _package_name(self) -> str:
        if self._package is None:
            raise Buck2Error("package_name() outside a BUCK file")
        return self._package[1]

    # ------------------------------------------------------------- loading
    def _load_prelude(self) -> sl.FrozenModule:
        m = sl.Module()
        m.add_callable("py_register_rule", self._register_rule)
        m.add_callable("py_record_target", self._record_target)
        m.add_callable("py_read_config", self._read_config)
        m.add_callable("py_package_name", self._package_name)
        source = PRELUDE.read_text()
        sl.eval(m, sl.parse(str(PRELUDE), source, self._dialect), self._globals)
        return self._bind_rules(m, source, str(PRELUDE))

    def _bind_rules(self, m: sl.Module, source: str, filename: str) -> sl.FrozenModule:
        names = _RULE_ASSIGN.findall(source)
        if names:
            table = ", ".join(f'"{n}": {n}' for n in names)
            snippet = (
                f"fake_rules_table = {{{table}}}\n"
                "fake_rule_ids = fake_bind_rules(fake_rules_table)\n"
                "def fake_analyze_rule(rule_name, ctx_data):\n"
                "    return fake_run_analysis(fake_rules_table[rule_name], ctx_data)\n"
            )
            sl.eval(m, sl.parse(filename + "#fake", snippet, self._dialect), self._globals)
            ids: dict[str, int] = m["fake_rule_ids"]  # type: ignore[assignment]
        fm = m.freeze()
        if names:
            for name, rid in ids.items():
                self.rule_names[rid] = name
                self._rule_modules[rid] = fm
        return fm

    def resolve_load(self, module: str, from_file: Path) -> Path:
        if module.startswith(":"):
            return from_file.parent / module[1:]
        text = module.lstrip("@")
        cell, sep, rest = text.partition("//")
        if not sep:
            raise Buck2Error(f"bad load path {module!r}")
        if not cell:
            cell = self.cell_of(from_file)
        if cell not in self.cells:
            raise Buck2Error(f"unknown cell {cell!r} in load({module!r})")
        pkg, _, name = rest.partition(":")
        return self.cells[cell] / pkg / name

    def cell_of(self, path: Path) -> str:
        """The cell holding ``path`` as Buck2 sees it: by the path as written (a symlinked
        directory inside a cell stays in that cell), else by its real path."""
        for candidate, roots in ((path.absolute(), {c: r.absolute() for c, r in
                                                     self.cells.items()}),
                                 (path.resolve(), {c: r.resolve() for c, r in
                                                   self.cells.items()})):
            best = None
            for cell, root in roots.items():
                try:
                    rel = candidate.relative_to(root)
                except ValueError:
                    continue
                if best is None or len(rel.parts) < best[1]:
                    best = (cell, len(rel.parts))
            if best is not None:
                return best[0]
        raise Buck2Error(f"{path} is in no cell")

    def _loader(self, from_file: Path) -> sl.FileLoader:
        def load(module: str) -> sl.FrozenModule:
            if module == "fake//:prelude.bzl":
                return self._prelude
            return self.load(self.resolve_load(module, from_file))

        return sl.FileLoader(load)

    def _with_prelude(self, source: str) -> str:
        names = ", ".join(f'"{n}"' for n in _PRELUDE_EXPORTS)
        inject = f'load("fake//:prelude.bzl", {names});'
        first, nl, rest = source.partition("\n")
        stripped = first.strip()
        if not stripped or stripped.startswith("#") or stripped.startswith("load("):
            # Same line: keeps the file's line numbers in error messages.
            return f"{inject} {first}{nl}{rest}"
        return f"{inject}\n{source}"

    def load(self, path: Path) -> sl.FrozenModule:
        key = path.resolve()  # one module per file; loads resolve from the path as written
        if key in self._modules:
            return self._modules[key]
        if not path.is_file():
            raise Buck2Error(f"load: no such file {path}")
        if path.suffix == ".json":
            m = sl.Module()
            m["value"] = json.loads(path.read_text())
            fm = m.freeze()
        else:
            source = path.read_text()
            m = sl.Module()
            ast = sl.parse(str(path), self._with_prelude(source), self._dialect)
            sl.eval(m, ast, self._globals, self._loader(path))
            fm = self._bind_rules(m, source, str(path))
        self._modules[key] = fm
        return fm

    def eval_build_file(self, path: Path, source: str | None = None) -> None:
        """Evaluate a BUCK file (its package is its directory within its cell)."""
        path = path.resolve()
        cell = self.cell_of(path)
        package = path.parent.relative_to(self.cells[cell].resolve()).as_posix()
        package = "" if package == "." else package
        if source is None:
            source = path.read_text()
        self._package = (cell, package)
        try:
            m = sl.Module()
            ast = sl.parse(str(path), self._with_prelude(source), self._dialect)
            sl.eval(m, ast, self._globals, self._loader(path))
        finally:
            self._package = None

    # ------------------------------------------------------------- configuration
    def resolve(self, value: Any, platform: Platform) -> Any:
        """Resolve every select in an attribute value for a configuration."""
        if isinstance(value, dict) and set(value) == {"__select__"}:
            arms = value["__select__"]
            for key in arms:
                if key != "DEFAULT" and key not in KNOWN_CONSTRAINTS:
                    raise Buck2Error(f"select key {key!r} is not a prelude constraint value")
            matching = [k for k in arms if k != "DEFAULT" and k in platform.constraints]
            if len(matching) > 1:
                values = {json.dumps(arms[k], sort_keys=True) for k in matching}
                if len(values) > 1:
                    raise Buck2Error(f"ambiguous select: {matching} all match {platform.name}")
            if matching:
                return self.resolve(arms[matching[0]], platform)
            if "DEFAULT" in arms:
                return self.resolve(arms["DEFAULT"], platform)
            raise Buck2Error(
                f"None of {len(arms)} conditions matched configuration {platform.name} "
                "and no default was set"
            )
        if isinstance(value, list):
            return [self.resolve(v, platform) for v in value]
        if isinstance(value, dict):
            return {k: self.resolve(v, platform) for k, v in value.items()}
        return value

    # ------------------------------------------------------------- analysis
    def target(self, label: str | Label) -> Target:
        lab = label if isinstance(label, Label) else Label.parse(label, "root", "")
        try:
            return self.targets[lab]
        except KeyError:
            raise Buck2Error(f"unknown target {lab}") from None

    def kind(self, label: str | Label) -> str:
        return self.rule_names[self.target(label).rule_id]

    def configured_attrs(self, label: str | Label, platform: Platform) -> dict[str, Any]:
        t = self.target(label)
        spec = self.rule_specs[t.rule_id]["attrs"]
        out = {}
        for k, s in spec.items():
            if k in t.attrs:
                out[k] = self.resolve(t.attrs[k], platform)
            else:
                out[k] = s["default"]
        return out

    def analyze(
        self, label: str | Label, platform: Platform, exec_platform: Platform | None = None
    ) -> dict[str, Any]:
        """Analyse a target configured for `platform`, execution on `exec_platform`."""
        exec_platform = exec_platform or platform
        t = self.target(label)
        key = (t.label, platform.name, exec_platform.name)
        if key in self._analysis:
            return self._analysis[key]
        rule = self.rule_specs[t.rule_id]
        specs = rule["attrs"]
        resolved = self.configured_attrs(t.label, platform)
        data = {}
        for k, s in specs.items():
            data[k] = self._attr_data(t, s, resolved[k], platform, exec_platform)
        ctx = {
            "label": {"cell": t.label.cell, "package": t.label.package, "name": t.label.name},
            "attrs": data,
        }
        fm = self._rule_modules[t.rule_id]
        try:
            result: dict[str, Any] = fm.call(  # type: ignore[assignment]
                "fake_analyze_rule", self.rule_names[t.rule_id], ctx
            )
        except sl.StarlarkError as e:
            raise Buck2Error(f"analysis of {t.label} ({platform.name}) failed: {e}") from e
        self._analysis[key] = result
        return result

    def _attr_data(
        self, t: Target, spec: dict[str, Any], value: Any, platform: Platform, exec_p: Platform
    ) -> Any:
        kind = spec["kind"]
        if value is None:
            return None
        if kind == "option":
            return self._attr_data(t, spec["inner"], value, platform, exec_p)
        if kind == "list":
            return [self._attr_data(t, spec["inner"], v, platform, exec_p) for v in value]
        if kind == "dict":
            return {
                k: self._attr_data(t, spec["value"], v, platform, exec_p) for k, v in value.items()
            }
        if kind == "source":
            if value.startswith(":") or "//" in value:
                dep = self.analyze(
                    Label.parse(value, t.label.cell, t.label.package), platform, exec_p
                )
                default = next(p for p in dep["providers"] if p["__provider__"] == "DefaultInfo")
                (art,) = default["default_outputs"]
                return {"path": art["artifact"]}
            path = self.cells[t.label.cell] / t.label.package / value
            if not path.exists():
                raise Buck2Error(f"{t.label}: source {value!r} does not exist ({path})")
            rel = f"{t.label.package}/{value}" if t.label.package else value
            return {"path": rel}
        if kind in ("dep", "exec_dep", "toolchain_dep"):
            lab = Label.parse(value, t.label.cell, t.label.package)
            if kind == "exec_dep":
                dep = self.analyze(lab, exec_p, exec_p)
            else:
                dep = self.analyze(lab, platform, exec_p)
            if (
                kind == "toolchain_dep"
                and not self.rule_specs[self.target(lab).rule_id]["is_toolchain_rule"]
            ):
                raise Buck2Error(f"{t.label}: toolchain_dep {lab} is not a toolchain rule")
            have = {p["__provider__"] for p in dep["providers"]}
            missing = [p for p in spec.get("providers", []) if p not in have]
            if missing:
                raise Buck2Error(f"{t.label}: dependency {lab} lacks providers {missing}")
            return dep["providers"]
        return value


def render(items: list[dict[str, Any]]) -> list[str]:
    """A recorded command line (or env value) as the strings Buck2 would pass."""
    out = []
    for item in items:
        if "s" in item:
            out.append(item["s"])
        else:
            fmt = item.get("format") or "{}"
            out.append(fmt.replace("{}", item["artifact"]))
    return out


def provider(result: dict[str, Any], name: str) -> dict[str, Any]:
    for p in result["providers"]:
        if p["__provider__"] == name:
            return dict(p)
    raise KeyError(name)
