"""What the migration tests of the gallery, album and ops tables share.

`db` is a SQLite file (a Path or a path string) or a PostgreSQL URL
(`postgresql+psycopg://...`, from the `empty_postgres_url` fixture).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from alembic.config import Config

from .db_probe import Probe, is_postgres

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


def url_of(db: Path | str) -> str:
    """The SQLAlchemy URL of `db`."""
    return str(db) if is_postgres(str(db)) else f"sqlite:///{db}"


def config(db: Path | str) -> Config:
    """An Alembic config on the project's migrations/ for the database `db`."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolates %; a URL may hold percent-escapes (a socket folder).
    cfg.set_main_option("sqlalchemy.url", url_of(db).replace("%", "%%"))
    return cfg


def tables(db: Path | str) -> set[str]:
    """The table names in `db`, read with the plain driver (not through the code under test)."""
    if is_postgres(str(db)):
        rows = Probe(str(db)).rows("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r[0] for r in rows}
    con = sqlite3.connect(db)
    try:
        return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        con.close()


def orm_diff(db: Path | str) -> list[Any]:
    """Alembic's differences between the schema of `db` and the ORM's `Base.metadata`.

    The ORM mirrors the newest revision, so at `head` this is empty; at an older
    revision each test keeps the differences that concern its own tables.
    """
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from facerec.gallery.schema import PROTOTYPE_HNSW_INDEX, Base
    from facerec.storage.database import create_engine_for
    from facerec.storage.urls import parse_url

    engine = create_engine_for(parse_url(str(db)))
    try:
        with engine.connect() as conn:
            # As migrations/env.py: the HNSW index is made per gallery, not by a migration.
            skip_hnsw = lambda name, type_, parents: name != PROTOTYPE_HNSW_INDEX  # noqa: E731
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_name": skip_hnsw}
            )
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()
