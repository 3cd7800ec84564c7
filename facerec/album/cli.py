"""`facerec album ...` commands."""

from __future__ import annotations

import typer

album_app = typer.Typer(
    help="Batch-recognise photo albums: scan, name clusters, report.", no_args_is_help=True
)
