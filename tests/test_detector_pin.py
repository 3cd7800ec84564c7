"""A gallery keeps the detector that cut its enrolled faces, and the door reads that
detector's measured operating points.

Each detector puts the five landmarks a little differently, so the chips and the
scores differ: SFace's threshold for FAR 1e-4 on LFW is 0.4258 with MTCNN's landmarks
and 0.4309 with YuNet's. A session that opens a gallery therefore runs the gallery's
detector unless told otherwise, and galleries from before the detector was recorded
(all enrolled with MTCNN, then the only default) keep MTCNN.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from facerec.api import FaceRec
from facerec.config import Settings
from facerec.decisions.operating import DOOR_FAR, curve_file, curve_for, shipped_sizes
from facerec.detectors import DEFAULT_DETECTOR, DetectorConfig, DetectorKind

OBAMA = "face_recognition/examples/obama.jpg"


def test_curves_are_named_and_kept_per_detector() -> None:
    assert curve_file("sface") == "sface.json"  # MTCNN's files keep their names
    assert curve_file("sface", 3, "mtcnn") == "sface.prototype-3.json"
    assert curve_file("sface", 1, "yunet") == "sface@yunet.json"
    assert curve_file("sface", 3, "yunet") == "sface@yunet.prototype-3.json"
    assert shipped_sizes("sface", "yunet") == (1, 2, 3, 5)
    mtcnn, yunet = curve_for("sface", None), curve_for("sface", None, detector="yunet")
    assert mtcnn is not None and yunet is not None
    assert (mtcnn.detector, yunet.detector) == ("mtcnn", "yunet")
    # Measured, not copied: YuNet's landmarks give SFace another door threshold.
    assert yunet.for_far(DOOR_FAR).threshold == pytest.approx(0.4309, abs=2e-4)
    assert mtcnn.for_far(DOOR_FAR).threshold == pytest.approx(0.4258, abs=2e-4)
    for k in (2, 3, 5):  # and the prototype curves still rise with the photos
        c = curve_for("sface", None, enrolled=k, detector="yunet")
        assert c is not None and c.enrolled == k
        assert c.for_far(DOOR_FAR).threshold > yunet.for_far(DOOR_FAR).threshold


def test_a_new_gallery_records_the_default_detector_and_reopens_with_it(
    shared: Path, tmp_path: Path
) -> None:
    db = tmp_path / "g.db"
    with FaceRec(db) as fr:
        assert fr.detector_kind() is DEFAULT_DETECTOR is DetectorKind.YUNET
        fr.enroll("Barack Obama", [shared / OBAMA])
        assert fr.gallery.detector == "yunet"
        door = fr.verification_threshold("Barack Obama")
    assert door.value == pytest.approx(0.4309, abs=2e-4)
    assert "LFW" in door.evidence
    with FaceRec(db) as fr:  # another session, nothing said: the gallery's detector
        assert fr.detector_kind() is DetectorKind.YUNET
        assert fr.pipeline.detector.kind is DetectorKind.YUNET


def test_an_older_gallery_without_a_recorded_detector_keeps_mtcnn(
    shared: Path, tmp_path: Path
) -> None:
    db = tmp_path / "g.db"
    mtcnn = Settings(detector=DetectorConfig(kind=DetectorKind.MTCNN))
    with FaceRec(db, mtcnn) as fr:
        fr.enroll("Barack Obama", [shared / OBAMA])
        assert fr.gallery.detector == "mtcnn"
    with sqlite3.connect(db) as con:  # as a gallery from before the key existed
        con.execute("DELETE FROM meta WHERE key = 'detector'")
    with FaceRec(db) as fr:
        assert fr.gallery.detector == "mtcnn"
        assert fr.detector_kind() is DetectorKind.MTCNN
        door = fr.verification_threshold("Barack Obama")
        assert door.value == pytest.approx(0.4258, abs=2e-4)
    # Asked for by name, the other detector runs, and its own curve applies.
    yunet = Settings(detector=DetectorConfig(kind=DetectorKind.YUNET))
    with FaceRec(db, yunet) as fr:
        assert fr.detector_kind() is DetectorKind.YUNET
        assert fr.verification_threshold("Barack Obama").value == pytest.approx(0.4309, abs=2e-4)
