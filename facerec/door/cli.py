"""`facerec door --config door.toml`: the door service; `facerec door events`: what it decided.

Exit codes: 0 when every camera has ended (only video files) or the service
was stopped (SIGTERM, Ctrl-C); 2 with one line on stderr for a configuration
or setup error. The service prints one JSON line per event on stdout.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from facerec.cli_common import (
    DbOpt,
    DetectorOpt,
    JsonOpt,
    ModelOpt,
    ThreadsOpt,
    WeightsOpt,
    fail,
    make_settings,
    print_json,
    reported_errors,
    session,
)
from facerec.door.events import EventType
from facerec.runtime import ENV_THREADS

door_app = typer.Typer(
    invoke_without_command=True,
    help="The door service: IP cameras (RTSP, HTTP MJPEG, files), events over MQTT, Home Assistant.",
)


@door_app.callback()
def door(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="The door configuration (TOML; see docs/door.md)."),
    ] = None,
    db: DbOpt = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    detector: DetectorOpt = None,
    threads: ThreadsOpt = None,
) -> None:
    """Run the door service with --config door.toml (`facerec door events` lists its events)."""
    if ctx.invoked_subcommand is not None:
        return
    if config is None:
        fail("give --config door.toml (or a subcommand: events)", as_json=False, kind="UsageError")
    from facerec.door.config import ConfigError, load

    with reported_errors():
        door_config = load(config)
        try:
            from facerec.door.run import door_threads, serve
        except ImportError as exc:  # paho-mqtt is the `door` extra
            raise ConfigError(
                f"facerec door needs {exc.name or 'paho-mqtt'}: pip install 'facerec[door]'"
            ) from None
    if threads is None and not os.environ.get(ENV_THREADS, "").strip():
        threads = door_threads(len(door_config.cameras))
    settings = make_settings(model, weights, None, 40, detector, threads=threads)
    with session(db, settings) as fr:
        code = serve(fr, door_config, config)
    raise typer.Exit(code)


@door_app.command("events")
def events(
    camera: Annotated[str | None, typer.Option("--camera", help="Only this camera.")] = None,
    person: Annotated[str | None, typer.Option("--person", help="Only about this person.")] = None,
    kind: Annotated[EventType | None, typer.Option("--type", help="Only this type.")] = None,
    since: Annotated[
        datetime | None,
        typer.Option(
            "--since",
            help="Only from this time on (ISO 8601; UTC unless it says).",
            formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"],
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="The latest N events.", min=1)] = 100,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List door events, newest first: time, camera, type, name, similarity, liveness."""
    from facerec.door.history import MAX_LIMIT, door_events

    if limit > MAX_LIMIT:
        fail(f"--limit must be at most {MAX_LIMIT}", as_json=as_json, kind="UsageError")
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    with session(db, make_settings(), as_json=as_json) as fr:
        rows = door_events(fr.database, camera=camera, person=person,
                           kind=kind.value if kind else None, since=since, limit=limit)  # fmt: skip
    if as_json:
        print_json({"events": [r.as_json() for r in rows]})
        return
    for r in rows:
        sim = f"{r.similarity:.4f}" if r.similarity is not None else "-"
        typer.echo(f"{r.time.isoformat(timespec='seconds')}  {r.camera}  {r.type:<7}  "
                   f"{r.name or '-'}  similarity {sim}  liveness {r.liveness or 'off'}"
                   f"{'  (snapshot)' if r.snapshot else ''}")  # fmt: skip


def register(app: typer.Typer) -> None:
    """Add the door commands to the main CLI."""
    app.add_typer(door_app, name="door")
