"""`facerec serve` and `facerec keys` commands.

FastAPI and uvicorn are imported inside `serve` only: every other command of
the CLI loads this module too, and should not pay for a web stack it never uses.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from facerec.cli_common import (
    EXIT_ERROR,
    DbOpt,
    DetectorOpt,
    IndexOpt,
    JsonOpt,
    MinFaceOpt,
    ModelOpt,
    ThreadsOpt,
    ThresholdOpt,
    WeightsOpt,
    emit,
    make_settings,
    reported_errors,
    session,
)
from facerec.config import database_url
from facerec.faces.images import DEFAULT_DECODE_BUDGET
from facerec.gallery.index_kind import IndexKind
from facerec.server.auth import ApiKeyInfo, KeyStore
from facerec.storage import Database

log = logging.getLogger(__name__)

keys_app = typer.Typer(
    help="API keys for `facerec serve`: create (the token is shown once), list, revoke.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def serve(
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (keep 127.0.0.1 behind a proxy).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.", min=0, max=65535)] = 8000,
    max_upload_mb: Annotated[
        float, typer.Option("--max-upload-mb", help="Largest request body, in MiB (413 above).")
    ] = 10.0,
    budget_s: Annotated[
        float,
        typer.Option(
            "--request-budget",
            help="Seconds a request may wait for the model before it gets 503 (server busy).",
        ),
    ] = 30.0,
    body_timeout_s: Annotated[
        float,
        typer.Option(
            "--body-timeout",
            help="Seconds a request body may take to arrive (408 after; also 10 s between "
            "chunks at most).",
        ),
    ] = 60.0,
    decode_budget_mb: Annotated[
        float,
        typer.Option(
            "--decode-budget-mb",
            help="MiB of decoded pixels all requests together may hold (requests wait "
            "for room; see docs/limits.md).",
        ),
    ] = DEFAULT_DECODE_BUDGET / 2**20,
    threshold: ThresholdOpt = None,
    db: DbOpt = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    min_face_size: MinFaceOpt = 20,
    detector: DetectorOpt = None,
    threads: ThreadsOpt = None,
    index: IndexOpt = IndexKind.AUTO,
    require_sign_in: Annotated[
        bool,
        typer.Option(
            "--require-sign-in",
            help="Make the review pages at / ask for an API key even on 127.0.0.1 (behind a "
            "proxy); bound to any other address they always do.",
        ),
    ] = False,
    log_level: Annotated[
        str, typer.Option("--log-level", help="uvicorn log level (info: one line per request).")
    ] = "info",
) -> None:
    """Serve the gallery over HTTP (FastAPI + uvicorn); see /docs for the API."""
    import uvicorn

    from facerec.runtime import limit_heap_fragmentation
    from facerec.server.app import ServerConfig, create_app
    from facerec.server.service import FaceService

    if not max_upload_mb > 0:
        typer.echo(f"error: --max-upload-mb must be positive, got {max_upload_mb}", err=True)
        raise typer.Exit(EXIT_ERROR)
    if not budget_s > 0:
        typer.echo(f"error: --request-budget must be positive, got {budget_s}", err=True)
        raise typer.Exit(EXIT_ERROR)
    if not decode_budget_mb > 0:
        typer.echo(f"error: --decode-budget-mb must be positive, got {decode_budget_mb}", err=True)
        raise typer.Exit(EXIT_ERROR)
    if not body_timeout_s > 0:
        typer.echo(f"error: --body-timeout must be positive, got {body_timeout_s}", err=True)
        raise typer.Exit(EXIT_ERROR)
    if not _is_loopback(host):
        log.warning(
            "listening on %s: API keys and photos travel in clear over plain HTTP; "
            "put a TLS-terminating proxy in front",
            host,
        )
    with reported_errors():  # a --db that names no usable database: one line, exit code 2
        where = database_url(db)
    config = ServerConfig(
        db=where,
        settings=make_settings(
            model, weights, threshold, min_face_size, detector, threads=threads, index=index
        ),
        max_upload_bytes=int(max_upload_mb * 2**20),
        budget_s=budget_s,
        body_timeout_s=body_timeout_s,
        decode_budget=int(decode_budget_mb * 2**20),
        web_sign_in=require_sign_in or not _is_loopback(host),
    )
    # Decoded uploads come and go in every size: without a fixed mmap threshold, glibc
    # keeps their freed buffers in its arenas and the RSS climbs past the decode budget.
    limit_heap_fragmentation()
    # Open the gallery and load the model before listening: a bad gallery or missing
    # weights is then one line on stderr and exit code 2, as in every other command.
    with session(where, config.settings) as fr:
        service = FaceService(
            fr,
            max_pixels=config.max_pixels,
            budget_s=config.budget_s,
            decode_budget=config.decode_budget,
        )
        uvicorn.run(
            create_app(config, service),
            host=host,
            port=port,
            log_level=log_level,
            workers=1,  # one process: the model lock and the in-memory index are per process
            timeout_graceful_shutdown=10,
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextmanager
def _key_store(db: str | None, *, as_json: bool = False) -> Iterator[KeyStore]:
    """The key store of the gallery database (created and migrated if needed); anticipated
    failures exit 2 with one line, as `session`."""
    with reported_errors(as_json=as_json), Database.open(database_url(db)) as database:
        yield KeyStore(database)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Who or what the key is for, e.g. 'door-1'.")],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a key; its token is printed once and cannot be shown again."""
    with _key_store(db, as_json=as_json) as store:
        new = store.create(name)
    emit(
        as_json,
        {
            "name": new.info.name,
            "prefix": new.info.prefix,
            "token": new.token,
            "created_at": new.info.created_at,
        },
        lambda r: typer.echo(
            f"created API key {new.info.name!r} (prefix {new.info.prefix}) in "
            f"{database_url(db).display}. "
            f"Store this token now; it is not shown again:\n{new.token}"
        ),
    )


@keys_app.command("list")
def keys_list(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """List keys (names, prefixes, dates; never tokens)."""
    with _key_store(db, as_json=as_json) as store:
        rows = store.all_keys()

    def human(items: list[ApiKeyInfo]) -> None:
        if not items:
            typer.echo("no API keys")
        for k in items:
            state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "active"
            typer.echo(f"{k.name}\t{k.prefix}\tcreated {k.created_at:%Y-%m-%d %H:%M}\t{state}")

    emit(as_json, list(rows), human)


@keys_app.command("revoke")
def keys_revoke(
    name: Annotated[str, typer.Argument(help="The key to revoke.")],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Revoke a key; requests with it get 401 from the next one on."""
    with _key_store(db, as_json=as_json) as store:
        info = store.revoke(name)
    emit(
        as_json,
        info,
        lambda r: typer.echo(f"revoked API key {info.name!r} in {database_url(db).display}"),
    )


@keys_app.command("grant")
def keys_grant(
    name: Annotated[str, typer.Argument(help="The key to give the scope to.")],
    scope: Annotated[str, typer.Argument(help="'review': may sign in to the review pages.")],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Give a key a scope beyond the HTTP API ('review': the review pages at /)."""
    from facerec.server.scopes import grant

    with _key_store(db, as_json=as_json) as store:
        grant(store.database, name, scope)
    emit(as_json, {"name": name, "scope": scope}, lambda r: typer.echo(f"{name!r} may {scope}"))


def register(app: typer.Typer) -> None:
    """Add the serve and keys commands to the main CLI."""
    app.command(name="serve")(serve)
    app.add_typer(keys_app, name="keys")
