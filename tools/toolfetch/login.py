"""``toolfetch login`` / ``logout``: docker-compatible credential storage."""

from __future__ import annotations

import argparse
from collections.abc import Callable

Command = Callable[[str, str], argparse.ArgumentParser]


def register(command: Command) -> None:
    """login/logout are added here (see the CI-trust issue)."""
