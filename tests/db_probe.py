"""Reading a test database with the plain driver (sqlite3 or psycopg), never through facerec.

A bug in facerec's own reads must not hide a bug in its writes, so the tests
look at rows with the database's own driver. SQL is written with `?`
placeholders and runs unchanged on both.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import numpy as np


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgresql+psycopg://"))


class Probe:
    """Rows of the database at `url` (a SQLite path or a PostgreSQL URL), one connection per query."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.postgres = is_postgres(url)

    def rows(self, sql: str, *args: object) -> list[tuple[Any, ...]]:
        if self.postgres:
            import psycopg

            dsn = self.url.replace("postgresql+psycopg://", "postgresql://", 1)
            with psycopg.connect(dsn) as con:
                return [tuple(r) for r in con.execute(sql.replace("?", "%s"), args).fetchall()]
        con = sqlite3.connect(Path(self.url))
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()

    def execute(self, sql: str, *args: object) -> None:
        """Run one statement that returns no rows (committed at once)."""
        if self.postgres:
            import psycopg

            dsn = self.url.replace("postgresql+psycopg://", "postgresql://", 1)
            with psycopg.connect(dsn, autocommit=True) as con:
                con.execute(sql.replace("?", "%s"), args)
            return
        con = sqlite3.connect(Path(self.url))
        try:
            con.execute(sql, args)
            con.commit()
        finally:
            con.close()

    def count(self, table: str) -> int:
        return int(self.rows(f"SELECT COUNT(*) FROM {table}")[0][0])

    def dump(self, tables: tuple[str, ...]) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, in a fixed order: equal dumps mean an unchanged database."""
        return {t: self.rows(f"SELECT * FROM {t} ORDER BY 1") for t in tables}

    def vectors(self, sql: str, *args: object) -> list[np.ndarray]:
        """The first column of each row as a float32 vector, decoded from the stored form.

        SQLite stores little-endian float32 bytes; PostgreSQL's `vector` reads
        back as its text form `[x,y,...]`.
        """
        out = []
        for (value,) in self.rows(sql, *args):
            if self.postgres:
                assert isinstance(value, str) and value.startswith("["), value
                out.append(np.array([float(x) for x in value[1:-1].split(",")], np.float32))
            else:
                assert isinstance(value, bytes), value
                out.append(np.frombuffer(value, dtype="<f4"))
        return out
