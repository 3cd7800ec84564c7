"""Bringing a database to the newest schema: one Alembic history for SQLite and PostgreSQL.

`Database.open` migrates on every open. The usual case, a database already at
the head, is answered without importing Alembic (a third of a cheap command's
start-up): the stored revision is read with one query and the head from the
scripts' text. Otherwise Alembic runs `migrations/env.py` on a connection of
the caller's engine, so migrations get the same connection settings as
everything else, and env.py serialises concurrent migrations like writes
(BEGIN IMMEDIATE on SQLite, the write advisory lock on PostgreSQL).
"""

from __future__ import annotations

import ast
import importlib.resources
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError, ProgrammingError, SQLAlchemyError

from facerec.errors import GalleryError

if TYPE_CHECKING:
    from alembic.config import Config


def migrations_dir() -> Path:
    """The Alembic scripts: shipped as `facerec.migrations`, or `migrations/` in a source tree."""
    try:
        folder = Path(str(importlib.resources.files("facerec.migrations")))
    except ModuleNotFoundError:
        folder = Path(__file__).resolve().parents[2] / "migrations"
    if not (folder / "env.py").is_file():
        raise GalleryError(f"Alembic migrations not found at {folder}; reinstall facerec")
    return folder


def alembic_config() -> Config:
    """An Alembic Config pointing at the shipped migrations (no alembic.ini needed)."""
    from alembic.config import Config

    config = Config()
    # ConfigParser interpolates %; a path may contain one.
    config.set_main_option("script_location", str(migrations_dir()).replace("%", "%%"))
    return config


def migrate(engine: Engine, display: str) -> None:
    """Bring the database behind `engine` to the newest schema; `display` names it in errors.

    No write lock is taken when it is already there.
    """
    head = head_from_scripts(migrations_dir())
    try:
        with engine.connect() as conn:
            if head is not None and stored_revision(conn) == head:
                return
    except SQLAlchemyError:
        pass  # Alembic below says what is wrong
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    config = alembic_config()
    head = ScriptDirectory.from_config(config).get_current_head()
    current: str | None = None
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
        if current == head:
            return
        with engine.connect() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    except (CommandError, RevisionError) as exc:
        raise GalleryError(
            f"{display}: schema revision {current!r} is unknown to this facerec "
            f"(was the gallery made by a newer version?): {exc}"
        ) from exc
    except SQLAlchemyError as exc:
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split())  # one line
        raise GalleryError(f"{display}: cannot open the gallery database: {reason}") from exc


_ASSIGNMENT = re.compile(r"^(down_)?revision\s*(?::[^=\n]*)?=\s*(.+?)\s*$", re.MULTILINE)


def head_from_scripts(folder: Path) -> str | None:
    """The one head revision of the migration scripts, read from their text; None when unsure.

    Every Alembic script starts with `revision = ...` and `down_revision = ...`;
    a merge (tuple), a branch (two heads) or anything unexpected gives None,
    and the caller asks Alembic itself.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (folder / "versions").glob("*.py"):
        values = {bool(down): raw for down, raw in _ASSIGNMENT.findall(script.read_text())}
        if not values:
            continue  # __init__.py
        try:
            revision, parent = (ast.literal_eval(values[key]) for key in (False, True))
        except (KeyError, ValueError, SyntaxError):
            return None
        if not isinstance(revision, str) or not isinstance(parent, str | None):
            return None
        revisions.add(revision)
        if parent is not None:
            parents.add(parent)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def stored_revision(conn: Connection) -> str | None:
    """The schema revision Alembic stamped into the database, or None (new or unstamped).

    On PostgreSQL a failed query aborts the transaction it ran in: call this
    on a connection whose transaction the caller does not need afterwards, or
    on a database known to be migrated.
    """
    try:
        rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except (OperationalError, ProgrammingError):  # no such table: a new database
        return None
    return str(rows[0]) if len(rows) == 1 else None
