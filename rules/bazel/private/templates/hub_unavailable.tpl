
toolfetch_unavailable(
    name = {name},
    message = {message},
)
