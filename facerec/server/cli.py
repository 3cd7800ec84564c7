"""`facerec serve` and `facerec keys` commands."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the serve and keys commands to the main CLI."""
