# The one place that maps OCI platforms (`os/arch[/variant]`, the spelling the
# toolfetch lockfile uses) to Buck2 prelude constraints.
#
# It mirrors BUCK2_OS / BUCK2_CPU in tools/toolfetch/core/platform.py, its cpu key and its
# canonical lock key; tests/integration/test_buck2.py keeps the two tables equal.

# OCI `os` -> Buck2 prelude OS constraint value.
OCI_OS_TO_BUCK2 = {
    "darwin": "prelude//os:macos",
    "linux": "prelude//os:linux",
    "windows": "prelude//os:windows",
}

# OCI cpu key (`arch`, `arm/<variant>` for 32-bit arm, `arch/<variant>` for any other
# variant but arm64/v8) -> Buck2 prelude CPU constraint value. 32-bit arm has no entry:
# the prelude's arm constraints do not line up with OCI variants, so such platforms are
# fetchable by name only; nor has a variant such as amd64/v3, which not every x86_64 runs.
OCI_CPU_TO_BUCK2 = {
    "amd64": "prelude//cpu:x86_64",
    "arm64": "prelude//cpu:arm64",
}

# The lock key of a tool resolved to a single manifest: it serves every platform.
ANY_PLATFORM = "*"

def parse_oci_platform(platform: str) -> struct:
    """Split `os/arch[/variant]` into a struct(os, arch, variant, cpu_key).

    `cpu_key` is platform.py's cpu key, the key into OCI_CPU_TO_BUCK2: `arm/<variant>` (no
    variant is v7), `arm64` for arm64 and arm64/v8, else `arch` or `arch/variant`; so
    `linux/amd64/v3` and `linux/arm64/v9` have no constraint and never reach every machine.
    """
    parts = platform.split("/")
    if len(parts) not in (2, 3) or "" in parts:
        fail("toolfetch: malformed platform {}: expected os/arch[/variant]".format(repr(platform)))
    variant = parts[2] if len(parts) == 3 else ""

    # arm64 with variant "" is the same as arm64/v8 (docs/design.md, "Platforms").
    # arm with variant "" is arm/v7, as OCI and containerd normalise it.
    if parts[1] == "arm64" and variant == "v8":
        variant = ""
    cpu_variant = (variant or "v7") if parts[1] == "arm" else variant
    cpu_key = parts[1] + "/" + cpu_variant if cpu_variant else parts[1]
    return struct(os = parts[0], arch = parts[1], variant = variant, cpu_key = cpu_key)

def canonical_platform(platform: str) -> str:
    """The lock key two spellings of one platform share, as platform.py's canonical key.

    `linux/arm64/v8` -> `linux/arm64`, `linux/arm` -> `linux/arm/v7`; anything else unchanged.
    """
    parts = platform.split("/")
    if len(parts) == 3 and parts[1] == "arm64" and parts[2] == "v8":
        return parts[0] + "/arm64"
    if len(parts) == 2 and parts[1] == "arm":
        return parts[0] + "/arm/v7"
    return platform

def check_locked_platforms(lockfile: str, tool: str, platforms: typing.Any) -> None:
    """Fail on platform keys toolfetch itself refuses in a lockfile.

    One platform spelled twice (`linux/arm` and `linux/arm/v7`), or "*" next to specific
    platforms: toolfetch would serve the specific entry where this would serve "*".
    """
    keys = sorted(platforms)
    if ANY_PLATFORM in keys and len(keys) > 1:
        fail(("toolfetch: {}: tool {} is locked for '*' and for {}; a tool is locked either " +
              "for '*' (one manifest for every platform) or per platform, not both").format(
            lockfile,
            repr(tool),
            ", ".join([k for k in keys if k != ANY_PLATFORM]),
        ))
    seen = {}
    for key in keys:
        canonical = canonical_platform(key)
        if canonical in seen:
            fail(("toolfetch: {}: tool {} is locked for both {} and {}, which are the same " +
                  "platform ({}); keep one of them").format(
                lockfile,
                repr(tool),
                seen[canonical],
                key,
                canonical,
            ))
        seen[canonical] = key

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
    (`linux/arm64` and `linux/arm64/v8`, which `check_locked_platforms` refuses in a
    lockfile). Every unmatched case picks `default`.
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
