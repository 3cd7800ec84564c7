"""What the migration tests of the gallery, album and ops tables share."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


def config(db: Path) -> Config:
    """An Alembic config on the project's migrations/ for the database file `db`."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", f"sqlite:///{db}")
    return cfg


def tables(db: Path) -> set[str]:
    """The table names in `db`, read with plain sqlite3 (not through the code under test)."""
    con = sqlite3.connect(db)
    try:
        return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        con.close()


def orm_diff(db: Path) -> list[Any]:
    """Alembic's differences between the schema of `db` and the ORM's `Base.metadata`.

    The ORM mirrors the newest revision, so at `head` this is empty; at an older
    revision each test keeps the differences that concern its own tables.
    """
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from facerec.gallery.schema import Base, create_sqlite_engine

    engine = create_sqlite_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()
