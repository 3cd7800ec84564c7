"""The HTML report's links: relative to its folder, or self-contained with --copy-photos, so it
survives being moved; and a rerun into the same folder leaves no file of the previous run."""

from __future__ import annotations

import re
import shutil
import urllib.parse
from pathlib import Path

from PIL import Image

from facerec.album import report
from facerec.album.api import Album
from facerec.api import FaceRec
from facerec.faces.pipeline import Pipeline

from .conftest import Built


def links(page: Path) -> list[str]:
    html = page.read_text(encoding="utf-8")
    return [urllib.parse.unquote(u) for u in re.findall(r'(?:href|src)="([^"#][^"]*)"', html)]


def test_photos_are_linked_relative_to_the_report(
    album_built: Built, pipeline: Pipeline, tmp_path: Path
) -> None:
    with FaceRec(album_built.db, pipeline=pipeline) as fr, Album(fr) as album:
        view = album.view()
        page = report.write_html(view, album.store, tmp_path / "out" / "report")
    found = links(page)
    assert found and not any(u.startswith(("file:", "/")) for u in found)
    photos = [u for u in found if not u.startswith("faces/")]
    assert len(photos) == len(view.photos)
    for u in found:  # every link leads to the file it names, from wherever the page is
        assert (page.parent / u).resolve().is_file(), u
    assert {(page.parent / u).resolve() for u in photos} == {
        Path(p.path).resolve() for p in view.photos
    }


def test_copy_photos_makes_a_report_that_can_be_moved(
    album_built: Built, pipeline: Pipeline, tmp_path: Path
) -> None:
    with FaceRec(album_built.db, pipeline=pipeline) as fr, Album(fr) as album:
        view = album.view()
        page = report.write_html(view, album.store, tmp_path / "report", copy_photos=True)
    moved = Path(shutil.move(str(page.parent), str(tmp_path / "elsewhere" / "shared-report")))
    page = moved / "index.html"
    found = links(page)
    readable = [p for p in view.photos if p.status == "ok"]
    assert sorted(u for u in found if u.startswith("photos/")) == sorted(
        f"photos/{p.id}.jpg" for p in readable
    )
    for u in found:
        if u.startswith(("photos/", "faces/")):
            with Image.open(page.parent / u) as im:
                assert im.format == "JPEG" and max(im.size) <= report.PREVIEW_SIDE
        else:  # only the unreadable photos are linked where they are, relative to the report
            assert not u.startswith(("file:", "/")), u


def test_a_rerun_into_the_same_folder_removes_what_it_did_not_write(
    album_built: Built, pipeline: Pipeline, tmp_path: Path
) -> None:
    out = tmp_path / "report"
    (out / "faces").mkdir(parents=True)
    (out / "photos").mkdir()
    stale = [out / "faces" / "999999.jpg", out / "photos" / "999999.jpg"]
    for f in stale:
        f.write_bytes(b"old face")
    (out / "faces" / "notes.txt").write_text("mine")
    with FaceRec(album_built.db, pipeline=pipeline) as fr, Album(fr) as album:
        report.write_html(album.view(), album.store, out)
    assert not any(f.exists() for f in stale)
    assert (out / "faces" / "notes.txt").read_text() == "mine"  # not a report file: kept
    assert len(list((out / "faces").glob("*.jpg"))) > 10


def test_links_to_names_that_are_not_utf8_or_hold_a_newline_open_those_files(
    shared: Path, pipeline: Pipeline, tmp_path: Path
) -> None:
    """The links used to be the escaped display text ("caf\\xe9"), which names no file."""
    import os

    from ..conftest import shared_file

    src = shared_file(shared, "face_recognition/examples")
    photos = tmp_path / "photos"
    photos.mkdir()
    names = [b"caf\xe9 obama.jpg", b"new\nline biden.jpg", b"copie \xff\xfe obama.jpg"]
    shutil.copy(src / "obama.jpg", photos / os.fsdecode(names[0]))
    shutil.copy(src / "biden.jpg", photos / os.fsdecode(names[1]))
    shutil.copy(src / "obama.jpg", photos / os.fsdecode(names[2]))  # a copy: "also at"
    with FaceRec(tmp_path / "g.db", pipeline=pipeline) as fr, Album(fr) as album:
        album.scan(photos, workers=0, threads=1)
        page = report.write_html(album.view(), album.store, tmp_path / "report")
    html = page.read_text(encoding="utf-8")
    hrefs = re.findall(r'href="([^"#][^"]*)"', html)
    targets = {
        os.path.normpath(os.path.join(os.fsencode(page.parent), urllib.parse.unquote_to_bytes(u)))
        for u in hrefs
    }
    wanted = {os.fsencode(photos) + b"/" + n for n in names}
    assert targets == wanted, (hrefs, targets)
    assert all(os.path.isfile(t) for t in targets)
