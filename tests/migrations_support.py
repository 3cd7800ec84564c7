"""What the migration tests of the gallery, album and ops tables share."""

from __future__ import annotations

import sqlite3
from pathlib import Path

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
