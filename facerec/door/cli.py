"""`facerec door --config door.toml`: the door service for IP cameras, MQTT and Home Assistant.

Exit codes: 0 when every camera has ended (only video files) or the service
was stopped (SIGTERM, Ctrl-C); 2 with one line on stderr for a configuration
or setup error. One JSON line per event on stdout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facerec.cli_common import (
    DbOpt,
    DetectorOpt,
    ModelOpt,
    ThreadsOpt,
    WeightsOpt,
    make_settings,
    reported_errors,
    session,
)


def door(
    config: Annotated[
        Path, typer.Option("--config", help="The door configuration (TOML; see docs/door.md).")
    ],
    db: DbOpt = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    detector: DetectorOpt = None,
    threads: ThreadsOpt = None,
) -> None:
    """Run the door service: cameras over RTSP/HTTP/files, events over MQTT, Home Assistant."""
    from facerec.door.config import ConfigError, load

    with reported_errors():
        door_config = load(config)
        try:
            from facerec.door.run import serve
        except ImportError as exc:  # paho-mqtt is the `door` extra
            raise ConfigError(
                f"facerec door needs {exc.name or 'paho-mqtt'}: pip install 'facerec[door]'"
            ) from None
    settings = make_settings(model, weights, None, 40, detector, threads=threads)
    with session(db, settings) as fr:
        code = serve(fr, door_config, config)
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add the door command to the main CLI."""
    app.command(name="door")(door)
