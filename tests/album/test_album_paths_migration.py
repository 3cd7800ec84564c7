"""Alembic 0006: album photo names as exact bytes (plus a damage note), filled from older rows;
0007: two exact names may print alike. On a SQLite file and on PostgreSQL (`empty_db_url`),
for 0006 converts text to bytes in each database's own SQL.

Written against the revision before 0006, whatever it is, so the test survives renumbering.
"""

from __future__ import annotations

import pytest
from alembic import command
from alembic.script import ScriptDirectory

from ..db_rows import execute, integrity_errors, is_postgres, rows, schema
from ..migrations_support import config

PHOTO = (
    "INSERT INTO album_photos (path, content_sha256, size_bytes, mtime_ns, status, scanned_at) "
    "VALUES (?, ?, 1, 1, 'ok', '2026-01-01')"
)


def columns(db: str, table: str = "album_photos") -> set[str]:
    return {c["name"] for c in schema(db).get_columns(table)}


def indexes(db: str, table: str) -> dict[str, bool]:
    """Index name -> unique, as the database states it."""
    return {ix["name"]: bool(ix["unique"]) for ix in schema(db).get_indexes(table)}


def test_upgrade_fills_path_bytes_and_downgrade_keeps_rows(empty_db_url: str) -> None:
    db = empty_db_url
    revision = ScriptDirectory.from_config(config(db)).get_revision("0006")
    assert revision is not None and isinstance(revision.down_revision, str)
    before = revision.down_revision
    command.upgrade(config(db), before)
    execute(db, PHOTO, "/photos/Zoë.jpg", "aa")
    execute(
        db,
        "INSERT INTO album_photo_paths (photo_id, path, size_bytes, mtime_ns) VALUES (1, ?, 1, 1)",
        "/photos/Zoë.jpg",
    )
    embedding = "'[0]'" if is_postgres(db) else "x'00000000'"
    execute(db, "INSERT INTO album_faces (photo_id, face_index, box, landmarks, det_score, "
                f"quality, embedding) VALUES (1, 0, '[]', '[]', 1.0, '{{}}', {embedding})")  # fmt: skip

    command.upgrade(config(db), "0006")
    assert {"path_bytes", "damage"} <= columns(db)
    row = rows(db, "SELECT path, path_bytes, damage FROM album_photos")
    assert row == [("/photos/Zoë.jpg", "/photos/Zoë.jpg".encode(), None)]
    assert "ix_album_photos_path_bytes" in indexes(db, "album_photos")
    # The paths table (0004) keeps every path of a content, exact bytes too.
    assert rows(db, "SELECT path, path_bytes FROM album_photo_paths") == [
        ("/photos/Zoë.jpg", "/photos/Zoë.jpg".encode())
    ]
    assert indexes(db, "album_photo_paths").get("ix_album_photo_paths_path_bytes") is True
    # A name that is not UTF-8 has a row of its own, found by its bytes.
    execute(
        db,
        "INSERT INTO album_photos (path, path_bytes, content_sha256, size_bytes, mtime_ns, "
        "status, scanned_at) VALUES (?, ?, 'bb', 1, 1, 'ok', '2026-01-01')",
        "/photos/caf\\xe9.jpg",
        b"/photos/caf\xe9.jpg",
    )
    got = rows(db, "SELECT content_sha256 FROM album_photos WHERE path_bytes = ?",
               b"/photos/caf\xe9.jpg")  # fmt: skip
    assert got == [("bb",)]

    command.downgrade(config(db), before)
    assert not {"path_bytes", "damage"} & columns(db)
    assert "path_bytes" not in columns(db, "album_photo_paths")
    assert rows(db, "SELECT count(*) FROM album_photos") == [(2,)]
    assert rows(db, "SELECT count(*) FROM album_faces") == [(1,)]  # no cascade
    if not is_postgres(db):  # PostgreSQL never lets a foreign key dangle
        assert rows(db, "PRAGMA foreign_key_check") == []
    command.upgrade(config(db), "head")
    assert {"path_bytes", "damage"} <= columns(db)


def test_0007_lets_two_exact_names_print_alike(empty_db_url: str) -> None:
    db = empty_db_url
    broken = integrity_errors(db)
    command.upgrade(config(db), "0006")
    execute(db, PHOTO, "/p/caf\\xe9.jpg", "aa")
    row = "INSERT INTO album_photo_paths (photo_id, path, path_bytes, size_bytes, mtime_ns) "
    row += "VALUES (1, '/p/caf\\xe9.jpg', ?, 1, 1)"
    execute(db, row, b"/p/caf\xe9.jpg")
    with pytest.raises(broken):  # what the scan met before 0007
        execute(db, row, b"/p/caf\\xe9.jpg")

    command.upgrade(config(db), "0007")
    execute(db, row, b"/p/caf\\xe9.jpg")
    assert rows(db, "SELECT count(*) FROM album_photo_paths") == [(2,)]
    with pytest.raises(broken):  # the exact bytes stay unique
        execute(db, row, b"/p/caf\xe9.jpg")
    assert indexes(db, "album_photo_paths").get("ix_album_photo_paths_path") is False
