"""The `python -m toolfetch` entry point."""

from toolfetch.cli import main

raise SystemExit(main())
