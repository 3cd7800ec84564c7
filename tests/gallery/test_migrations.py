"""Alembic: the migrations build exactly the schema the ORM describes, both ways, API and CLI."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

# The apps' tables join Base.metadata, so the ORM describes the whole database.
import facerec.album.tables
import facerec.camera.tables
import facerec.server.tables  # noqa: F401

from ..migrations_support import MIGRATIONS, config, orm_diff, tables

ROOT = MIGRATIONS.parent

GALLERY_TABLES = {"meta", "thresholds", "identities", "samples", "prototypes"}


def version(db: Path) -> list[str]:
    con = sqlite3.connect(db)
    try:
        return [r[0] for r in con.execute("SELECT version_num FROM alembic_version")]
    finally:
        con.close()


def head() -> str:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    rev = ScriptDirectory.from_config(cfg).get_current_head()
    assert rev is not None
    return rev


def test_upgrade_and_downgrade_with_the_command_api(tmp_path: Path) -> None:
    """Revision 0001 itself: exactly the gallery's tables, then back to nothing."""
    db = tmp_path / "g.db"
    command.upgrade(config(db), "0001")
    assert tables(db) - {"sqlite_sequence"} == GALLERY_TABLES | {"alembic_version"}
    assert version(db) == ["0001"]
    con = sqlite3.connect(db)
    try:
        assert con.execute("SELECT value FROM meta WHERE key = 'revision'").fetchall() == [("0",)]
        fks = con.execute("PRAGMA foreign_key_list(samples)").fetchall()
        assert [(fk[2], fk[3], fk[4], fk[6]) for fk in fks] == [
            ("identities", "identity_id", "id", "CASCADE")
        ]
        indexes = {r[1] for r in con.execute("PRAGMA index_list(samples)")}
        assert "ix_samples_identity_id" in indexes
    finally:
        con.close()

    command.downgrade(config(db), "base")
    assert tables(db) & GALLERY_TABLES == set()
    assert version(db) == []


def test_migrations_match_the_orm_schema(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    command.upgrade(config(db), "head")
    diff = orm_diff(db)
    assert diff == []


def test_gallery_reopens_a_database_migrated_by_alembic(tmp_path: Path) -> None:
    from facerec.gallery import Gallery

    db = tmp_path / "g.db"
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


def test_alembic_cli_without_a_database_says_how(tmp_path: Path) -> None:
    ini = tmp_path / "alembic.ini"
    ini.write_text(f"[alembic]\nscript_location = {MIGRATIONS}\n")
    run = alembic("-c", str(ini), "upgrade", "head")
    assert run.returncode != 0
    assert "-x db=" in run.stderr + run.stdout
