"""Alembic environment for the facerec database (SQLite or PostgreSQL).

Where the connection comes from, in order:

1. `config.attributes["connection"]`: a SQLAlchemy Connection handed in by
   `facerec.storage.Database.open`, which migrates its database on every
   open. It comes from the Database's engine (pragmas and transaction hooks
   already installed) and must not be inside a transaction yet.
2. `-x db=PATH` on the command line: a gallery file, e.g.
   `alembic -c alembic.ini -x db=~/.local/share/facerec/gallery.db upgrade head`.
3. `-x url=URL`, then `sqlalchemy.url` in alembic.ini: a SQLite URL or a
   PostgreSQL one (`-x url=postgresql+psycopg://user@host/facerec`).

Cases 2 and 3 open the engine with `facerec.storage.database.create_engine_for`,
as the application does, so CLI migrations run with the same settings.

Every run is one transaction that first takes the database's write lock, so
two processes opening a new database at once migrate it once, one after the
other, and a migration never runs beside a facerec write.

SQLite: BEGIN IMMEDIATE, with `render_as_batch=True` because SQLite can only
alter most things by copying a table. Foreign keys are switched off for the
run, as SQLite's documentation prescribes for schema changes: batch mode drops
and recreates tables, and with foreign keys on, dropping `identities` would
cascade-delete every sample. A `PRAGMA foreign_key_check` before commit makes
sure the migration left no dangling reference.

PostgreSQL: transactional DDL with the write advisory lock; the pgvector
extension is created first if the database does not have it yet.

Offline (`--sql`) mode is not supported: the database is always migrated live.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from alembic import context
from sqlalchemy import Connection, text

# Every table module, so Base.metadata holds the whole database (one history for all of them).
from facerec.album import tables as album_tables  # noqa: F401
from facerec.camera import tables as camera_tables  # noqa: F401
from facerec.gallery import schema as gallery_tables  # noqa: F401
from facerec.gallery.schema import PROTOTYPE_HNSW_INDEX
from facerec.server import tables as server_tables  # noqa: F401
from facerec.storage import Base
from facerec.storage.database import BEGIN_OPTION, WRITE_LOCK_KEY, create_engine_for
from facerec.storage.urls import DatabaseUrl, parse_url, sqlite_file

config = context.config
target_metadata = Base.metadata


def _where() -> DatabaseUrl:
    x = context.get_x_argument(as_dictionary=True)
    if "db" in x:
        return sqlite_file(Path(x["db"]))
    if "url" in x:
        return parse_url(x["url"])
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit(
            "no database given: pass -x db=PATH/TO/gallery.db (or -x url=sqlite:///... or "
            "-x url=postgresql+psycopg://...), or set sqlalchemy.url in alembic.ini"
        )
    return parse_url(url)


def include_name(name: str | None, type_: str, parent_names: Mapping[str, str | None]) -> bool:
    """Autogenerate leaves out the HNSW index, made per gallery for its pinned dimension."""
    return not (type_ == "index" and name == PROTOTYPE_HNSW_INDEX)


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        transactional_ddl=True,
        include_name=include_name,
    )


def _migrate_sqlite(connection: Connection) -> None:
    raw = connection.connection.driver_connection
    assert raw is not None
    # Autocommit statements: the engine turned the driver's own transactions off.
    foreign_keys = raw.execute("PRAGMA foreign_keys").fetchone()[0]
    raw.execute("PRAGMA foreign_keys=OFF")
    try:
        connection.execution_options(**{BEGIN_OPTION: "IMMEDIATE"})
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"migration left dangling foreign keys: {broken[:5]}")
    finally:
        raw.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")


def _migrate_postgres(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        # The lock first: Alembic reads the stored revision after it, so a process that
        # waited here sees the migration the other one committed and has nothing to do.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITE_LOCK_KEY})
        has_vector = connection.execute(
            text("SELECT 1 FROM pg_extension WHERE extname = 'vector'")
        ).first()
        if has_vector is None:
            connection.execute(text("CREATE EXTENSION vector"))
        context.run_migrations()


def _migrate(connection: Connection) -> None:
    if connection.in_transaction():
        raise RuntimeError(
            "migrations need a connection outside any transaction "
            "(PRAGMA foreign_keys cannot change inside one)"
        )
    if connection.dialect.name == "sqlite":
        _migrate_sqlite(connection)
    else:
        _migrate_postgres(connection)


def run_migrations_online() -> None:
    given = config.attributes.get("connection")
    if given is not None:
        _migrate(given)
        return
    if config.config_file_name is not None and config.file_config.has_section("loggers"):
        from logging.config import fileConfig

        fileConfig(config.config_file_name)
    engine = create_engine_for(_where())
    try:
        with engine.connect() as connection:
            _migrate(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported for the facerec database")
run_migrations_online()
