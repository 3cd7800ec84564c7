"""What `--db` / `$FACEREC_DB` may name: a SQLite file (a path or `sqlite:///`) or a PostgreSQL URL.

A plain path stays the common case (one machine, one file). A URL is only
recognised by its `scheme://` prefix, so any file name without one, however
odd, is still a file. Only the drivers facerec is tested with are accepted:
`postgresql://` is read as `postgresql+psycopg://` (psycopg 3, the `postgres`
extra), and any other driver or database is refused by name rather than
failing later with a driver's import error.

`display` is what messages and logs show: the URL with its password masked,
so an error naming the database can be pasted into a bug report.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from facerec.errors import GalleryError

Dialect = Literal["sqlite", "postgresql"]

#: `scheme://`: RFC 3986 scheme characters. A Windows drive (`C:\`) has no `//`.
_URL_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
#: Drivers accepted per database; the first is what a bare scheme means.
_POSTGRES_SCHEMES = ("postgresql", "postgresql+psycopg", "postgres")


@dataclass(frozen=True, slots=True)
class DatabaseUrl:
    """A checked database location.

    `url` is what SQLAlchemy connects to (password included); `display` never
    shows the password; `path` is the SQLite file (absolute), None for PostgreSQL.
    """

    dialect: Dialect
    url: URL
    display: str
    path: Path | None

    def __str__(self) -> str:
        return self.display


def parse_url(target: str | os.PathLike[str]) -> DatabaseUrl:
    """Where `target` points: a file path, `sqlite:///PATH`, or `postgresql[+psycopg]://...`.

    Raises `GalleryError` for anything else (another database, another driver,
    an in-memory SQLite database, a URL that does not parse).
    """
    if isinstance(target, os.PathLike) or not _URL_PREFIX.match(target):
        return sqlite_file(Path(target))
    scheme = target.split("://", 1)[0].lower()
    try:
        url = make_url(target)
    except (ArgumentError, ValueError) as exc:
        raise GalleryError(f"{_mask(target)}: not a database URL: {exc}") from exc
    if scheme == "sqlite":
        if not url.database or url.database == ":memory:":
            raise GalleryError(
                f"{target}: an in-memory SQLite database cannot hold a gallery "
                "(each connection would see its own); give a file, e.g. sqlite:///gallery.db"
            )
        return sqlite_file(Path(url.database))
    if scheme in _POSTGRES_SCHEMES:
        url = url.set(drivername="postgresql+psycopg")
        if not url.database:
            raise GalleryError(
                f"{_display(url)}: name the database, e.g. postgresql://user@host/facerec"
            )
        return DatabaseUrl("postgresql", url, _display(url), None)
    raise GalleryError(
        f"{_mask(target)}: unsupported database {scheme!r}; facerec stores its gallery in a "
        "SQLite file (a path or sqlite:///PATH) or in PostgreSQL "
        "(postgresql://user@host/db, driver psycopg)"
    )


def sqlite_file(path: Path) -> DatabaseUrl:
    """The SQLite database at `path` (made absolute; `~` expanded)."""
    path = Path(path).expanduser().absolute()
    url = URL.create("sqlite", database=str(path))
    return DatabaseUrl("sqlite", url, str(path), path)


def _display(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def _mask(text: str) -> str:
    """`text` with any `user:password@` password masked, for URLs that did not parse."""
    return re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1***@", text)
