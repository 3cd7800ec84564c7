"""A test database read and written with its own driver (sqlite3 or psycopg), never through facerec.

The apps' and migrations' tests check what facerec wrote by reading it back
another way, so a bug in a store's reads cannot hide one in its writes, and
they put old rows into old schemas the way an old facerec left them. `db` is
what the `db_url` / `empty_db_url` fixtures give: a SQLite file path or a
PostgreSQL URL. SQL uses `?` placeholders and is written to run on both.
Each call is one transaction of its own (SQLite with foreign keys on, as
facerec runs it).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def is_postgres(db: str | Path) -> bool:
    return str(db).startswith(("postgresql://", "postgresql+psycopg://"))


def _run(db: str | Path, sql: str, args: tuple[object, ...], fetch: bool) -> list[tuple[Any, ...]]:
    if is_postgres(db):
        import psycopg

        dsn = str(db).replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(dsn) as con:
            cursor = con.execute(sql.replace("?", "%s"), args)
            found = cursor.fetchall() if fetch else []
        return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in found]
    con = sqlite3.connect(db)
    try:
        con.execute("PRAGMA foreign_keys=ON")
        with con:
            return con.execute(sql, args).fetchall()
    finally:
        con.close()


def rows(db: str | Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    """Every row of one query, with BLOB/bytea values as `bytes`."""
    return _run(db, sql, args, fetch=True)


def execute(db: str | Path, sql: str, *args: object) -> None:
    """One statement, committed."""
    _run(db, sql, args, fetch=False)


def integrity_errors(db: str | Path) -> tuple[type[Exception], ...]:
    """What the driver raises for a broken UNIQUE or foreign key."""
    if is_postgres(db):
        import psycopg

        return (psycopg.IntegrityError,)
    return (sqlite3.IntegrityError,)


def count(db: str | Path, table: str) -> int:
    return int(rows(db, f"SELECT COUNT(*) FROM {table}")[0][0])


def table_names(db: str | Path) -> list[str]:
    """The database's own tables (Alembic's included), sorted."""
    if is_postgres(db):
        sql = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
    return sorted(str(r[0]) for r in rows(db, sql))


def dump(db: str | Path, tables: Sequence[str] | None = None) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of `tables` (by default all of them), each table in a fixed order.

    Equal dumps mean an unchanged database; the `repr` of one is the text to
    search for what must be gone.
    """
    names = table_names(db) if tables is None else tables
    return {t: rows(db, f'SELECT * FROM "{t}" ORDER BY 1') for t in names}


def vectors(db: str | Path, sql: str, *args: object) -> list[np.ndarray]:
    """The first column of each row as a float32 vector, decoded from the stored form.

    SQLite stores little-endian float32 bytes; PostgreSQL's `vector` reads
    back as its text form `[x,y,...]` (psycopg knows no pgvector type here).
    """
    out = []
    for (value,) in rows(db, sql, *args):
        if is_postgres(db):
            assert isinstance(value, str) and value.startswith("["), value
            out.append(np.array([float(x) for x in value[1:-1].split(",")], np.float32))
        else:
            assert isinstance(value, bytes), value
            out.append(np.frombuffer(value, dtype="<f4"))
    return out


def schema(db: str | Path) -> Any:
    """SQLAlchemy's inspector on `db` (columns, indexes, foreign keys as the database states them)."""
    from sqlalchemy import create_engine, inspect
    from sqlalchemy.pool import NullPool

    url = str(db) if is_postgres(db) else f"sqlite:///{db}"
    return inspect(create_engine(url, poolclass=NullPool))  # each question its own connection
