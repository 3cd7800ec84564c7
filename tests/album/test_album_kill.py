"""A scan SIGKILLed midway (a real `facerec album scan` subprocess) and rerun: no duplicate rows."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from facerec.album.api import Album
from facerec.api import FaceRec
from facerec.faces.pipeline import Pipeline

from ..conftest import shared_file

N_PHOTOS = 40


def committed(db: Path) -> int:
    """Photos committed so far (0 while the database or its tables do not exist yet)."""
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(db, timeout=1)
        try:
            return int(con.execute("SELECT COUNT(*) FROM album_photos").fetchone()[0])
        finally:
            con.close()
    except sqlite3.OperationalError:
        return 0


def one(db: Path, sql: str) -> object:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


@pytest.mark.slow  # ~33 s here: CLI scans in subprocesses, one of them killed mid-way
def test_killed_scan_reruns_without_duplicates(
    shared: Path, sface_pipeline: Pipeline, cli_env: dict[str, str], tmp_path: Path
) -> None:
    lfw = shared_file(shared, "lfw/images")
    photos = tmp_path / "photos"
    photos.mkdir()
    people = sorted(p for p in lfw.iterdir() if p.is_dir())[:N_PHOTOS]
    for person in people:
        first = sorted(person.glob("*.jpg"))[0]
        (photos / first.name).write_bytes(first.read_bytes())
    db = tmp_path / "gallery.db"
    log = (tmp_path / "scan.log").open("w")
    scan = [sys.executable, "-m", "facerec", "album", "scan", str(photos), "--db", str(db)]
    proc = subprocess.Popen(
        [*scan, "--batch-size", "2", "--workers", "1"], env=cli_env, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 300
        while committed(db) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, "the scan finished (or failed) before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    assert proc.returncode == -signal.SIGKILL
    before = committed(db)
    assert 0 < before < N_PHOTOS
    # Whole photos or none: every committed photo has its faces (each LFW photo shows one).
    assert one(db, "SELECT COUNT(*) FROM album_photos p WHERE NOT EXISTS "
               "(SELECT 1 FROM album_faces f WHERE f.photo_id = p.id)") == 0  # fmt: skip

    # The CLI scanned with the default model; the rerun must use the same one, or every photo
    # is (rightly) scanned again for the new model.
    with FaceRec(db, pipeline=sface_pipeline) as fr, Album(fr) as album:
        rerun = album.scan(photos, workers=1)
    assert rerun.unchanged == before
    assert rerun.processed == N_PHOTOS - before
    assert one(db, "SELECT COUNT(*) FROM album_photos") == N_PHOTOS
    assert one(db, "SELECT COUNT(DISTINCT content_sha256) FROM album_photos") == N_PHOTOS
    assert one(db, "SELECT COUNT(DISTINCT path) FROM album_photos") == N_PHOTOS
    faces = one(db, "SELECT COUNT(*) FROM album_faces")
    assert faces == one(
        db, "SELECT COUNT(*) FROM (SELECT DISTINCT photo_id, face_index FROM album_faces)"
    )
    assert faces >= N_PHOTOS
    assert one(db, "PRAGMA integrity_check") == "ok"
