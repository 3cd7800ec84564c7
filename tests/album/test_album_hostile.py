"""An album folder with things in it that are not photos, a name that is not UTF-8, a damaged JPEG.

Before: the FIFO hung the scan, the /dev/zero link read until MemoryError, and
the Latin-1 name aborted the whole scan ("surrogates not allowed", 0 photos
stored, the file not named). Now each is recorded with its reason and the
scan goes on.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from pathlib import Path

import pytest

from facerec.album.scan import find_photos

from ..conftest import shared_file
from ..test_jpeg_damage import zeroed

EX = "face_recognition/examples"
LATIN1 = b"caf\xe9 obama.jpg"


def make_folder(shared: Path, folder: Path) -> Path:
    src = shared_file(shared, EX)
    shared_file(shared, f"{EX}/obama.jpg")
    folder.mkdir()
    shutil.copy(src / "obama.jpg", folder / os.fsdecode(LATIN1))
    shutil.copy(src / "obama2.jpg", folder / "plain.jpg")
    (folder / "wounded.jpg").write_bytes(zeroed((src / "biden.jpg").read_bytes(), at=0.8))
    os.mkfifo(folder / "fifo.jpg")
    (folder / "zero.jpg").symlink_to("/dev/zero")
    (folder / "dangling.jpg").symlink_to(folder / "gone.jpg")
    (folder / "x.jpg").mkdir()  # a folder with a photo's name: walked into, not read
    return folder


def scan_in_time(album, folder: Path, seconds: float = 300.0):  # type: ignore[no-untyped-def]
    """album.scan(folder), failing (not hanging) if it blocks on the FIFO."""
    out: list[object] = []
    t = threading.Thread(
        target=lambda: out.append(album.scan(folder, workers=2, threads=1)), daemon=True
    )
    t.start()
    t.join(seconds)
    if t.is_alive():
        with contextlib.suppress(OSError):  # let the stuck reader go
            os.close(os.open(folder / "fifo.jpg", os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"scan still running after {seconds} s")
    assert out, "scan raised"
    return out[0]


def test_scan_records_special_files_and_keeps_every_name(
    shared: Path, pipeline, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from facerec.album.api import Album
    from facerec.api import FaceRec

    folder = make_folder(shared, tmp_path / "photos")
    problems = {p.path.name: p.problem for p in find_photos(folder)}
    # Classified from stat alone, before anything is opened or read.
    assert problems == {
        "dangling.jpg": "dangling symbolic link",
        "fifo.jpg": "is a named pipe (FIFO), not a regular file",
        "plain.jpg": None,
        "wounded.jpg": None,
        "zero.jpg": "is a character device, not a regular file",
        os.fsdecode(LATIN1): None,
    }

    with FaceRec(tmp_path / "g.db", pipeline=pipeline) as fr, Album(fr) as album:
        summary = scan_in_time(album, folder)
        assert (summary.found, summary.skipped, summary.errors, summary.processed) == (6, 3, 0, 3)

        photos = {p.path.rsplit("/", 1)[-1]: p for p in album.view().photos}
        assert set(photos) == {
            "caf\\xe9 obama.jpg", "plain.jpg", "wounded.jpg",
            "fifo.jpg", "zero.jpg", "dangling.jpg",
        }  # fmt: skip
        for name, words in (("fifo.jpg", "FIFO"), ("zero.jpg", "character device"),
                            ("dangling.jpg", "dangling")):  # fmt: skip
            assert photos[name].status == "skipped" and words in (photos[name].error or "")
        latin1 = photos["caf\\xe9 obama.jpg"]
        assert latin1.status == "ok" and len(latin1.faces) == 1
        assert photos["wounded.jpg"].status == "ok"
        assert "Corrupt JPEG data" in (photos["wounded.jpg"].damage or "")
        assert photos["plain.jpg"].damage is None
        # The exact bytes are kept: the rescan matches them, enrolment reopens the file.
        assert os.fsencode(folder / os.fsdecode(LATIN1)) in {
            os.fsencode(k.path) for k in album.store.known()
        }

        again = scan_in_time(album, folder)
        assert (again.unchanged, again.processed, again.skipped) == (6, 0, 0)

        cluster = next(c.id for c in album.view().clusters if latin1.faces[0].id in c.face_ids)
        named = album.name(cluster, "Barack Obama")
        assert named.added >= 1
        sources = {s.source for s in fr.gallery.samples()}
        assert str(folder / "caf\\xe9 obama.jpg") in sources


def test_copies_and_moves_of_a_non_utf8_name_keep_exact_bytes(
    shared: Path, pipeline, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """Every path of a content is kept (album_photo_paths) with its bytes, not only the first."""
    from facerec.album.api import Album
    from facerec.api import FaceRec

    src = shared_file(shared, f"{EX}/obama.jpg")
    folder = tmp_path / "photos"
    folder.mkdir()
    first = folder / os.fsdecode(LATIN1)
    copy = folder / os.fsdecode(b"copie \xe9\xff.jpg")
    shutil.copy(src, first)
    with FaceRec(tmp_path / "g.db", pipeline=pipeline) as fr, Album(fr) as album:
        assert album.scan(folder, workers=0, threads=1).processed == 1
        shutil.copy(src, copy)
        again = album.scan(folder, workers=0, threads=1)
        assert (again.unchanged, again.duplicates, again.processed) == (1, 1, 0)
        (photo,) = album.view().photos
        assert sorted(p.rsplit("/", 1)[-1] for p in photo.paths) == [
            "caf\\xe9 obama.jpg",
            "copie \\xe9\\xff.jpg",
        ]
        known = {os.fsencode(k.path): k.primary for k in album.store.known()}
        assert known == {os.fsencode(first): True, os.fsencode(copy): False}

        first.unlink()  # the album now reads the photo from the copy, by its exact bytes
        os.utime(copy, ns=(1, 1))
        album.scan(folder, workers=0, threads=1)
        (photo,) = album.view().photos
        assert photo.path.endswith("copie \\xe9\\xff.jpg") and len(photo.paths) == 1
        known = {os.fsencode(k.path): k.primary for k in album.store.known()}
        assert known == {os.fsencode(copy): True}


def test_two_names_that_print_alike_are_both_kept(shared: Path, pipeline, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """b'caf\\xe9' and the literal characters 'caf\\\\xe9' print the same; both are paths of one photo.

    Before revision 0007 the printable `path` was unique, so the second copy's row
    was refused and the scan failed on it.
    """
    from facerec.album.api import Album
    from facerec.api import FaceRec

    src = shared_file(shared, f"{EX}/obama.jpg")
    folder = tmp_path / "photos"
    folder.mkdir()
    raw = folder / os.fsdecode(LATIN1)
    literal = folder / "caf\\xe9 obama.jpg"  # a backslash, an x, an e, a 9
    shutil.copy(src, raw)
    shutil.copy(src, literal)
    with FaceRec(tmp_path / "g.db", pipeline=pipeline) as fr, Album(fr) as album:
        summary = album.scan(folder, workers=0, threads=1)
        assert (summary.errors, summary.processed, summary.duplicates) == (0, 1, 1)
        (photo,) = album.view().photos
        assert [p.rsplit("/", 1)[-1] for p in photo.paths] == ["caf\\xe9 obama.jpg"] * 2
        assert {os.fsencode(k.path) for k in album.store.known()} == {
            os.fsencode(raw),
            os.fsencode(literal),
        }
        assert album.scan(folder, workers=0, threads=1).unchanged == 2
