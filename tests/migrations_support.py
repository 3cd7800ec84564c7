"""What the migration tests of the gallery, album and ops tables share.

`db` is a SQLite file (a Path, or a path string) or a PostgreSQL URL string, as
the `db_url` and `empty_db_url` fixtures give them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.config import Config

from .db_rows import is_postgres, table_names

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


def url_of(db: Path | str) -> str:
    """`db` as a SQLAlchemy URL (password included: it only goes to the test's own Alembic)."""
    return db if isinstance(db, str) and is_postgres(db) else f"sqlite:///{db}"


def config(db: Path | str) -> Config:
    """An Alembic config on the project's migrations/ for the database `db`."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolates %, and a PostgreSQL URL may carry %2F (a socket folder).
    cfg.set_main_option("sqlalchemy.url", url_of(db).replace("%", "%%"))
    return cfg


def tables(db: Path | str) -> set[str]:
    """The table names in `db`, read with its own driver (not through the code under test)."""
    return set(table_names(str(db)))


def orm_diff(db: Path | str) -> list[Any]:
    """Alembic's differences between the schema of `db` and the ORM's `Base.metadata`.

    The ORM mirrors the newest revision, so at `head` this is empty; at an older
    revision each test keeps the differences that concern its own tables.
    """
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from facerec.gallery.schema import PROTOTYPE_HNSW_INDEX
    from facerec.storage import Base, parse_url
    from facerec.storage.database import create_engine_for

    engine = create_engine_for(parse_url(url_of(db)))
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
