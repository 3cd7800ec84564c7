"""Alembic 0002: the album tables as the ORM describes them, keys that stop duplicates, clean downgrade."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from alembic import command

import facerec.gallery.album_schema as album_schema

from ..migrations_support import config, orm_diff, tables

ALBUM_TABLES = {"album_photos", "album_faces", "album_clusters", "album_negatives"}
GALLERY_TABLES = {"meta", "thresholds", "identities", "samples", "prototypes"}


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


def test_album_tables_match_the_orm(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    command.upgrade(config(db), "head")  # the ORM mirrors the newest revision
    assert tables(db) >= ALBUM_TABLES
    diff = orm_diff(db)
    # Only the album tables are compared here (later revisions add tables of their own).
    ours = [d for d in diff if table_of(d) in ALBUM_TABLES]
    assert ours == []
    assert album_schema.AlbumFace.__tablename__ == "album_faces"


def test_keys_and_cascades(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    command.upgrade(config(db), "0002")
    con = sqlite3.connect(db)
    try:
        con.execute("PRAGMA foreign_keys=ON")
        con.execute("INSERT INTO identities VALUES (1, 'Ada', '2026-01-01', '2026-01-01')")
        photo = "INSERT INTO album_photos (path, content_sha256, size_bytes, mtime_ns, status, scanned_at) VALUES (?, ?, 1, 1, 'ok', '2026-01-01')"
        con.execute(photo, ("/a.jpg", "abc"))
        with pytest.raises(sqlite3.IntegrityError):
            con.execute(photo, ("/b.jpg", "abc"))  # one row per content
        con.execute("INSERT INTO album_clusters (id, created_at) VALUES (5, '2026-01-01')")
        face = "INSERT INTO album_faces (photo_id, face_index, box, landmarks, det_score, quality, embedding, identity_id, cluster_id) VALUES (1, ?, '[]', '[]', 1.0, '{}', x'00', ?, ?)"
        con.execute(face, (0, 1, None))
        con.execute(face, (1, None, 5))
        with pytest.raises(sqlite3.IntegrityError):
            con.execute(face, (0, None, None))  # one row per face of a photo
        con.execute("INSERT INTO album_negatives VALUES (2, 1, '2026-01-01')")
        assert con.execute("SELECT folded FROM album_faces").fetchall() == [(0,), (0,)]
        con.execute("DELETE FROM album_clusters")  # cluster gone: the face stays, unclustered
        assert con.execute("SELECT cluster_id FROM album_faces WHERE id = 2").fetchone() == (None,)
        con.execute("DELETE FROM identities")  # person gone: match cleared, negative gone
        assert con.execute("SELECT identity_id FROM album_faces WHERE id = 1").fetchone() == (None,)
        assert con.execute("SELECT COUNT(*) FROM album_negatives").fetchone() == (0,)
        con.execute("DELETE FROM album_photos")  # photo gone: its faces go with it
        assert con.execute("SELECT COUNT(*) FROM album_faces").fetchone() == (0,)
        con.commit()
    finally:
        con.close()


def test_downgrade_to_0001_keeps_the_gallery(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    command.upgrade(config(db), "0002")
    con = sqlite3.connect(db)
    con.execute("INSERT INTO identities VALUES (1, 'Ada', '2026-01-01', '2026-01-01')")
    con.commit()
    con.close()
    command.downgrade(config(db), "0001")
    assert tables(db) & ALBUM_TABLES == set()
    assert tables(db) >= GALLERY_TABLES
    con = sqlite3.connect(db)
    try:
        assert con.execute("SELECT version_num FROM alembic_version").fetchall() == [("0001",)]
        assert con.execute("SELECT name FROM identities").fetchall() == [("Ada",)]
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        con.close()
    command.upgrade(config(db), "0002")  # and back up again
    assert tables(db) >= ALBUM_TABLES


def test_0004_keeps_every_photo_path_and_downgrades(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    command.upgrade(config(db), "0003")
    con = sqlite3.connect(db)
    con.execute(
        "INSERT INTO album_photos (path, content_sha256, size_bytes, mtime_ns, status, scanned_at)"
        " VALUES ('/album/a.jpg', 'abc', 10, 20, 'ok', '2026-01-01')"
    )
    con.commit()
    con.close()
    command.upgrade(config(db), "0004")
    new = {"album_photo_paths", "album_forgotten_faces"}
    assert tables(db) >= new
    con = sqlite3.connect(db)
    try:  # the photo's one path is carried over with its stat facts
        assert con.execute(
            "SELECT photo_id, path, size_bytes, mtime_ns FROM album_photo_paths"
        ).fetchall() == [(1, "/album/a.jpg", 10, 20)]
    finally:
        con.close()
    diff = orm_diff(db)
    # Later revisions change the paths table (tests/album/test_album_paths_migration.py):
    # 0006 adds `path_bytes`, 0007 trades the unique constraint on `path` for an index.
    later = ("path_bytes", "ix_album_photo_paths_path", "UniqueConstraint(Column('path'")
    assert [d for d in diff if table_of(d) in new and not any(w in str(d) for w in later)] == []
    command.downgrade(config(db), "0003")
    assert tables(db) & new == set() and tables(db) >= ALBUM_TABLES
