"""Alembic 0002, 0004: the album tables as the ORM describes them, keys that stop duplicates, clean
downgrades; on a SQLite file and on PostgreSQL (the `empty_db_url` / `db_url` fixtures)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic import command

import facerec.album.tables as album_tables
from facerec.storage import Database

from ..db_rows import execute, integrity_errors, is_postgres, rows
from ..migrations_support import config, orm_diff, tables

ALBUM_TABLES = {"album_photos", "album_faces", "album_clusters", "album_negatives"}
GALLERY_TABLES = {"meta", "thresholds", "identities", "samples", "prototypes"}
#: An album face's embedding as each database stores it before facerec reads it back.
EMBEDDING = {"sqlite": "x'00000000'", "postgresql": "'[0]'"}


def table_of(diff: Any) -> str | None:
    """The table an Alembic autogenerate difference is about."""
    if isinstance(diff, list):  # modify_* operations come as a list of tuples
        return table_of(diff[0])
    op, *rest = diff
    if op in ("add_table", "remove_table"):
        return str(rest[0].name)
    if op in ("add_index", "remove_index", "add_constraint", "remove_constraint"):
        return str(rest[0].table.name)
    if op in ("add_fk", "remove_fk"):
        return str(rest[0].parent.name)
    return str(rest[1]) if len(rest) > 1 else None  # (op, schema, table, ...)


def test_0002_revises_0001() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(config(Path("unused.db"))).get_revision("0002")
    assert script is not None and script.down_revision == "0001"


def test_album_tables_match_the_orm(db_url: str) -> None:
    Database.open(db_url).close()  # migrated to the head, which the ORM mirrors
    assert tables(db_url) >= ALBUM_TABLES
    diff = orm_diff(db_url)
    # Only the album tables are compared here (later revisions add tables of their own).
    ours = [d for d in diff if table_of(d) in ALBUM_TABLES]
    assert ours == []
    assert album_tables.AlbumFace.__tablename__ == "album_faces"


def test_keys_and_cascades(empty_db_url: str) -> None:
    db = empty_db_url
    broken = integrity_errors(db)
    command.upgrade(config(db), "0002")
    execute(db, "INSERT INTO identities VALUES (1, 'Ada', '2026-01-01', '2026-01-01')")
    photo = "INSERT INTO album_photos (path, content_sha256, size_bytes, mtime_ns, status, scanned_at) VALUES (?, ?, 1, 1, 'ok', '2026-01-01')"
    execute(db, photo, "/a.jpg", "abc")
    with pytest.raises(broken):
        execute(db, photo, "/b.jpg", "abc")  # one row per content
    execute(db, "INSERT INTO album_clusters (id, created_at) VALUES (5, '2026-01-01')")
    embedding = EMBEDDING["postgresql" if is_postgres(db) else "sqlite"]
    face = f"INSERT INTO album_faces (photo_id, face_index, box, landmarks, det_score, quality, embedding, identity_id, cluster_id) VALUES (1, ?, '[]', '[]', 1.0, '{{}}', {embedding}, ?, ?)"
    execute(db, face, 0, 1, None)
    execute(db, face, 1, None, 5)
    with pytest.raises(broken):
        execute(db, face, 0, None, None)  # one row per face of a photo
    (first, second) = [r[0] for r in rows(db, "SELECT id FROM album_faces ORDER BY id")]
    execute(db, "INSERT INTO album_negatives VALUES (?, 1, '2026-01-01')", second)
    assert [bool(f) for (f,) in rows(db, "SELECT folded FROM album_faces")] == [False, False]
    execute(db, "DELETE FROM album_clusters")  # cluster gone: the face stays, unclustered
    assert rows(db, "SELECT cluster_id FROM album_faces WHERE id = ?", second) == [(None,)]
    execute(db, "DELETE FROM identities")  # person gone: match cleared, negative gone
    assert rows(db, "SELECT identity_id FROM album_faces WHERE id = ?", first) == [(None,)]
    assert rows(db, "SELECT COUNT(*) FROM album_negatives") == [(0,)]
    execute(db, "DELETE FROM album_photos")  # photo gone: its faces go with it
    assert rows(db, "SELECT COUNT(*) FROM album_faces") == [(0,)]


def test_downgrade_to_0001_keeps_the_gallery(empty_db_url: str) -> None:
    db = empty_db_url
    command.upgrade(config(db), "0002")
    execute(db, "INSERT INTO identities VALUES (1, 'Ada', '2026-01-01', '2026-01-01')")
    command.downgrade(config(db), "0001")
    assert tables(db) & ALBUM_TABLES == set()
    assert tables(db) >= GALLERY_TABLES
    assert rows(db, "SELECT version_num FROM alembic_version") == [("0001",)]
    assert rows(db, "SELECT name FROM identities") == [("Ada",)]
    if not is_postgres(db):  # PostgreSQL never lets a foreign key dangle
        assert rows(db, "PRAGMA foreign_key_check") == []
    command.upgrade(config(db), "0002")  # and back up again
    assert tables(db) >= ALBUM_TABLES


def test_0004_keeps_every_photo_path_and_downgrades(empty_db_url: str) -> None:
    db = empty_db_url
    command.upgrade(config(db), "0003")
    execute(
        db,
        "INSERT INTO album_photos (path, content_sha256, size_bytes, mtime_ns, status, scanned_at)"
        " VALUES ('/album/a.jpg', 'abc', 10, 20, 'ok', '2026-01-01')",
    )
    command.upgrade(config(db), "0004")
    new = {"album_photo_paths", "album_forgotten_faces"}
    assert tables(db) >= new
    # The photo's one path is carried over with its stat facts.
    assert rows(db, "SELECT photo_id, path, size_bytes, mtime_ns FROM album_photo_paths") == [
        (1, "/album/a.jpg", 10, 20)
    ]
    diff = orm_diff(db)
    # Later revisions change the paths table (tests/album/test_album_paths_migration.py):
    # 0006 adds `path_bytes`, 0007 trades the unique constraint on `path` for an index.
    later = ("path_bytes", "ix_album_photo_paths_path", "UniqueConstraint(Column('path'")
    assert [d for d in diff if table_of(d) in new and not any(w in str(d) for w in later)] == []
    command.downgrade(config(db), "0003")
    assert tables(db) & new == set() and tables(db) >= ALBUM_TABLES
