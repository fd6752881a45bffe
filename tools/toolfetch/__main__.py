"""The `python -m toolfetch` entry point."""

from toolfetch.cli import console

console()
