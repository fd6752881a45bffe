
config_setting(
    name = {name},
    constraint_values = {constraints},
)
