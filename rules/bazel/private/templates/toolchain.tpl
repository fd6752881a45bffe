
toolchain(
    name = {name},
    exec_compatible_with = {constraints},
    toolchain = {toolchain},
    toolchain_type = {toolchain_type},
)
