
# {tool}: {platforms}
alias(
    name = {tool_name},
    actual = {tool_actual},
)

alias(
    name = {files_name},
    actual = {files_actual},
)

toolchain_type(name = {toolchain_type})
