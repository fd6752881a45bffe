"""OCI platform strings -> Bazel `@platforms` constraints.

Mirrors the one mapping table in tools/toolfetch/core/platform.py (BAZEL_OS, BAZEL_CPU);
tests/integration/test_bazel_bzlmod.py keeps the two equal. Bazel 4.2.3 bundles @platforms 0.0.2,
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
    "armv6l": "arm/v6",
    "i386": "386",
    "i686": "386",
    "x86": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}

def cpu_key(platform):
    """`linux/arm/v7` -> `arm/v7`, `linux/arm64/v8` -> `arm64` (as platform.py's cpu_key)."""
    parts = platform.split("/")
    if len(parts) < 2:
        return None
    if parts[1] == "arm":
        # no variant is v7, as OCI and containerd normalise it (platform.py does the same)
        return "arm/" + (parts[2] if len(parts) > 2 else "v7")
    return parts[1]

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
    else:
        os = name.split(" ")[0]
    machine = machine.strip().lower()
    return os + "/" + _MACHINE_TO_ARCH.get(machine, machine)
