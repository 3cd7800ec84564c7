"""Alembic: the migrations build exactly the schema the ORM describes, both ways, API and CLI,
on SQLite and on PostgreSQL (one history for both)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

# The apps' tables join Base.metadata, so the ORM describes the whole database.
import facerec.album.tables
import facerec.camera.tables
import facerec.server.tables  # noqa: F401

from ..db_rows import is_postgres, rows
from ..migrations_support import MIGRATIONS, config, orm_diff, tables

ROOT = MIGRATIONS.parent

GALLERY_TABLES = {"meta", "thresholds", "identities", "samples", "prototypes"}


def version(db: Path | str) -> list[str]:
    return [r[0] for r in rows(db, "SELECT version_num FROM alembic_version")]


def head() -> str:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    rev = ScriptDirectory.from_config(cfg).get_current_head()
    assert rev is not None
    return rev


def test_upgrade_and_downgrade_with_the_command_api(empty_db_url: str) -> None:
    """Revision 0001 itself: exactly the gallery's tables, then back to nothing."""
    db = empty_db_url
    command.upgrade(config(db), "0001")
    assert tables(db) - {"sqlite_sequence"} == GALLERY_TABLES | {"alembic_version"}
    assert version(db) == ["0001"]
    assert rows(db, "SELECT value FROM meta WHERE key = 'revision'") == [("0",)]
    from facerec.storage.database import create_engine_for
    from facerec.storage.urls import parse_url

    engine = create_engine_for(parse_url(db))
    try:
        with engine.connect() as conn:
            schema = inspect(conn)
            fks = schema.get_foreign_keys("samples")
            indexes = {ix["name"] for ix in schema.get_indexes("samples")}
            embedding = {c["name"]: c["type"] for c in schema.get_columns("samples")}["embedding"]
    finally:
        engine.dispose()
    assert [
        (fk["referred_table"], fk["constrained_columns"], fk["referred_columns"], fk["options"])
        for fk in fks
    ] == [("identities", ["identity_id"], ["id"], {"ondelete": "CASCADE"})]
    assert "ix_samples_identity_id" in indexes
    # SQLite keeps the BLOB every existing gallery has; PostgreSQL gets a pgvector column.
    assert type(embedding).__name__ == ("VECTOR" if is_postgres(db) else "BLOB")

    command.downgrade(config(db), "base")
    assert tables(db) & GALLERY_TABLES == set()
    assert version(db) == []


def test_every_revision_goes_down_and_up_again(empty_db_url: str) -> None:
    """Head to base (every downgrade, newest first) and back up: nothing is left behind or in the way."""
    db = empty_db_url
    command.upgrade(config(db), "head")
    command.downgrade(config(db), "base")
    assert tables(db) - {"sqlite_sequence"} == {"alembic_version"}
    command.upgrade(config(db), "head")
    assert orm_diff(db) == []


def test_migrations_match_the_orm_schema(empty_db_url: str) -> None:
    db = empty_db_url
    command.upgrade(config(db), "head")
    diff = orm_diff(db)
    assert diff == []


def test_gallery_reopens_a_database_migrated_by_alembic(empty_db_url: str) -> None:
    from facerec.gallery import Gallery

    db = empty_db_url
    command.upgrade(config(db), "head")
    with Gallery.open(db) as g:
        assert g.info().schema_revision == head()
    assert version(db) == [head()]
    # The Gallery migrates from the installed facerec.migrations package: this very folder.
    from facerec.storage.migrate import migrations_dir

    assert migrations_dir().resolve() == MIGRATIONS


def alembic(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("how", ["x-db", "ini-url"])
def test_alembic_cli(tmp_path: Path, how: str) -> None:
    db = tmp_path / "cli.db"
    if how == "x-db":
        # The documented developer command: alembic -c alembic.ini -x db=PATH ...
        target = ["-c", str(ROOT / "alembic.ini"), "-x", f"db={db}"]
    else:
        # An ini of one's own with a sqlalchemy.url, as the Alembic docs describe.
        ini = tmp_path / "alembic.ini"
        ini.write_text(
            f"[alembic]\nscript_location = {MIGRATIONS}\nsqlalchemy.url = sqlite:///{db}\n"
        )
        target = ["-c", str(ini)]

    up = alembic(*target, "upgrade", "head")
    assert up.returncode == 0, up.stderr
    assert tables(db) >= GALLERY_TABLES
    assert version(db) == [head()]
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone() == ("wal",)  # the Gallery's pragmas
    finally:
        con.close()

    down = alembic(*target, "downgrade", "base")
    assert down.returncode == 0, down.stderr
    assert tables(db) & GALLERY_TABLES == set()


def test_alembic_cli_on_postgres(empty_postgres_url: str) -> None:
    """`-x url=postgresql+psycopg://...`: the same history, and the pgvector extension with it."""
    target = ["-c", str(ROOT / "alembic.ini"), "-x", f"url={empty_postgres_url}"]
    up = alembic(*target, "upgrade", "head")
    assert up.returncode == 0, up.stderr
    assert tables(empty_postgres_url) >= GALLERY_TABLES
    assert version(empty_postgres_url) == [head()]
    extensions = rows(empty_postgres_url, "SELECT extname FROM pg_extension")
    assert ("vector",) in extensions
    # Downgrades on PostgreSQL: test_every_revision_goes_down_and_up_again (one process fewer).


def test_alembic_cli_without_a_database_says_how(tmp_path: Path) -> None:
    ini = tmp_path / "alembic.ini"
    ini.write_text(f"[alembic]\nscript_location = {MIGRATIONS}\n")
    run = alembic("-c", str(ini), "upgrade", "head")
    assert run.returncode != 0
    assert "-x db=" in run.stderr + run.stdout
