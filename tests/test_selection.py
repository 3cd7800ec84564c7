"""Which face a photo is about: the clear subject is used, only a genuinely ambiguous photo is refused.

The LFW photos below are framed on their subject and show someone else too:
a larger bystander cut off by the border, a smaller one in frame, a frontal
bystander beside a subject turned away. Each was refused (or worse, used the
bystander) by the old rule "any second usable face is an error".
"""

from __future__ import annotations

from pathlib import Path

import pytest

from facerec.api import FaceRec
from facerec.detectors import DetectedFace
from facerec.errors import MultipleFacesError, NoFaceError
from facerec.faces.images import load_image
from facerec.faces.pipeline import Pipeline, in_frame, select_subject

from .conftest import shared_file

LFW = "lfw/images"


def lfw(shared: Path, person: str, n: int) -> Path:
    return shared_file(shared, f"{LFW}/{person}/{person}_{n:04d}.jpg")


def test_in_frame_fraction() -> None:
    face = DetectedFace(box=(-50.0, 0.0, 50.0, 100.0), score=1.0, landmarks=((0.0, 0.0),) * 5)
    assert in_frame(face, (250, 250)) == pytest.approx(0.5)
    inside = DetectedFace(box=(10.0, 10.0, 110.0, 110.0), score=1.0, landmarks=((0.0, 0.0),) * 5)
    assert in_frame(inside, (250, 250)) == 1.0


@pytest.mark.parametrize(
    "rel", ["face_recognition/examples/two_people.jpg", "openface/longoria-cooper.jpg"]
)
def test_two_similar_faces_are_refused(shared: Path, pipeline: Pipeline, rel: str) -> None:
    img = load_image(shared_file(shared, rel))
    faces = pipeline.faces(img)
    with pytest.raises(MultipleFacesError, match=r"2 faces found.*similar sizes"):
        select_subject(faces, img)
    assert select_subject(faces, img, largest=True).ignored == 1  # --largest keeps its meaning


def test_a_cut_off_bystander_is_ignored(shared: Path, pipeline: Pipeline, tmp_path: Path) -> None:
    """Al Pacino 2: a bystander's face, larger than his, mostly outside the frame."""
    img = load_image(lfw(shared, "Al_Pacino", 2))
    faces = pipeline.faces(img)
    subject = select_subject(faces, img)
    assert subject.ignored == 1
    biggest = max(faces, key=lambda f: f.detection.area)
    assert subject.face is not biggest and in_frame(biggest.detection, (250, 250)) < 0.5
    with FaceRec(tmp_path / "g.db", pipeline=pipeline) as fr:
        fr.enroll("Al Pacino", [lfw(shared, "Al_Pacino", 1)])
        v = fr.verify("Al Pacino", lfw(shared, "Al_Pacino", 2))
        # His own face (0.938: just under dlib's FAR 1e-4 door threshold, a genuine refusal
        # the operating point accepts as its price); the bystander is ignored.
        assert v.ignored_faces == 1 and v.similarity > 0.93, v
        # The largest face is the bystander: --largest compares the wrong person.
        wrong = fr.verify("Al Pacino", lfw(shared, "Al_Pacino", 2), largest=True)
        assert not wrong.accepted and wrong.similarity < v.similarity - 0.03, wrong


def test_a_much_smaller_face_in_frame_is_ignored(shared: Path, pipeline: Pipeline) -> None:
    """Zurab Tsereteli 1: a second face in frame at 0.6x his width, and a blurred third."""
    img = load_image(lfw(shared, "Zurab_Tsereteli", 1))
    subject = select_subject(pipeline.faces(img), img)
    assert subject.ignored == 2
    assert subject.face.detection.area == max(f.detection.area for f in pipeline.faces(img))


def test_a_refused_subject_is_not_replaced_by_a_bystander(shared: Path, pipeline: Pipeline) -> None:
    """Aron Ralston 2: he is turned away (yaw), a frontal bystander at the edge is not him."""
    img = load_image(lfw(shared, "Aron_Ralston", 2))
    faces = pipeline.faces(img)
    assert [f.quality.ok for f in faces].count(True) == 1  # the old rule used the bystander
    with pytest.raises(NoFaceError, match=r"the main face \(\d+ px\) was refused: .*yaw"):
        select_subject(faces, img)
