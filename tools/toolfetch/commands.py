"""Registry workflow commands (push, publish, pull, copy, tag, tags, inspect, exists, attach,
referrers, export, import). Registration only; each command imports its module lazily.

Each subparser sets ``run=`` (via ``set_defaults``) to a function taking the parsed args.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

Command = Callable[[str, str], argparse.ArgumentParser]


def register(command: Command) -> None:
    """Registry workflow commands are added here (see the registry-workflows issue)."""
