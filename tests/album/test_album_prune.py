"""Photos deleted from disk leave the album on the next scan, faces and thumbnails with them.

Before: after `rm` of photos and a rescan their `album_faces` rows (embedding
and thumbnail) stayed, and the HTML report still listed them. Checked through
the real CLI (`facerec album scan`, `facerec album report`), and against the
two things a prune must not do: forget a photo that was only moved, or one
whose copy is still there.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from ..conftest import shared_file

EX = "face_recognition/examples"


def facerec(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(
        [sys.executable, "-m", "facerec", *args], env=env, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    return r


def faces_by_file(db: Path) -> dict[str, tuple[int, int]]:
    """{file name of the photo's path: (faces, faces with a thumbnail)}, for every photo."""
    con = sqlite3.connect(db)
    try:
        rows = con.execute(
            "SELECT p.path, count(f.id), count(f.thumbnail) FROM album_photos p "
            "LEFT JOIN album_faces f ON f.photo_id = p.id GROUP BY p.id"
        ).fetchall()
        orphans = con.execute(
            "SELECT count(*) FROM album_faces WHERE photo_id NOT IN (SELECT id FROM album_photos)"
        ).fetchone()[0]
    finally:
        con.close()
    assert orphans == 0
    return {Path(p).name: (n, t) for p, n, t in rows}


def test_a_rescan_prunes_faces_of_deleted_photos(
    shared: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    src = shared_file(shared, EX)
    photos, db = tmp_path / "photos", tmp_path / "g.db"
    photos.mkdir()
    for name in ("obama.jpg", "biden.jpg", "obama2.jpg", "lin-manuel-miranda.png"):
        shutil.copy(shared_file(shared, f"{EX}/{name}"), photos / name)
    shutil.copy(src / "biden.jpg", photos / "biden copy.jpg")  # the same content twice
    scan = ["album", "scan", str(photos), "--db", str(db), "--json", "--workers", "1"]
    first = json.loads(facerec(*scan, env=cli_env).stdout)
    assert first["pruned"] == 0
    before = faces_by_file(db)
    assert before["obama.jpg"][0] == 1 and before["obama.jpg"][1] == 1, before
    assert before["lin-manuel-miranda.png"][0] == 1, before

    (photos / "obama.jpg").unlink()  # gone: its face must go
    (photos / "biden.jpg").unlink()  # gone, but a copy is left: its face stays
    (photos / "moved").mkdir()
    os.rename(photos / "obama2.jpg", photos / "moved" / "obama2.jpg")  # moved: stays
    os.rename(photos / "lin-manuel-miranda.png", tmp_path / "elsewhere.png")  # out of the folder

    again = json.loads(facerec(*scan, env=cli_env).stdout)
    assert again["pruned"] == 2, again  # obama.jpg and the Miranda photo moved out of the folder
    after = faces_by_file(db)
    assert set(after) == {"biden copy.jpg", "obama2.jpg"}, after
    assert after["biden copy.jpg"] == before["biden copy.jpg"] == (1, 1)
    assert after["obama2.jpg"] == before["obama2.jpg"]

    out = tmp_path / "report"
    facerec("album", "report", "--html", str(out), "--db", str(db), env=cli_env)
    html = "\n".join(p.read_text() for p in out.rglob("*.html"))
    assert "obama2.jpg" in html and "biden%20copy.jpg" in html
    assert "obama.jpg" not in html and "lin-manuel-miranda" not in html
    assert "/biden.jpg" not in html

    # A third scan with nothing changed prunes nothing more.
    assert json.loads(facerec(*scan, env=cli_env).stdout)["pruned"] == 0
