"""One scanned album shared by the album tests: built once, copied by tests that change it.

The album is `face_recognition/examples` (copied, so the tests can add and
break files) plus a few photos made from it: a flipped, cropped, re-encoded
copy of Lin-Manuel Miranda (an unknown person seen twice), photos showing
the same face twice side by side (Obama, and the stranger Alex Lacamoire) (one person can only be in a photo once),
a photo in a subfolder (the scan is recursive), and two broken files.
Obama and Biden are enrolled from one photo each, as in the issue.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from ..conftest import shared_file

EX = "face_recognition/examples"
OBAMA, BIDEN = "Barack Obama", "Joe Biden"


@dataclass(frozen=True)
class Built:
    """A scanned album: its photo folder, gallery file and the first scan's summary."""

    photos: Path
    db: Path
    summary: object


def make_photos(shared: Path, folder: Path) -> Path:
    """The album folder described in the module docstring."""
    src = shared_file(shared, EX)
    folder.mkdir(parents=True)
    for p in sorted(src.iterdir()):
        if p.is_file():
            shutil.copy(p, folder / p.name)
    sub = folder / "events" / "2009"
    sub.mkdir(parents=True)
    both = src / "knn_examples" / "test" / "obama_and_biden.jpg"
    if both.exists():
        shutil.copy(both, sub / both.name)

    lin = ImageOps.exif_transpose(Image.open(src / "lin-manuel-miranda.png")).convert("RGB")
    w, h = lin.size
    copy = ImageOps.mirror(lin).crop((w // 20, h // 20, w - w // 20, h - h // 25))
    copy = copy.resize((int(copy.width * 0.8), int(copy.height * 0.8)), Image.Resampling.LANCZOS)
    copy.save(folder / "lin_copy.jpg", quality=80)
    alex = ImageOps.exif_transpose(Image.open(src / "alex-lacamoire.png")).convert("RGB")
    _side_by_side(alex).save(folder / "alex_twice.jpg", quality=90)
    obama = Image.open(src / "obama-480p.jpg").convert("RGB")
    _side_by_side(obama).save(folder / "obama_twice.jpg", quality=90)

    (folder / "notes.jpg").write_text("this is not an image\n")
    data = (src / "obama.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 3])
    return folder


def _side_by_side(img: Image.Image) -> Image.Image:
    out = Image.new("RGB", (img.width * 2, img.height))
    out.paste(img, (0, 0))
    out.paste(ImageOps.mirror(img), (img.width, 0))
    return out


def copy_db(db: Path, to: Path) -> Path:
    """A private copy of a closed gallery (the FAISS cache is rebuilt on first use)."""
    to.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(db)
    try:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()
    shutil.copy(db, to)
    return to


@pytest.fixture(scope="session")
def album_built(shared: Path, pipeline, tmp_path_factory: pytest.TempPathFactory) -> Built:  # type: ignore[no-untyped-def]
    """Enrol Obama and Biden from one photo each, then scan the album once."""
    from facerec.album.api import Album
    from facerec.api import FaceRec

    root = tmp_path_factory.mktemp("album")
    photos = make_photos(shared, root / "photos")
    db = root / "gallery.db"
    with FaceRec(db, pipeline=pipeline) as fr:
        fr.enroll(OBAMA, [shared / EX / "obama.jpg"])
        fr.enroll(BIDEN, [shared / EX / "biden.jpg"])
        with Album(fr) as album:
            summary = album.scan(photos, workers=1)
    return Built(photos, db, summary)


@pytest.fixture()
def album_copy(album_built: Built, pipeline, tmp_path: Path) -> Iterator[tuple[object, Built]]:  # type: ignore[no-untyped-def]
    """A writable copy of the built album, opened: (Album, Built pointing at the copy)."""
    from facerec.album.api import Album
    from facerec.api import FaceRec

    db = copy_db(album_built.db, tmp_path / "gallery.db")
    with FaceRec(db, pipeline=pipeline) as fr, Album(fr) as album:
        yield album, Built(album_built.photos, db, album_built.summary)
