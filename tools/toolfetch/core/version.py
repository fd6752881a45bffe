"""The package's version, here so every layer can read it (the root package ``toolfetch``
re-exports it and sits above every layer: its lazy attributes are the library facade)."""

__version__ = "0.1.0"
