"""Issue #10's stranger cases with the defaults: a stranger's photo must not open the door.

Each case enrols real people from the shared photos in a fresh gallery through the Python API,
with the default model (SFace) and with dlib's ResNet (the model of galleries made before it),
no threshold given, so the threshold is the shipped operating point
(FAR <= 1e-4 on every pair of LFW). The same test checks that the true person is still accepted,
so a threshold that simply refuses everyone cannot pass. The LFW photos are centred on their
subject, who is the largest face, hence `largest=True` for them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from facerec.api import FaceRec
from facerec.decisions.decision import ThresholdSource
from facerec.decisions.operating import DOOR_FAR
from facerec.faces.pipeline import Pipeline

from .conftest import shared_file

CHAVEZ = "Hugo_Chavez"
#: The first four Hugo Chavez photos the enrolment gate takes (0003 is in profile): against this
#: prototype lennon-2.jpg scores 0.9217 with dlib, the similarity reported in the issue
#: (accepted at 0.905).
CHAVEZ_ENROL = (1, 2, 4, 5)
POWELL = "Colin_Powell"
BLAIR = "Tony_Blair"
STRANGERS = [
    "openface/clapton/clapton-1.jpg",
    "openface/clapton/clapton-2.jpg",
    "openface/lennon/lennon-1.jpg",
    "openface/lennon/lennon-2.jpg",
    "facenet_pytorch/data/test_images/paul_rudd/1.jpg",
]


def lfw(shared: Path, person: str, *numbers: int) -> list[Path]:
    return [shared_file(shared, f"lfw/images/{person}/{person}_{n:04d}.jpg") for n in numbers]


def assert_door_default(fr: FaceRec) -> None:
    t = fr.decision_threshold()
    assert t.source is ThresholdSource.OPERATING_POINT and t.target_far == DOOR_FAR, t
    assert t.far is not None and t.far <= DOOR_FAR


def test_lennon_does_not_open_hugo_chavez_door(
    shared: Path, each_model: Pipeline, tmp_path: Path
) -> None:
    with FaceRec(tmp_path / "g.db", pipeline=each_model) as fr:
        fr.enroll("Hugo Chavez", lfw(shared, CHAVEZ, *CHAVEZ_ENROL), largest=True)
        assert_door_default(fr)
        # Four photos behind the prototype: the operating point of 5-photo prototypes (the
        # smallest measured size >= 4), stricter than the photo-pair door, at the same FAR.
        t = fr.verification_threshold("Hugo Chavez")
        assert t.value > fr.decision_threshold().value and "prototypes of 5 photos" in t.evidence
        assert t.far is not None and t.far <= DOOR_FAR
        lennon = fr.verify("Hugo Chavez", shared_file(shared, "openface/lennon/lennon-2.jpg"))
        assert lennon.threshold == t.value
        if fr.model_name() == "dlib-resnet-v1":
            assert lennon.similarity == pytest.approx(0.9217, abs=2e-3)  # the case
        assert not lennon.accepted, lennon
        assert lennon.far is not None and lennon.far <= DOOR_FAR
        assert lennon.source.startswith("operating point FAR<=1e-4 on LFW")
        chavez = fr.verify("Hugo Chavez", lfw(shared, CHAVEZ, 10)[0], largest=True)
        assert chavez.accepted, chavez


def test_tony_blair_is_not_colin_powell(shared: Path, each_model: Pipeline, tmp_path: Path) -> None:
    with FaceRec(tmp_path / "g.db", pipeline=each_model) as fr:
        fr.enroll("Colin Powell", lfw(shared, POWELL, 1, 2, 3), largest=True)
        assert_door_default(fr)
        for photo in lfw(shared, BLAIR, *range(1, 11)):
            v = fr.verify("Colin Powell", photo, largest=True)
            assert not v.accepted, (photo.name, v)
        powell = fr.verify("Colin Powell", lfw(shared, POWELL, 10)[0], largest=True)
        assert powell.accepted, powell


def test_strangers_are_unknown_to_a_gallery_of_hugo_chavez(
    shared: Path, each_model: Pipeline, tmp_path: Path
) -> None:
    with FaceRec(tmp_path / "g.db", pipeline=each_model) as fr:
        fr.enroll("Hugo Chavez", lfw(shared, CHAVEZ, *CHAVEZ_ENROL), largest=True)
        for rel in STRANGERS:
            res = fr.identify(shared_file(shared, rel))
            assert len(res.faces) == 1, rel
            ident = res.faces[0].identification
            assert ident is not None and not ident.known, (rel, ident)
            assert ident.fpir is not None and ident.fpir <= 1e-3  # one person: FPIR = FAR
        res = fr.identify(lfw(shared, CHAVEZ, 10)[0])
        named = [f.identification.name for f in res.faces if f.identification is not None]
        assert "Hugo Chavez" in named, res


def test_identification_threshold_rises_with_the_gallery(tmp_path: Path) -> None:
    with FaceRec(tmp_path / "g.db") as fr:  # no photos: nothing is loaded
        door = fr.decision_threshold()
        values = []
        for people in (1, 10, 100, 1000):
            t = fr.decision_threshold(gallery_size=people)
            assert t.source is ThresholdSource.OPERATING_POINT and t.gallery_size == people
            assert t.target_far == pytest.approx(min(DOOR_FAR, 1e-3 / people))
            assert t.fpir is not None and t.fpir <= 1e-3
            values.append(t.value)
        assert values[0] == door.value  # one person: exactly the 1:1 door
        assert values == sorted(values) and values[-1] > values[1]
