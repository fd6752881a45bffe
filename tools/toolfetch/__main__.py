"""`python -m toolfetch`."""

from toolfetch.cli import main

raise SystemExit(main())
