"""Alembic environment for the facerec gallery.

Where the connection comes from, in order:

1. `config.attributes["connection"]`: a SQLAlchemy Connection handed in by
   `facerec.gallery.Gallery.open`, which migrates its own database on every
   open. It comes from the Gallery's engine (pragmas and transaction hooks
   already installed) and must not be inside a transaction yet.
2. `-x db=PATH` on the command line: a gallery file, e.g.
   `alembic -c alembic.ini -x db=~/.local/share/facerec/gallery.db upgrade head`.
3. `-x url=URL`, then `sqlalchemy.url` in alembic.ini: any SQLite URL.

Cases 2 and 3 open the engine with `create_sqlite_engine`, the same function
the Gallery uses, so CLI migrations run with the same pragmas.

Every run is one transaction (BEGIN IMMEDIATE, so a gallery in use by another
process makes us wait instead of fail), with `render_as_batch=True` because
SQLite can only alter most things by copying a table. Foreign keys are switched
off for the run, as SQLite's documentation prescribes for schema changes:
batch mode drops and recreates tables, and with foreign keys on, dropping
`identities` would cascade-delete every sample. A `PRAGMA foreign_key_check`
before commit makes sure the migration left no dangling reference.

Offline (`--sql`) mode is not supported: the gallery is always migrated live.
"""

from __future__ import annotations

from pathlib import Path

from alembic import context
from sqlalchemy import Connection

from facerec.gallery import album_schema, ops_schema  # noqa: F401  (their tables join Base.metadata)
from facerec.gallery.schema import BEGIN_OPTION, Base, create_sqlite_engine

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    x = context.get_x_argument(as_dictionary=True)
    if "db" in x:
        return f"sqlite:///{Path(x['db']).expanduser().resolve()}"
    if "url" in x:
        return x["url"]
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit(
            "no database given: pass -x db=PATH/TO/gallery.db (or -x url=sqlite:///...), "
            "or set sqlalchemy.url in alembic.ini"
        )
    return url


def _migrate(connection: Connection) -> None:
    if connection.in_transaction():
        raise RuntimeError(
            "migrations need a connection outside any transaction "
            "(PRAGMA foreign_keys cannot change inside one)"
        )
    raw = connection.connection.driver_connection
    assert raw is not None
    # Autocommit statements: the engine turned the driver's own transactions off.
    foreign_keys = raw.execute("PRAGMA foreign_keys").fetchone()[0]
    raw.execute("PRAGMA foreign_keys=OFF")
    try:
        connection.execution_options(**{BEGIN_OPTION: "IMMEDIATE"})
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=True,
            transactional_ddl=True,
        )
        with context.begin_transaction():
            context.run_migrations()
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"migration left dangling foreign keys: {broken[:5]}")
    finally:
        raw.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")


def run_migrations_online() -> None:
    given = config.attributes.get("connection")
    if given is not None:
        _migrate(given)
        return
    if config.config_file_name is not None and config.file_config.has_section("loggers"):
        from logging.config import fileConfig

        fileConfig(config.config_file_name)
    engine = create_sqlite_engine(_url())
    try:
        with engine.connect() as connection:
            _migrate(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported for the facerec gallery")
run_migrations_online()
