"""Apps decide through the core: one road from a face to a decision (#12).

The door camera, the album and the HTTP service used to search the gallery
and decide with their own copies of the core's rules (the 1:N decision, the
claim, name normalisation, sample building, prototype means). These tests
fail when a copy comes back: the camera must give a face the decision
`FaceRec` gives the same photo, the gallery's prototype must be the core's
`prototype`, and the apps' source must not reach around `FaceRec` into its
gallery or pipeline for face logic.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from facerec.api import FaceRec
from facerec.camera.door import DoorCamera
from facerec.camera.stream import Frame
from facerec.decisions.prototypes import prototype
from facerec.faces.images import LoadedImage, load_image
from facerec.faces.pipeline import Pipeline

from .conftest import shared_file

EX = "face_recognition/examples"
KNN = f"{EX}/knn_examples"
#: Enrolled under a name whose "ë" is stored composed (NFC); the claims below spell it decomposed.
ZOE = "Zo\u00eb"
PROBES = (
    f"{KNN}/test/obama1.jpg",  # Zoë (Obama), not an enrolled photo
    f"{KNN}/train/biden/biden2.jpg",  # biden, not an enrolled photo
    f"{EX}/lin-manuel-miranda.png",  # a stranger
    f"{EX}/alex-lacamoire.png",  # a stranger
)
SRC = Path(__file__).resolve().parents[1] / "facerec"


@pytest.fixture(scope="module")
def fr(
    shared: Path, pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FaceRec]:
    db = tmp_path_factory.mktemp("road") / "g.db"
    with FaceRec(db, pipeline=pipeline) as face_rec:
        face_rec.enroll(
            ZOE, [shared_file(shared, f"{EX}/obama.jpg"), shared_file(shared, f"{EX}/obama2.jpg")]
        )
        face_rec.enroll("biden", [shared_file(shared, f"{EX}/biden.jpg")])
        yield face_rec


@pytest.fixture(scope="module")
def probes(shared: Path) -> list[LoadedImage]:
    return [load_image(shared_file(shared, p)) for p in PROBES]


@pytest.mark.slow
def test_the_watching_camera_decides_as_identify(fr: FaceRec, probes: list[LoadedImage]) -> None:
    door = DoorCamera(fr, "probes")
    labels = []
    for i, image in enumerate(probes):
        frame, _ = door.observe(Frame(i, float(i), image.pixels))
        assert frame.voted, (image.source, frame.reason)
        ident = next(f.identification for f in fr.identify_image(image).faces if f.box == frame.box)
        assert ident is not None
        assert (frame.label, frame.score) == (ident.name, ident.similarity), image.source
        labels.append(frame.label)
    assert labels[:2] == [ZOE, "biden"] and None in labels[2:]  # both branches were exercised
    assert door.threshold == fr.identification_threshold().value


@pytest.mark.slow
def test_a_claim_at_the_door_decides_as_verify(fr: FaceRec, probes: list[LoadedImage]) -> None:
    door = DoorCamera(fr, "probes", claim="Zoe\u0308 ")  # decomposed and padded: the same name
    assert door.claim == ZOE
    for i, image in enumerate(probes[:2]):
        frame, _ = door.observe(Frame(i, float(i), image.pixels))
        verified = fr.verify_image(ZOE, image)
        assert frame.score == verified.similarity, image.source
        assert frame.label == (ZOE if verified.accepted else None), image.source
    assert door.threshold == verified.threshold


def test_the_gallery_prototype_is_the_core_prototype(fr: FaceRec) -> None:
    samples = fr.sample_embeddings(["Zoe\u0308"])[ZOE]
    assert samples.shape[0] == 2
    assert np.array_equal(fr.gallery.prototype(ZOE), prototype(samples))


# -- the apps' source ---------------------------------------------------------------------------
#: Files outside the core allowed a pattern, and why. `.gallery.path` names the database file
#: (the album's and the camera's tables, the server's keys): no face logic.
_ALLOWED: dict[str, set[str]] = {
    "unicodedata.normalize(": {"decisions/names.py"},
    "NewSample(": {"decisions/enrolment.py"},
    "SOFTMAX_POOL": set(),
}
_CORE = ("api.py", "gallery/")


def _sources() -> Iterator[tuple[str, str]]:
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if not rel.startswith(_CORE):
            yield rel, path.read_text(encoding="utf-8")


def test_no_app_reaches_into_the_gallery_or_pipeline() -> None:
    reach = re.compile(r"(?<!facerec)\.(gallery|pipeline)\.(?!path\b)\w+")
    found = [
        f"{rel}:{n}: {line.strip()}"
        for rel, text in _sources()
        for n, line in enumerate(text.splitlines(), 1)
        if reach.search(line)
    ]
    assert found == []


def test_face_logic_lives_once() -> None:
    for pattern, allowed in _ALLOWED.items():
        holders = {rel for rel, text in _sources() if pattern in text}
        assert holders <= allowed, pattern
    own_decisions = re.compile(r"from facerec\.decisions\.decision import [^\n]*\b(identify|verify)\b")
    assert [rel for rel, text in _sources() if own_decisions.search(text)] == []
