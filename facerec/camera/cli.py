"""`facerec camera` command."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the camera command to the main CLI."""
