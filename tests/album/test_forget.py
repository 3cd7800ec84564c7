"""Forgetting a person (`facerec remove`): nothing of their face is left in any table or file.

The scene of the issue: Obama and Biden enrolled, the shared album scanned
(Biden alone, and beside Obama in two photos), and three door-camera
attempts with saved images: Biden claiming to be Obama (rejected; the event
is Obama's, the image is Biden's face), Biden claiming to be Biden, and Obama
claiming to be Obama. After `facerec remove "Joe Biden"` every BLOB of every
table is decoded and compared with Biden's old prototype (embeddings by
cosine, images by detecting and re-embedding their faces), every file under
the gallery's folder and the album report's folder is searched for the bytes
of his old embeddings, thumbnails and images, and Obama's rows are checked to
be as they were.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from facerec.album import report
from facerec.album.api import Album
from facerec.album.store import AlbumStore, NewFace, NewPhoto
from facerec.api import FaceRec
from facerec.camera.audit import AuditLog
from facerec.camera.door import DoorCamera, run
from facerec.camera.events import DecisionEvent
from facerec.camera.stream import FrameSource, parse_source
from facerec.camera.window import WindowRule
from facerec.faces.images import LoadedImage
from facerec.faces.pipeline import Pipeline

from ..camera.test_camera_cli import write_video
from ..conftest import shared_file
from ..db_rows import is_postgres, rows
from .conftest import EX, Built, copy_db

OBAMA, BIDEN = "Barack Obama", "Joe Biden"
JPEG, PNG = b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"


def door(fr: FaceRec, video: Path, claim: str) -> None:
    """One claim at the door on `video`, recorded with its image as `facerec camera` does."""
    camera = DoorCamera(fr, video.name, claim=claim, rule=WindowRule(k=2, n=3), save_images=True)
    audit = AuditLog(fr.database)
    with FrameSource(parse_source(str(video)), fps=5) as frames:

        def deliver(event: DecisionEvent, image: bytes | None) -> None:
            audit.record(event, image)

        run(camera, frames, deliver)


def embed_image(pipeline: Pipeline, data: bytes) -> np.ndarray:
    """Embeddings of every face found in encoded image bytes (thumbnail, crop, audit image)."""
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert pixels is not None
    image = LoadedImage("blob", np.ascontiguousarray(pixels[:, :, ::-1]), "")
    faces = pipeline.faces(image)
    return np.stack([f.embedding for f in faces]) if faces else np.zeros((0, 128), np.float32)


def cos(rows: np.ndarray, proto: np.ndarray) -> np.ndarray:
    rows = np.atleast_2d(rows).astype(np.float64)
    return rows @ proto / np.maximum(np.linalg.norm(rows, axis=1), 1e-12) / np.linalg.norm(proto)


def every_blob(db: Path) -> Iterator[tuple[str, str, bytes]]:
    """(table, column, value) for every BLOB value of every table, found by introspection."""
    con = sqlite3.connect(db)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            columns = [r[1] for r in con.execute(f'PRAGMA table_info("{table}")')]
            for row in con.execute(f'SELECT * FROM "{table}"'):
                for column, value in zip(columns, row, strict=True):
                    if isinstance(value, bytes):
                        yield table, column, value
    finally:
        con.close()


def windows(blob: bytes, n: int = 6, size: int = 24) -> list[bytes]:
    """A few slices spread over `blob`'s last three quarters (a blob split across database pages
    still shows them); the first quarter is skipped, for every JPEG (PNG) of one size and quality
    starts with the same header and tables."""
    tail = blob[len(blob) // 4 :]
    if len(tail) <= size:
        return [tail]
    step = (len(tail) - size) // (n - 1)
    return [tail[i * step : i * step + size] for i in range(n)]


@pytest.fixture()
def scene(
    album_built: Built, pipeline: Pipeline, shared: Path, tmp_path: Path
) -> tuple[Path, dict[str, Any]]:
    """The gallery of the module docstring in its own folder, and what was Biden's in it."""
    db = copy_db(album_built.db, tmp_path / "gallery" / "gallery.db")
    ex = shared / EX
    with FaceRec(db, pipeline=pipeline) as fr:
        for n, (photo, claim) in enumerate(
            [("biden.jpg", OBAMA), ("biden.jpg", BIDEN), ("obama2.jpg", OBAMA)]
        ):
            door(fr, write_video(tmp_path / f"door{n}.mp4", [(ex / photo, 0.8)]), claim)
        threshold = fr.threshold()
        proto = fr.gallery.prototype(BIDEN).copy()
    return db, {"threshold": threshold, "prototype": proto}


def biden_rows(db: Path, proto: np.ndarray, threshold: float) -> dict[str, list[bytes]]:
    """Biden's BLOBs before the removal: what must not be found anywhere afterwards."""
    (biden,) = rows(db, "SELECT id FROM identities WHERE name = ?", BIDEN)[0]
    faces = [
        (emb, thumb)
        for emb, thumb, ident in rows(
            db, "SELECT embedding, thumbnail, identity_id FROM album_faces"
        )
        if ident == biden or cos(np.frombuffer(emb, "<f4"), proto)[0] >= threshold
    ]
    return {
        "embeddings": [e for e, _ in faces]
        + [r[0] for r in rows(db, "SELECT embedding FROM samples WHERE identity_id = ?", biden)]
        + [proto.astype("<f4").tobytes()],
        "images": [t for _, t in faces if t is not None]
        + [r[0] for r in rows(db, "SELECT crop FROM samples WHERE identity_id = ?", biden)]
        + [
            r[0]
            for r in rows(
                db,
                "SELECT image FROM audit_events WHERE image IS NOT NULL AND source LIKE 'door0%' "
                "OR identity_id = ?",
                biden,
            )
        ],
    }


@pytest.mark.slow  # the CLI in a subprocess, then every stored image re-embedded
def test_remove_forgets_a_face_everywhere(
    scene: tuple[Path, dict[str, Any]], pipeline: Pipeline, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    db, facts = scene
    proto, threshold = facts["prototype"], facts["threshold"]
    theirs = biden_rows(db, proto, threshold)
    assert len(theirs["embeddings"]) >= 5 and len(theirs["images"]) >= 5
    obama_before = {
        "samples": rows(db, "SELECT s.* FROM samples s JOIN identities i ON i.id = s.identity_id "
                       "WHERE i.name = ?", OBAMA),
        "faces": rows(db, "SELECT f.id, f.embedding, f.thumbnail FROM album_faces f "
                     "JOIN identities i ON i.id = f.identity_id WHERE i.name = ?", OBAMA),
    }  # fmt: skip
    events = rows(db, "SELECT source, decision, claimed_name, image IS NOT NULL FROM audit_events")
    assert [e[1:] for e in events] == [
        ("rejected", OBAMA, 1), ("accepted", BIDEN, 1), ("accepted", OBAMA, 1),
    ]  # fmt: skip
    out = tmp_path / "report"
    with FaceRec(db, pipeline=pipeline) as fr, Album(fr) as album:
        report.write_html(album.view(), album.store, out, copy_photos=True)
    assert len(list((out / "faces").glob("*.jpg"))) >= 20  # Biden's thumbnails among them

    rm = subprocess.run(
        [sys.executable, "-m", "facerec", "remove", BIDEN, "--db", str(db), "--json"],
        env=cli_env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert rm.returncode == 0, rm.stderr
    got = json.loads(rm.stdout)
    assert got["name"] == BIDEN and got["samples_removed"] == 1 and got["compacted"] is True
    # biden.jpg, two_people.jpg, obama_and_biden.jpg (at least; a look-alike face would add to it).
    assert got["album_faces_removed"] >= 3 and got["album_photos_affected"] >= 3
    assert (got["audit_events_removed"], got["audit_images_removed"]) == (1, 1)
    assert got["audit_images_unchecked"] == 0

    # The report written again into the same folder: nothing of him, old files included.
    with FaceRec(db, pipeline=pipeline) as fr, Album(fr) as album:
        view = album.view()
        report.write_html(view, album.store, out, copy_photos=True)
        report.write_csv(view, out / "faces.csv")
        report.write_json(view, out / "album.json")
    assert sum(p.forgotten for p in view.photos) == got["album_faces_removed"]
    assert BIDEN not in "".join(p.read_text() for p in out.glob("*.*") if p.suffix != ".jpg")

    # Every BLOB of every table: no embedding or image of a face like his.
    dim = proto.shape[0]
    checked = 0
    for table, column, value in every_blob(db):
        if value.startswith((JPEG, PNG)):
            found = embed_image(pipeline, value)
            assert not (cos(found, proto) >= threshold).any(), (table, column)
            checked += 1
        elif len(value) == 4 * dim:
            assert cos(np.frombuffer(value, "<f4"), proto)[0] < threshold, (table, column)
            checked += 1
        assert value not in theirs["embeddings"] + theirs["images"], (table, column)
    assert checked > 30
    for (dump,) in rows(db, "SELECT group_concat(name) FROM identities"):
        assert BIDEN not in (dump or "")
    assert rows(db, "SELECT COUNT(*) FROM audit_events WHERE claimed_name = ?", BIDEN) == [(0,)]

    # Every file beside the database (WAL, index) and in the report: none of his bytes.
    files = [p for p in db.parent.rglob("*") if p.is_file()] + [
        p for p in out.rglob("*") if p.is_file()
    ]
    assert any(p.suffix == ".faiss" for p in files)
    for path in files:
        data = path.read_bytes()
        for blob in theirs["embeddings"] + theirs["images"]:
            assert not any(w in data for w in windows(blob)), path
        if path.suffix == ".jpg":
            assert not (cos(embed_image(pipeline, data), proto) >= threshold).any(), path

    # Obama is untouched: his samples, his album faces, his own door event with its image.
    assert obama_before["samples"] == rows(
        db,
        "SELECT s.* FROM samples s JOIN identities i ON i.id = s.identity_id WHERE i.name = ?",
        OBAMA,
    )
    assert obama_before["faces"] == rows(
        db,
        "SELECT f.id, f.embedding, f.thumbnail FROM album_faces f "
        "JOIN identities i ON i.id = f.identity_id WHERE i.name = ?",
        OBAMA,
    )
    assert rows(db, "SELECT decision, claimed_name, image IS NOT NULL FROM audit_events") == [
        ("rejected", OBAMA, 0),  # Biden's attempt at Obama's door: the fact stays, his face goes
        ("accepted", OBAMA, 1),
    ]


def test_a_rescan_does_not_bring_a_forgotten_face_back(
    scene: tuple[Path, dict[str, Any]], album_built: Built, pipeline: Pipeline
) -> None:
    db, _ = scene
    with FaceRec(db, pipeline=pipeline) as fr, Album(fr) as album:
        result = fr.remove(BIDEN)
        assert result.album.faces >= 3
        faces = rows(db, "SELECT COUNT(*) FROM album_faces")
        # Unchanged photos are not read again, so nothing can come back...
        again = album.scan(album_built.photos, workers=0)
        assert again.processed == 0 and rows(db, "SELECT COUNT(*) FROM album_faces") == faces
        # ...and a photo detected again (as after a model change) does not store his face.
        photo = next(p for p in album.view().photos if Path(p.path).name == "two_people.jpg")
        (box,) = [json.loads(b) for (b,) in rows(
            db, "SELECT f.box FROM album_forgotten_faces f JOIN album_photos p "
            "ON p.content_sha256 = f.content_sha256 WHERE p.id = ?", photo.id)]  # fmt: skip
        shifted = (box[0] + 3, box[1] - 2, box[2] + 6, box[3] + 4)
        kept = photo.faces[0]
        album.store.write([_rescanned(photo.path, photo.content_sha256, [shifted, kept.box])])
        after = next(p for p in album.view().photos if p.id == photo.id)
        assert [f.box for f in after.faces] == [kept.box] and after.forgotten == 1


def _rescanned(path: str, sha: str, boxes: list[tuple[float, ...]]) -> NewPhoto:
    faces = tuple(
        NewFace(
            face_index=i,
            box=(b[0], b[1], b[2], b[3]),
            landmarks=((0.0, 0.0),) * 5,
            det_score=0.99,
            quality={},
            quality_reasons=(),
            embedding=np.ones(128, np.float32),
            thumbnail=None,
        )
        for i, b in enumerate(boxes)
    )
    return NewPhoto(path, sha, 1, 1, 10, 10, None, None, faces)


def test_keep_album_deletes_only_the_enrolment(
    scene: tuple[Path, dict[str, Any]], pipeline: Pipeline
) -> None:
    db, _ = scene
    (biden,) = rows(db, "SELECT id FROM identities WHERE name = ?", BIDEN)[0]
    matched = rows(
        db, "SELECT id, embedding, thumbnail FROM album_faces WHERE identity_id = ?", biden
    )
    assert len(matched) >= 3
    total = rows(db, "SELECT COUNT(*) FROM album_faces")
    with FaceRec(db, pipeline=pipeline) as fr:
        result = fr.remove(BIDEN, keep_album=True)
    assert result.album_kept and result.album.faces == 0 and result.samples == 1
    assert result.audit.events == 1 and result.audit.images == 1
    assert rows(db, "SELECT COUNT(*) FROM album_faces") == total
    ids = ",".join(str(m[0]) for m in matched)
    kept = rows(
        db, f"SELECT id, embedding, thumbnail, identity_id FROM album_faces WHERE id IN ({ids})"
    )
    assert [r[:3] for r in kept] == matched and all(r[3] is None for r in kept)
    assert rows(db, "SELECT COUNT(*) FROM identities WHERE name = ?", BIDEN) == [(0,)]
    assert rows(db, "SELECT COUNT(*) FROM album_forgotten_faces") == [(0,)]


def test_a_crash_after_the_commit_leaves_no_index_with_the_person(
    scene: tuple[Path, dict[str, Any]], pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed between the committed deletion and the index rebuild: the old index file is gone."""
    from facerec.gallery.faiss_search import FaissSearch

    db, facts = scene
    index = Path(str(db) + ".faiss")
    with FaceRec(db, pipeline=pipeline) as fr:
        fr.gallery.search(facts["prototype"][None, :], 1)  # the index file exists
        assert index.is_file()
        monkeypatch.setattr(FaissSearch, "committed", lambda *a, **k: None)  # dies after commit
        fr.gallery.forget(BIDEN, facts["threshold"], lambda s, t: None)
        assert not index.exists()
    monkeypatch.undo()
    with FaceRec(db, pipeline=pipeline) as fr:
        hits = fr.gallery.search(facts["prototype"][None, :], 5)[0]
        assert [h.name for h in hits] == [OBAMA]


def _claim(claim: str, decision: str) -> DecisionEvent:
    return DecisionEvent(
        time=datetime.now(UTC), source="door", mode="claim", claim=claim, decision=decision,
        name=claim, best_score=0.5, threshold=0.9, scores=(0.5,), votes=1, frames=1,
        stream_time_s=0.2, latency_ms=50.0, frame_latencies=(),
    )  # fmt: skip


def test_remove_forgets_everywhere_in_one_transaction_on_each_database(
    db_url: str, pipeline: Pipeline, shared: Path
) -> None:
    """`FaceRec.remove` on a SQLite file and on PostgreSQL: Biden's album faces, his door event
    and his face in Obama's door event go with his enrolment; Obama's rows stay.

    The album and the door log are written through their stores (no scan, no camera), so the
    model only runs for the enrolments and for re-embedding the one saved door image."""
    ex = shared / EX
    biden_jpeg = shared_file(shared, f"{EX}/biden.jpg").read_bytes()
    with FaceRec(db_url, pipeline=pipeline) as fr:
        fr.enroll(OBAMA, [ex / "obama.jpg"])
        fr.enroll(BIDEN, [ex / "biden.jpg"])
        album = AlbumStore(fr.database)
        faces = tuple(
            NewFace(i, (10.0 + 100 * i, 10.0, 90.0 + 100 * i, 90.0), ((0.0, 0.0),) * 5, 0.99, {},
                    (), fr.gallery.prototype(name), None)
            for i, name in enumerate((OBAMA, BIDEN))
        )  # fmt: skip
        model = fr.pipeline.embedder.identity
        album.write([NewPhoto("/album/both.jpg", "sha-both", 1, 1, 300, 100, None, model, faces)])
        obama_face, _ = (int(i) for i in album.usable_faces(model).face_ids)
        audit = AuditLog(fr.database)
        audit.record(_claim(OBAMA, "rejected"), biden_jpeg)  # Biden at Obama's door
        audit.record(_claim(BIDEN, "accepted"), None)
        audit.record(_claim(OBAMA, "accepted"), None)

        result = fr.remove(BIDEN)

    assert (result.samples, result.album.faces, result.album.photos) == (1, 1, 1)
    assert (result.audit.events, result.audit.images, result.audit.unchecked) == (1, 1, 0)
    assert result.compacted is not is_postgres(db_url)  # nothing to compact in PostgreSQL
    assert rows(db_url, "SELECT name FROM identities") == [(OBAMA,)]
    assert rows(db_url, "SELECT id FROM album_faces") == [(obama_face,)]
    assert rows(db_url, "SELECT count(*) FROM album_forgotten_faces") == [(1,)]
    events = rows(db_url, "SELECT claimed_name, decision, image FROM audit_events ORDER BY id")
    assert events == [(OBAMA, "rejected", None), (OBAMA, "accepted", None)]
