# Stands in for @prelude//toolchains:demo.bzl (the prelude's demo toolchains).

def system_demo_toolchains():
    """The real one declares toolchains//:cxx, :python, :genrule, ...; nothing here."""
    pass
