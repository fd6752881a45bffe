# The one place that maps OCI platforms (`os/arch[/variant]`, the spelling the
# toolfetch lockfile uses) to Buck2 prelude constraints.
#
# It mirrors BUCK2_OS / BUCK2_CPU in tools/toolfetch/core/platform.py; tests/integration/test_buck2.py
# keeps the two tables equal.

# OCI `os` -> Buck2 prelude OS constraint value.
OCI_OS_TO_BUCK2 = {
    "darwin": "prelude//os:macos",
    "linux": "prelude//os:linux",
    "windows": "prelude//os:windows",
}

# OCI cpu key (`arch`, or `arm/<variant>` for 32-bit arm) -> Buck2 prelude CPU
# constraint value. 32-bit arm has no entry: the prelude's arm constraints do not
# line up with OCI variants, so such platforms are fetchable by name only.
OCI_CPU_TO_BUCK2 = {
    "amd64": "prelude//cpu:x86_64",
    "arm64": "prelude//cpu:arm64",
}

# The lock key of a tool resolved to a single manifest: it serves every platform.
ANY_PLATFORM = "*"

def parse_oci_platform(platform: str) -> struct:
    """Split `os/arch[/variant]` into a struct(os, arch, variant, cpu_key)."""
    parts = platform.split("/")
    if len(parts) not in (2, 3) or "" in parts:
        fail("toolfetch: malformed platform {}: expected os/arch[/variant]".format(repr(platform)))
    variant = parts[2] if len(parts) == 3 else ""

    # arm64 with variant "" is the same as arm64/v8 (docs/design.md, "Platforms").
    # arm with variant "" is arm/v7, as OCI and containerd normalise it.
    if parts[1] == "arm64" and variant == "v8":
        variant = ""
    cpu_key = parts[1] + "/" + (variant or "v7") if parts[1] == "arm" else parts[1]
    return struct(os = parts[0], arch = parts[1], variant = variant, cpu_key = cpu_key)

def buck2_constraints(platform: str) -> None | (str, str):
    """(os constraint, cpu constraint) for an OCI platform, or None if Buck2 has none."""
    p = parse_oci_platform(platform)
    os = OCI_OS_TO_BUCK2.get(p.os)
    cpu = OCI_CPU_TO_BUCK2.get(p.cpu_key)
    if os == None or cpu == None:
        return None
    return (os, cpu)

def platform_suffix(platform: str) -> str:
    """A target-name-safe spelling of a lock platform key: `linux/arm/v7` -> `linux_arm_v7`."""
    if platform == ANY_PLATFORM:
        return "any"
    return platform.replace("/", "_")

def platform_select(by_platform: dict[str, typing.Any], default: typing.Any) -> typing.Any:
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

def constraint_name_select(table: dict[str, str], default: str) -> typing.Any:
    arms = {"DEFAULT": default}
    for oci_name, constraint in table.items():
        arms[constraint] = oci_name
    return select(arms)
