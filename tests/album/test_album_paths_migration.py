"""Alembic 0006: album photo names as exact bytes (plus a damage note), filled from older rows.

Written against the revision before 0006, whatever it is, so the test survives renumbering.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory

from ..migrations_support import config

PHOTO = (
    "INSERT INTO album_photos (path, content_sha256, size_bytes, mtime_ns, status, scanned_at) "
    "VALUES (?, ?, 1, 1, 'ok', '2026-01-01')"
)


def columns(db: Path, table: str = "album_photos") -> set[str]:
    con = sqlite3.connect(db)
    try:
        return {r[1] for r in con.execute(f"PRAGMA table_info({table})")}
    finally:
        con.close()


def test_upgrade_fills_path_bytes_and_downgrade_keeps_rows(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    revision = ScriptDirectory.from_config(config(db)).get_revision("0006")
    assert revision is not None and isinstance(revision.down_revision, str)
    before = revision.down_revision
    command.upgrade(config(db), before)
    con = sqlite3.connect(db)
    con.execute(PHOTO, ("/photos/Zoë.jpg", "aa"))
    con.execute(
        "INSERT INTO album_photo_paths (photo_id, path, size_bytes, mtime_ns) VALUES (1, ?, 1, 1)",
        ("/photos/Zoë.jpg",),
    )
    con.execute("INSERT INTO album_faces (photo_id, face_index, box, landmarks, det_score, "
                "quality, embedding) VALUES (1, 0, '[]', '[]', 1.0, '{}', x'00')")  # fmt: skip
    con.commit()
    con.close()

    command.upgrade(config(db), "0006")
    assert {"path_bytes", "damage"} <= columns(db)
    con = sqlite3.connect(db)
    try:
        row = con.execute("SELECT path, path_bytes, damage FROM album_photos").fetchone()
        assert row == ("/photos/Zoë.jpg", "/photos/Zoë.jpg".encode(), None)
        indexes = {r[1] for r in con.execute("PRAGMA index_list(album_photos)")}
        assert "ix_album_photos_path_bytes" in indexes
        # The paths table (0004) keeps every path of a content, exact bytes too.
        assert con.execute("SELECT path, path_bytes FROM album_photo_paths").fetchall() == [
            ("/photos/Zoë.jpg", "/photos/Zoë.jpg".encode())
        ]
        unique = {r[1]: r[2] for r in con.execute("PRAGMA index_list(album_photo_paths)")}
        assert unique.get("ix_album_photo_paths_path_bytes") == 1
        # A name that is not UTF-8 has a row of its own, found by its bytes.
        con.execute(
            "INSERT INTO album_photos (path, path_bytes, content_sha256, size_bytes, mtime_ns, "
            "status, scanned_at) VALUES (?, ?, 'bb', 1, 1, 'ok', '2026-01-01')",
            ("/photos/caf\\xe9.jpg", b"/photos/caf\xe9.jpg"),
        )
        con.commit()
        got = con.execute(
            "SELECT content_sha256 FROM album_photos WHERE path_bytes = ?",
            (b"/photos/caf\xe9.jpg",),
        ).fetchall()
        assert got == [("bb",)]
    finally:
        con.close()

    command.downgrade(config(db), before)
    assert not {"path_bytes", "damage"} & columns(db)
    assert "path_bytes" not in columns(db, "album_photo_paths")
    con = sqlite3.connect(db)
    try:
        assert con.execute("SELECT count(*) FROM album_photos").fetchone() == (2,)
        assert con.execute("SELECT count(*) FROM album_faces").fetchone() == (1,)  # no cascade
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        con.close()
    command.upgrade(config(db), "head")
    assert {"path_bytes", "damage"} <= columns(db)


def test_0007_lets_two_exact_names_print_alike(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    command.upgrade(config(db), "0006")
    con = sqlite3.connect(db)
    con.execute(PHOTO, ("/p/caf\\xe9.jpg", "aa"))
    row = "INSERT INTO album_photo_paths (photo_id, path, path_bytes, size_bytes, mtime_ns) "
    row += "VALUES (1, '/p/caf\\xe9.jpg', ?, 1, 1)"
    con.execute(row, (b"/p/caf\xe9.jpg",))
    con.commit()
    with pytest.raises(sqlite3.IntegrityError):  # what the scan met before 0007
        con.execute(row, (b"/p/caf\\xe9.jpg",))
    con.close()

    command.upgrade(config(db), "0007")
    con = sqlite3.connect(db)
    try:
        con.execute(row, (b"/p/caf\\xe9.jpg",))
        con.commit()
        assert con.execute("SELECT count(*) FROM album_photo_paths").fetchone() == (2,)
        with pytest.raises(sqlite3.IntegrityError):  # the exact bytes stay unique
            con.execute(row, (b"/p/caf\xe9.jpg",))
        indexes = {r[1]: r[2] for r in con.execute("PRAGMA index_list(album_photo_paths)")}
        assert indexes.get("ix_album_photo_paths_path") == 0
    finally:
        con.close()
