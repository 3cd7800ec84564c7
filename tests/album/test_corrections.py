"""Corrections as data: each one logged in one transaction and undoable, through Python and the CLI.

Every test reads the database afterwards (people, album faces, "not" records,
cannot-links, the log), not the return values alone.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from facerec.album import corrections
from facerec.album.api import Album
from facerec.album.errors import AlbumError
from facerec.cli import app

OBAMA, BIDEN = "Barack Obama", "Joe Biden"


def rows(db: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def people(db: Path) -> dict[str, int]:
    """Name -> number of samples."""
    return dict(
        rows(
            db,
            "SELECT i.name, count(s.id) FROM identities i JOIN samples s ON s.identity_id = i.id "
            "GROUP BY i.name",
        )
    )


def faces_of(db: Path, name: str) -> list[tuple[int, str]]:
    return rows(
        db,
        "SELECT f.id, f.match_kind FROM album_faces f JOIN identities i ON i.id = f.identity_id "
        "WHERE i.name = ? ORDER BY f.id",
        name,
    )


def two_face_cluster(album: Album) -> tuple[int, tuple[int, ...]]:
    c = next(c for c in album.view().clusters if len(c.face_ids) >= 2)
    return c.id, c.face_ids


def test_rename_and_undo(album_copy: tuple[Album, Any]) -> None:
    album, built = album_copy
    faces = faces_of(built.db, OBAMA)
    r = album.rename(OBAMA, "Barack H. Obama")
    assert set(people(built.db)) == {"Barack H. Obama", BIDEN}
    assert faces_of(built.db, "Barack H. Obama") == faces  # the album follows the person
    assert rows(built.db, "SELECT kind, summary FROM album_corrections WHERE id = ?", r.id) == [
        ("rename", f"{OBAMA} renamed Barack H. Obama")
    ]
    album.undo()
    assert set(people(built.db)) == {OBAMA, BIDEN}
    assert faces_of(built.db, OBAMA) == faces
    with pytest.raises(Exception, match="already enrolled"):
        album.rename(OBAMA, BIDEN)


def test_merge_then_undo_restores_both_people(album_copy: tuple[Album, Any]) -> None:
    album, built = album_copy
    album.confirm([faces_of(built.db, BIDEN)[0][0]])  # a confirmed face must come back confirmed
    before = people(built.db)
    obama, biden = faces_of(built.db, OBAMA), faces_of(built.db, BIDEN)
    assert biden and ("confirmed" in dict(biden).values())
    album.merge(BIDEN, OBAMA)
    assert people(built.db) == {OBAMA: before[OBAMA] + before[BIDEN]}
    # Biden's faces are Obama's now, except where both were in one photo (one person, once).
    merged = set(dict(faces_of(built.db, OBAMA)))
    assert merged & set(dict(biden)) and merged & set(dict(obama))
    assert rows(built.db, "SELECT count(*) FROM identities WHERE name = ?", BIDEN) == [(0,)]
    r = album.undo()
    assert r.kind == "undo"
    assert people(built.db) == before
    assert faces_of(built.db, BIDEN) == biden and faces_of(built.db, OBAMA) == obama
    log = album.corrections()
    assert [c.kind for c in log[:3]] == ["undo", "merge", "confirm"] and log[1].undone
    album.undo()  # the confirmation
    with pytest.raises(AlbumError, match="nothing to undo"):
        album.undo()


def test_move_a_face_is_confirmed_and_undone(album_copy: tuple[Album, Any]) -> None:
    album, built = album_copy
    _, members = two_face_cluster(album)
    face = members[0]
    album.move([face], BIDEN)
    assert (face, "confirmed") in faces_of(built.db, BIDEN)
    album.refresh()  # a refresh keeps what a person said
    assert (face, "confirmed") in faces_of(built.db, BIDEN)
    album.undo()
    assert face not in dict(faces_of(built.db, BIDEN))
    assert rows(built.db, "SELECT cluster_id IS NOT NULL FROM album_faces WHERE id = ?", face) == [
        (1,)
    ]


def test_not_survives_a_rescan_and_undo_takes_it_back(album_copy: tuple[Album, Any]) -> None:
    album, built = album_copy
    face = faces_of(built.db, OBAMA)[0][0]
    album.not_(face, OBAMA)
    album.scan(built.photos, workers=0, threads=1)
    assert face not in dict(faces_of(built.db, OBAMA))
    assert rows(built.db, "SELECT count(*) FROM album_negatives WHERE face_id = ?", face) == [(1,)]
    album.undo()
    assert rows(built.db, "SELECT count(*) FROM album_negatives WHERE face_id = ?", face) == [(0,)]
    assert face in dict(faces_of(built.db, OBAMA))


def test_split_keeps_faces_apart_until_undone(album_copy: tuple[Album, Any]) -> None:
    album, built = album_copy
    _cid, members = two_face_cluster(album)
    album.split([members[0]])
    cl = dict(rows(built.db, "SELECT id, cluster_id FROM album_faces"))
    assert cl[members[0]] is not None and cl[members[0]] != cl[members[1]]
    assert rows(built.db, "SELECT count(*) FROM album_cannot_links") == [(len(members) - 1,)]
    album.refresh()
    cl = dict(rows(built.db, "SELECT id, cluster_id FROM album_faces"))
    assert cl[members[0]] != cl[members[1]]
    album.undo()
    cl = dict(rows(built.db, "SELECT id, cluster_id FROM album_faces"))
    assert cl[members[0]] == cl[members[1]] is not None
    assert rows(built.db, "SELECT count(*) FROM album_cannot_links") == [(0,)]


def test_ignore_a_cluster_and_name_one_then_undo_both(album_copy: tuple[Album, Any]) -> None:
    album, built = album_copy
    cid, members = two_face_cluster(album)
    album.ignore_cluster(cid)
    reasons = dict(rows(built.db, "SELECT id, quality_reasons FROM album_faces"))
    assert {reasons[f] for f in members} == {corrections.IGNORED}
    assert all(cid != c.id for c in album.view().clusters)
    album.undo()
    reasons = dict(rows(built.db, "SELECT id, quality_reasons FROM album_faces"))
    assert {reasons[f] for f in members} == {None}

    cid, members = two_face_cluster(album)
    album.name(cid, "Lin")
    assert people(built.db)["Lin"] >= 1
    assert {k for _, k in faces_of(built.db, "Lin")} == {"confirmed"}
    assert rows(built.db, "SELECT kind FROM album_corrections ORDER BY id DESC LIMIT 1") == [
        ("name",)
    ]
    album.undo()
    assert "Lin" not in people(built.db)
    assert not faces_of(built.db, "Lin")


def test_undo_and_the_verbs_on_the_command_line(album_copy: tuple[Album, Any]) -> None:
    _album, built = album_copy
    db = str(built.db)
    run = CliRunner().invoke
    r = run(app, ["album", "rename", OBAMA, "Obama", "--db", db], catch_exceptions=False)
    assert r.exit_code == 0 and "renamed" in r.stdout, r.output
    assert "Obama" in people(built.db)
    r = run(app, ["album", "log", "--db", db], catch_exceptions=False)
    assert "renamed" in r.stdout
    r = run(app, ["album", "undo", "--db", db], catch_exceptions=False)
    assert r.exit_code == 0 and "undone" in r.stdout, r.output
    assert OBAMA in people(built.db) and "Obama" not in people(built.db)
    r = run(app, ["album", "undo", "--db", db], catch_exceptions=False)
    assert r.exit_code == 2 and "nothing to undo" in r.stderr


def test_the_three_interfaces_mirror_each_other() -> None:
    """Every correction is an `Album` method, a `facerec album` command and a web form action."""
    from facerec.album.cli import album_app
    from facerec.server.web import routes

    commands = {c.name or c.callback.__name__ for c in album_app.registered_commands}  # type: ignore[union-attr]
    for method, command, action in corrections.VERBS:
        assert callable(getattr(Album, method)), method
        assert command in commands, command
        assert action in routes.ACTIONS, action
    assert set(routes.ACTIONS) == {a for _, _, a in corrections.VERBS}


def test_each_correction_and_its_undo_on_each_database(
    db_url: str, shared: Path, pipeline: Any, tmp_path: Path
) -> None:
    """The whole log on SQLite and PostgreSQL: corrections, then undo after undo to the start."""
    from facerec.api import FaceRec

    from ..db_rows import rows as db_rows
    from .conftest import EX

    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("two_people.jpg", "obama2.jpg", "obama-480p.jpg", "lin-manuel-miranda.png"):
        (photos / name).write_bytes((shared / EX / name).read_bytes())
    lin_copy = photos / "lin_flipped.jpg"
    from PIL import Image, ImageOps

    ImageOps.mirror(Image.open(photos / "lin-manuel-miranda.png").convert("RGB")).save(lin_copy)
    with FaceRec(db_url, pipeline=pipeline) as fr, Album(fr) as album:
        fr.enroll(OBAMA, [shared / EX / "obama.jpg"])
        fr.enroll(BIDEN, [shared / EX / "biden.jpg"])
        album.scan(photos, workers=0, threads=1)

        def state() -> list[tuple[Any, ...]]:
            return db_rows(
                db_url,
                "SELECT f.id, i.name, f.match_kind, f.quality_reasons FROM album_faces f "
                "LEFT JOIN identities i ON i.id = f.identity_id ORDER BY f.id",
            )

        start, names = state(), {n for (n,) in db_rows(db_url, "SELECT name FROM identities")}
        obama = [f for f, n, _, _ in start if n == OBAMA]
        album.rename(OBAMA, "Obama")
        album.merge(BIDEN, "Obama")
        album.not_(obama[0], "Obama")
        album.move([obama[1]], "Obama")
        _cid, members = two_face_cluster(album)
        album.split([members[0]])
        assert db_rows(db_url, "SELECT count(*) FROM album_cannot_links") == [(1,)]
        album.ignore([members[1]])
        album.name(next(c.id for c in album.view().clusters), "Lin")
        assert {n for (n,) in db_rows(db_url, "SELECT name FROM identities")} == {"Obama", "Lin"}
        kinds = [k for (k,) in db_rows(db_url, "SELECT kind FROM album_corrections ORDER BY id")]
        assert kinds == ["rename", "merge", "not", "move", "split", "ignore", "name"]
        for _ in kinds:
            album.undo()
        assert {n for (n,) in db_rows(db_url, "SELECT name FROM identities")} == names
        assert state() == start
        assert db_rows(db_url, "SELECT count(*) FROM album_cannot_links") == [(0,)]
        assert db_rows(db_url, "SELECT count(*) FROM album_negatives") == [(0,)]


def test_forgetting_a_person_takes_their_corrections(
    album_copy: tuple[Album, Any], pipeline: Any
) -> None:
    """`facerec remove` forgets everywhere: no row of the log may still name them."""
    from facerec.api import FaceRec

    album, built = album_copy
    album.not_(faces_of(built.db, BIDEN)[0][0], BIDEN)
    album.rename(OBAMA, "Barry")
    before = rows(built.db, "SELECT summary, data, people FROM album_corrections")
    assert any(BIDEN in " ".join(r) for r in before) and len(before) == 2
    with FaceRec(built.db, pipeline=pipeline) as fr:
        fr.remove(BIDEN)
    left = rows(built.db, "SELECT summary, data, people FROM album_corrections")
    assert len(left) == 1 and not any(BIDEN in " ".join(r) for r in left)
    album.undo()  # the rename, which never named him, is still there to undo
    assert OBAMA in people(built.db)
