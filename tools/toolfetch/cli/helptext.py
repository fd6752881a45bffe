"""What ``toolfetch COMMAND --help`` shows below the options: examples and exit codes.

Kept apart from the command modules so each command's parser stays about its options; the
parser (:func:`toolfetch.cli.parser.build_parser`) adds :func:`epilog` to every subparser.
"""

from __future__ import annotations

# The documented exit codes (docs/design.md, "Exit codes"), by number.
EXIT_CODES = {
    0: "ok",
    1: "internal error",
    2: "usage or invalid input",
    3: "integrity failure (a digest or size does not match)",
    4: "not found",
    5: "authentication",
    6: "unreachable or offline",
    7: "lockfile out of date",
    8: "local file system (disk full, unwritable cache or output)",
}

_NETWORK = (3, 4, 5, 6)
# Per command: (examples, the exit codes it can give besides 0, 1 and 2).
HELP: dict[str, tuple[tuple[str, ...], tuple[int, ...]]] = {
    "lock": (("toolfetch lock", "toolfetch lock --check        # in CI: exit 7 if out of date",
              "toolfetch lock --upgrade protoc"), (*_NETWORK, 7, 8)),
    "verify": (("toolfetch verify", "toolfetch verify --offline protoc"), (*_NETWORK, 8)),
    "import-dotslash": (("toolfetch import-dotslash scripts/node && toolfetch lock",),
                        (4, 8)),
    "import-multitool": (("toolfetch import-multitool multitool.lock.json && toolfetch lock",),
                         (4, 8)),
    "fetch": (("toolfetch fetch                      # every tool, this host",
               "toolfetch fetch --all-platforms --jobs 4 protoc"), (*_NETWORK, 8)),
    "which": (("toolfetch which protoc", "toolfetch which --json --platform linux/arm64 buf"),
              (*_NETWORK, 8)),
    "run": (("toolfetch run protoc -- --version",), (*_NETWORK, 8)),
    "bootstrap": (("toolfetch bootstrap && export PATH=\"$PWD/bin:$PATH\"",), (*_NETWORK, 8)),
    "list": (("toolfetch list", "toolfetch list --json | jq '.[].tool'"), (8,)),
    "help": (("toolfetch help fetch", "toolfetch help cache gc"), ()),
    "completion": (("toolfetch completion bash > ~/.local/share/bash-completion/completions/"
                    "toolfetch",
                    "toolfetch completion fish > ~/.config/fish/completions/toolfetch.fish"),
                   ()),
    "push": (("toolfetch push registry.internal:5000/tools/shellcheck:0.10 ./shellcheck",),
             (*_NETWORK, 8)),
    "publish": (("toolfetch publish registry.internal:5000/tools/protoc:25.1 \\\n"
                 "    --platform linux/amd64=dist/linux-amd64/protoc-25.1",
                 "toolfetch publish --from-lockfile registry.internal:5000/mirror"),
                (*_NETWORK, 8)),
    "pull": (("toolfetch pull -o out registry.internal:5000/tools/protoc:25.1",),
             (*_NETWORK, 8)),
    "copy": (("toolfetch copy ghcr.io/acme/tools/protoc:25.1 oci-layout:mirror:protoc-25.1",),
             (*_NETWORK, 8)),
    "tag": (("toolfetch tag registry.internal:5000/tools/protoc:25.1 latest",), _NETWORK),
    "tags": (("toolfetch tags registry.internal:5000/tools/protoc",), _NETWORK),
    "inspect": (("toolfetch inspect --json ghcr.io/acme/tools/protoc:25.1",), _NETWORK),
    "exists": (("toolfetch exists registry.internal:5000/tools/protoc:25.1 || echo absent",),
               _NETWORK),
    "attach": (("toolfetch attach REF sbom.spdx.json --artifact-type application/spdx+json",),
               (*_NETWORK, 8)),
    "referrers": (("toolfetch referrers --artifact-type application/spdx+json REF",),
                  _NETWORK),
    "export": (("toolfetch export --all-platforms /media/usb/tools",), (3, 4, 6, 8)),
    "import": (("toolfetch import /media/usb/tools",), (3, 4, 8)),
    "login": (("echo \"$TOKEN\" | toolfetch login -u ci --password-stdin ghcr.io",),
              (5, 6, 8)),
    "logout": (("toolfetch logout ghcr.io",), (8,)),
    "cache": (("toolfetch cache info", "toolfetch cache gc --max-size 10G"), (3, 8)),
    "cache path": (("toolfetch cache path",), ()),
    "cache info": (("toolfetch cache info --json",), (8,)),
    "cache gc": (("toolfetch cache gc --unused-for 30d --keep lockfiles/tools.lock.json",
                  "toolfetch cache gc --max-size 10G --dry-run"), (8,)),
    "cache verify": (("toolfetch cache verify --repair",), (3, 6, 8)),
}


def epilog(command: str) -> str | None:
    """Examples and exit codes of ``command`` (``cache gc`` for a cache action)."""
    known = HELP.get(command)
    if known is None:
        return None
    examples, codes = known
    lines = ["examples:", *(f"  {e}" for e in examples), "", "exit codes:"]
    lines += [f"  {c}  {EXIT_CODES[c]}" for c in sorted({0, 1, 2, *codes})]
    return "\n".join(lines)

