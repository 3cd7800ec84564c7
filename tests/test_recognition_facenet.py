"""Recognition with InceptionResnetV1 (vggface2): runs only where its weights are present.

The weights are a download, which tests never make: they run when the file is in the
torch-hub cache (where facenet-pytorch puts it) or named by FACEREC_FACENET_WEIGHTS.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from facerec.api import FaceRec
from facerec.config import Settings
from facerec.models.inception import cached_weights

from .conftest import shared_file

EX = "face_recognition/examples"


def _weights() -> Path:
    env = os.environ.get("FACEREC_FACENET_WEIGHTS")
    path = Path(env) if env else cached_weights("vggface2")
    if not path.is_file():
        pytest.skip(f"vggface2 weights not present at {path} (set FACEREC_FACENET_WEIGHTS)")
    return path


@pytest.fixture(scope="module")
def facenet(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    weights = _weights()
    settings = Settings(model="facenet-vggface2", weights=weights)
    with FaceRec(tmp_path_factory.mktemp("facenet") / "g.db", settings) as fr:
        yield fr


def test_obama_verifies_biden_rejected(shared: Path, facenet: FaceRec) -> None:
    facenet.enroll("obama", [shared_file(shared, f"{EX}/obama.jpg")])
    assert facenet.verify("obama", shared_file(shared, f"{EX}/obama2.jpg")).accepted
    assert facenet.verify(
        "obama", shared_file(shared, "face_recognition/tests/test_images/obama3.jpg")
    ).accepted
    assert not facenet.verify("obama", shared_file(shared, f"{EX}/biden.jpg")).accepted


def test_two_people_identified(shared: Path, facenet: FaceRec) -> None:
    facenet.enroll("obama", [shared_file(shared, f"{EX}/obama.jpg")])
    facenet.enroll("biden", [shared_file(shared, f"{EX}/biden.jpg")])
    res = facenet.identify(shared_file(shared, f"{EX}/two_people.jpg"))
    names = [
        f.identification.name for f in sorted(res.faces, key=lambda f: f.box[0]) if f.identification
    ]
    assert names == ["obama", "biden"]
