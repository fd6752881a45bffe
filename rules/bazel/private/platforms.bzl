"""OCI platform strings -> Bazel `@platforms` constraints.

Mirrors the one mapping table in tools/toolfetch/core/platform.py (BAZEL_OS, BAZEL_CPU), its
cpu key and its canonical lock key; tests/integration/test_bazel_bzlmod.py keeps the two equal. Bazel 4.2.3 bundles @platforms 0.0.2,
which has all of these constraint values.
"""

BAZEL_OS = {"linux": "linux", "darwin": "osx", "windows": "windows"}
BAZEL_CPU = {"amd64": "x86_64", "arm64": "aarch64", "arm/v7": "armv7"}

# uname -m / os.arch / PROCESSOR_ARCHITECTURE -> OCI arch[/variant] (docs/design.md, "Platforms").
_MACHINE_TO_ARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "x64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm/v7",
    "armv8l": "arm/v8",  # a 32-bit userland on an ARMv8 CPU
    "armv6l": "arm/v6",
    "i386": "386",
    "i686": "386",
    "x86": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}

def cpu_key(platform):
    """The key into BAZEL_CPU of an OCI platform, as platform.py's cpu_key.

    `linux/arm/v7` and `linux/arm` -> `arm/v7`, `linux/arm64/v8` and `linux/arm64` -> `arm64`;
    any other variant stays: `linux/amd64/v3` -> `amd64/v3`, `linux/arm64/v9` -> `arm64/v9`,
    which have no Bazel constraint (an amd64/v3 binary must not reach every x86_64 machine).
    """
    parts = platform.split("/")
    if len(parts) < 2:
        return None
    variant = parts[2] if len(parts) > 2 else ""
    if parts[1] == "arm":
        # no variant is v7, as OCI and containerd normalise it (platform.py does the same)
        return "arm/" + (variant or "v7")
    if parts[1] == "arm64" and variant in ("", "v8"):
        return "arm64"
    if variant:
        return parts[1] + "/" + variant
    return parts[1]

def canonical_platform(platform):
    """The lock key two spellings of one platform share, as platform.py's canonical key.

    `linux/arm64/v8` -> `linux/arm64`, `linux/arm` -> `linux/arm/v7`; anything else unchanged.
    """
    parts = platform.split("/")
    if len(parts) == 3 and parts[1] == "arm64" and parts[2] == "v8":
        return parts[0] + "/arm64"
    if len(parts) == 2 and parts[1] == "arm":
        return parts[0] + "/arm/v7"
    return platform

def bazel_constraints(platform):
    """[os constraint label, cpu constraint label] for an OCI platform, or None if unmapped."""
    parts = platform.split("/")
    if len(parts) < 2:
        return None
    os = BAZEL_OS.get(parts[0])
    cpu = BAZEL_CPU.get(cpu_key(platform))
    if os == None or cpu == None:
        return None
    return ["@platforms//os:" + os, "@platforms//cpu:" + cpu]

def oci_platform(os_name, machine):
    """OCI `os/arch[/variant]` from Bazel's `rctx.os.name` and a machine name (uname -m)."""
    name = os_name.lower()
    if name.startswith("mac os") or name.startswith("darwin"):
        os = "darwin"
    elif name.startswith("windows"):
        os = "windows"
    elif name.startswith("linux"):
        os = "linux"
    elif name.startswith("freebsd"):
        os = "freebsd"
    else:
        os = name.split(" ")[0]
    machine = machine.strip().lower()
    return os + "/" + _MACHINE_TO_ARCH.get(machine, machine)
