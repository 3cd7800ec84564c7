"""Real recognition with the offline default model (dlib ResNet): no download, runs in CI."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from facerec.api import FaceRec
from facerec.faces.pipeline import Pipeline, select_one

from .conftest import shared_file

EX = "face_recognition/examples"
OBAMA = [
    f"{EX}/obama.jpg",
    f"{EX}/obama2.jpg",
    f"{EX}/obama-480p.jpg",
    f"{EX}/obama_small.jpg",
    "face_recognition/tests/test_images/obama3.jpg",
    f"{EX}/knn_examples/test/obama1.jpg",
]


def embed(pipeline: Pipeline, path: Path) -> np.ndarray:
    from facerec.faces.images import load_image

    img = load_image(path)
    return select_one(pipeline.faces(img), img).embedding


def test_obama_verifies_against_himself(shared: Path, pipeline: Pipeline, tmp_path: Path) -> None:
    with FaceRec(tmp_path / "g.db", pipeline=pipeline) as fr:
        fr.enroll("obama", [shared_file(shared, OBAMA[0])])
        for rel in OBAMA[1:]:
            v = fr.verify("obama", shared_file(shared, rel))
            assert v.accepted, (rel, v)


def test_biden_rejected_as_obama(shared: Path, pipeline: Pipeline, tmp_path: Path) -> None:
    with FaceRec(tmp_path / "g.db", pipeline=pipeline) as fr:
        fr.enroll("obama", [shared_file(shared, r) for r in OBAMA[:2]])
        for rel in (f"{EX}/biden.jpg", f"{EX}/knn_examples/train/biden/biden2.jpg"):
            v = fr.verify("obama", shared_file(shared, rel))
            assert not v.accepted, (rel, v)


def test_two_people_identified_after_one_photo_each(
    shared: Path, pipeline: Pipeline, tmp_path: Path
) -> None:
    with FaceRec(tmp_path / "g.db", pipeline=pipeline) as fr:
        fr.enroll("obama", [shared_file(shared, f"{EX}/obama.jpg")])
        fr.enroll("biden", [shared_file(shared, f"{EX}/biden.jpg")])
        res = fr.identify(shared_file(shared, f"{EX}/two_people.jpg"))
        names = [
            f.identification.name
            for f in sorted(res.faces, key=lambda f: f.box[0])
            if f.identification
        ]
        assert names == ["obama", "biden"]  # Obama stands on the left


def test_unknown_face_is_unknown(shared: Path, pipeline: Pipeline, tmp_path: Path) -> None:
    with FaceRec(tmp_path / "g.db", pipeline=pipeline) as fr:
        fr.enroll("obama", [shared_file(shared, f"{EX}/obama.jpg")])
        res = fr.identify(shared_file(shared, "facenet_pytorch/data/test_images/paul_rudd/1.jpg"))
        assert len(res.faces) == 1
        ident = res.faces[0].identification
        assert ident is not None and ident.name is None
        assert ident.candidates[0].name == "obama"  # nearest, yet below the threshold


#: The one pair this model confuses at its LFW-calibrated threshold (cosine 0.92 > 0.905);
#: dlib's own pipeline puts them at Euclidean 0.629, within 5% of its 0.6 rule.
CONFUSED = {("angelina_jolie", "kate_siegel")}


def test_facenet_test_people_told_apart(shared: Path, pipeline: Pipeline) -> None:
    people = ["angelina_jolie", "kate_siegel", "paul_rudd", "shea_whigham"]
    embs = {
        p: embed(pipeline, shared_file(shared, f"facenet_pytorch/data/test_images/{p}/1.jpg"))
        for p in people
    }
    threshold = pipeline.embedder.spec.threshold
    for a, b in itertools.combinations(people, 2):
        s = float(embs[a] @ embs[b])
        if (a, b) in CONFUSED:
            assert s >= threshold, f"{a}/{b} are now told apart ({s:.3f}): update CONFUSED"
        else:
            assert s < threshold, (a, b, s)
    # None of them is taken for Obama or Biden either.
    for n in ("obama", "biden"):
        other = embed(pipeline, shared_file(shared, f"face_recognition/examples/{n}.jpg"))
        assert all(float(embs[p] @ other) < threshold for p in people), n


def test_knn_people_nearest_prototype(shared: Path, pipeline: Pipeline, tmp_path: Path) -> None:
    """face_recognition's knn example: train folders enrolled, test photos identified."""
    train = shared_file(shared, f"{EX}/knn_examples/train")
    with FaceRec(tmp_path / "g.db", pipeline=pipeline) as fr:
        for person in sorted(train.iterdir()):
            fr.enroll(person.name, sorted(person.iterdir()))
        expect = {
            "alex_lacamoire1.jpg": {"alex_lacamoire"},
            "obama1.jpg": {"obama"},
            "johnsnow_test1.jpg": {"kit_harington"},
            "kit_with_rose.jpg": {"kit_harington", "rose_leslie"},
        }
        for fname, names in expect.items():
            res = fr.identify(train.parent / "test" / fname)
            got = {
                f.identification.name
                for f in res.faces
                if f.identification and f.identification.known
            }
            assert got == names, (fname, got)
