"""Face regions as XMP sidecars, checked both ways with ExifTool (Debian libimage-exiftool-perl).

What we write, ExifTool reads back as MWG-RS RegionInfo with the names and
boxes of the database; what ExifTool writes, `album import --xmp` turns into
named faces in the database. Photos are never modified.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from facerec.album.api import Album
from facerec.album.xmp import SidecarError, read_regions
from facerec.api import FaceRec
from facerec.cli import app
from facerec.faces.pipeline import Pipeline

from ..conftest import shared_file
from .conftest import BIDEN, EX, OBAMA

pytestmark = pytest.mark.slow
LIN = "Lin-Manuel Miranda"


def exiftool() -> str:
    path = shutil.which("exiftool")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("exiftool is needed (.ci/run installs libimage-exiftool-perl)")
        pytest.skip("exiftool is not installed (apt-get install -y libimage-exiftool-perl)")
    return path


def rows(db: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def scanned(shared: Path, pipeline: Pipeline, root: Path, *, enrol: bool) -> tuple[Path, Path]:
    photos = root / "photos"
    photos.mkdir(parents=True)
    for name in ("two_people.jpg", "obama2.jpg", "lin-manuel-miranda.png"):
        shutil.copy(shared_file(shared, f"{EX}/{name}"), photos / name)
    db = root / "gallery.db"
    with FaceRec(db, pipeline=pipeline) as fr:
        if enrol:
            fr.enroll(OBAMA, [shared / EX / "obama.jpg"])
            fr.enroll(BIDEN, [shared / EX / "biden.jpg"])
        with Album(fr) as album:
            album.scan(photos, workers=0, threads=1)
    return photos, db


def run(*args: str) -> Any:
    r = CliRunner().invoke(app, ["album", *args], catch_exceptions=False)
    return r


def test_export_reads_back_in_exiftool_and_import_names_faces(
    shared: Path, pipeline: Pipeline, tmp_path: Path
) -> None:
    tool = exiftool()
    photos, db = scanned(shared, pipeline, tmp_path / "a", enrol=True)
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in photos.iterdir()}
    r = run("export", "--xmp", "--db", str(db))
    assert r.exit_code == 0, r.output
    sidecar = photos / "two_people.jpg.xmp"
    assert sidecar.is_file() and not (photos / "lin-manuel-miranda.png.xmp").exists()  # unnamed

    out = subprocess.run(
        [tool, "-j", "-struct", "-RegionInfo", str(sidecar)],
        capture_output=True,
        text=True,
        check=True,
    )
    info = json.loads(out.stdout)[0]["RegionInfo"]
    regions = {r["Name"]: r["Area"] for r in info["RegionList"]}
    assert set(regions) == {OBAMA, BIDEN} and {r["Type"] for r in info["RegionList"]} == {"Face"}
    ((w, h),) = rows(db, "SELECT width, height FROM album_photos WHERE path LIKE '%two_people.jpg'")
    assert (info["AppliedToDimensions"]["W"], info["AppliedToDimensions"]["H"]) == (w, h)
    for name, area in regions.items():
        ((box,),) = rows(
            db,
            "SELECT f.box FROM album_faces f JOIN identities i ON i.id = f.identity_id "
            "JOIN album_photos p ON p.id = f.photo_id WHERE i.name = ? AND p.path LIKE '%two_people.jpg'",
            name,
        )
        x1, y1, x2, y2 = json.loads(box)
        assert abs(area["X"] - (x1 + x2) / 2 / w) < 1e-4 and abs(area["W"] - (x2 - x1) / w) < 1e-4
        assert abs(area["Y"] - (y1 + y2) / 2 / h) < 1e-4 and abs(area["H"] - (y2 - y1) / h) < 1e-4
    assert {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in photos.iterdir()
        if p.suffix != ".xmp"
    } == before
    r = run("export", "--xmp", "--db", str(db))  # a sidecar that exists is left alone
    assert "left alone" in r.stdout

    # ExifTool writes a region (as digiKam would) on Lin-Manuel's photo: import names him.
    ((pid, box, pw, ph),) = rows(
        db,
        "SELECT p.id, f.box, p.width, p.height FROM album_faces f JOIN album_photos p "
        "ON p.id = f.photo_id WHERE p.path LIKE '%lin-manuel-miranda.png'",
    )
    x1, y1, x2, y2 = json.loads(box)
    struct = (
        f"{{AppliedToDimensions={{W={pw},H={ph},Unit=pixel}},RegionList=[{{Area={{"
        f"X={(x1 + x2) / 2 / pw:.5f},Y={(y1 + y2) / 2 / ph:.5f},W={(x2 - x1) / pw:.5f},"
        f"H={(y2 - y1) / ph:.5f},Unit=normalized}},Name={LIN},Type=Face}}]}}"
    )
    lin = photos / "lin-manuel-miranda.png"
    subprocess.run(
        [tool, "-q", "-o", str(lin) + ".xmp", f"-RegionInfo={struct}", str(lin)], check=True
    )
    r = run("import", "--xmp", "--db", str(db))
    assert r.exit_code == 0, r.output
    named = rows(
        db,
        "SELECT f.match_kind FROM album_faces f JOIN identities i ON i.id = f.identity_id "
        "WHERE i.name = ? AND f.photo_id = ?",
        LIN,
        pid,
    )
    assert named == [("confirmed",)]
    # Our own sidecars imported back confirm the automatic matches they came from.
    assert rows(
        db,
        "SELECT count(*) FROM album_faces f JOIN album_photos p ON p.id = f.photo_id "
        "WHERE p.path LIKE '%two_people.jpg' AND f.match_kind = 'confirmed'",
    ) == [(2,)]


def test_a_round_trip_names_a_fresh_album(shared: Path, pipeline: Pipeline, tmp_path: Path) -> None:
    """Sidecars written by one album name the faces of another that enrolled nobody."""
    exiftool()
    photos, db = scanned(shared, pipeline, tmp_path / "a", enrol=True)
    assert run("export", "--xmp", "--db", str(db)).exit_code == 0
    fresh = tmp_path / "b" / "gallery.db"
    fresh.parent.mkdir()
    with FaceRec(fresh, pipeline=pipeline) as fr, Album(fr) as album:
        album.scan(photos, workers=0, threads=1)
        assert not album.view().people
        result = album.import_xmp()
    assert result.enrolled >= 2 and result.unmatched == 0
    assert {n for (n,) in rows(fresh, "SELECT name FROM identities")} == {OBAMA, BIDEN}


def test_hostile_sidecars_are_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "a.jpg.xmp"
    bomb.write_text('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>')
    with pytest.raises(SidecarError, match="DTD"):
        read_regions(bomb, 100, 100)
    junk = tmp_path / "b.jpg.xmp"
    junk.write_bytes(b"\x00\xff not xml")
    with pytest.raises(SidecarError):
        read_regions(junk, 100, 100)
    odd = tmp_path / "c.jpg.xmp"
    odd.write_text(
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Bag><rdf:li><rdf:Description xmlns:mwg-rs="http://www.metadataworkinggroup.com/schemas/regions/" '
        'xmlns:stArea="http://ns.adobe.com/xmp/sType/Area#" mwg-rs:Name="X" mwg-rs:Type="Face">'
        '<mwg-rs:Area stArea:x="nan" stArea:y="0.5" stArea:w="0.1" stArea:h="0.1"/></rdf:Description>'
        "</rdf:li></rdf:Bag></rdf:RDF></x:xmpmeta>"
    )
    assert read_regions(odd, 100, 100) == []
