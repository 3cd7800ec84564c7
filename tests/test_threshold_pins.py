"""The 1:N threshold is pinned, through every app that decides 1:N, to the shipped curve.

A red team broke `identification_threshold` on purpose (computed as if the
gallery held one person, or as if every prototype held one photo) and the
whole default suite still passed: the tests either passed a gallery size by
hand or compared the function with itself, and in galleries of fewer than
about ten people the FPIR scaling never bites (the 1:1 door threshold caps
it). Here a gallery of 24 real LFW people, one of them enrolled from three
photos, is asked through `identify`, `album scan` and the watching camera,
each a real CLI process on the default road, and the threshold each decided
at must be read off the shipped curve file by the rule the README states:
the curve of the largest prototype, at FAR = min(1e-4, FPIR 1e-3 / people).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from facerec.api import FaceRec
from facerec.errors import FacerecError
from facerec.liveness import replay

from .camera.conftest import camera, events
from .conftest import shared_file
from .curves import shipped_threshold

PEOPLE = 24
DOOR_FAR, FPIR = 1e-4, 1e-3
POWELL = "Colin_Powell"


@pytest.fixture(scope="module")
def gallery(tmp_path_factory: pytest.TempPathFactory, shared: Path) -> Path:
    """24 LFW people on the default road (YuNet + SFace), Powell from three photos."""
    lfw = shared_file(shared, "lfw/images")
    db = tmp_path_factory.mktemp("pins") / "gallery.db"
    others = [
        d for d in sorted(lfw.iterdir()) if d.name != POWELL and (d / f"{d.name}_0001.jpg").exists()
    ]
    with FaceRec(db) as fr:
        assert (fr.model_name(), str(fr.detector_kind())) == ("sface", "yunet")
        fr.enroll(POWELL, [lfw / POWELL / f"{POWELL}_000{i}.jpg" for i in (1, 2, 3)], force=True)
        for person in others:
            if len(fr.people()) == PEOPLE:
                break
            try:  # LFW photos centre one face; a few show another of about its size
                fr.enroll(person.name, [person / f"{person.name}_0001.jpg"], force=True)
            except FacerecError:
                continue
        assert len(fr.people()) == PEOPLE
    return db


@pytest.fixture(scope="module")
def expected() -> float:
    right = shipped_threshold("sface@yunet.prototype-3.json", min(DOOR_FAR, FPIR / PEOPLE))
    # The test must tell the rule from the two ways it was broken:
    as_if_one_person = shipped_threshold("sface@yunet.prototype-3.json", DOOR_FAR)
    as_if_one_photo = shipped_threshold("sface@yunet.json", min(DOOR_FAR, FPIR / PEOPLE))
    assert right not in (as_if_one_person, as_if_one_photo)
    return right


def test_identify_decides_at_the_galleries_threshold(
    gallery: Path, expected: float, shared: Path, cli_env: dict[str, str]
) -> None:
    photo = shared_file(shared, f"lfw/images/{POWELL}/{POWELL}_0004.jpg")
    r = subprocess.run(
        [sys.executable, "-m", "facerec", "identify", str(photo), "--json", "--db", str(gallery)],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    (face,) = json.loads(r.stdout)[0]["faces"]
    assert face["name"] == POWELL
    assert face["threshold"] == pytest.approx(expected, abs=1e-9)


def test_album_matches_at_the_galleries_threshold(
    gallery: Path, expected: float, shared: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    album = tmp_path / "album"
    album.mkdir()
    shutil.copy(shared_file(shared, f"lfw/images/{POWELL}/{POWELL}_0004.jpg"), album)
    r = subprocess.run(
        [sys.executable, "-m", "facerec", "album", "scan", str(album), "--json", "--db", str(gallery)],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    refresh = json.loads(r.stdout)["refresh"]
    assert refresh["matched"] == 1
    assert refresh["threshold"] == pytest.approx(expected, abs=1e-9)


def test_watching_camera_decides_at_the_galleries_threshold(
    gallery: Path, expected: float, shared: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    photo = replay.read_bgr(shared_file(shared, f"lfw/images/{POWELL}/{POWELL}_0004.jpg"))
    clip = replay.write_mp4(tmp_path / "door.mp4", replay.still(replay.letterbox(photo), 20), 10)
    r = camera(["--source", str(clip), "--watch", "--no-liveness"], cli_env, gallery)
    assert r.returncode in (0, 1), r.stderr
    decided = [e for e in events(r) if e.get("event") == "decision"]
    assert decided, r.stdout
    assert [e["threshold"] for e in decided] == [pytest.approx(expected, abs=1e-9)] * len(decided)
