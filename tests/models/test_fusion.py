"""The `sface+dlib` fusion: one registered model whose cosine is the weighted sum of its members'."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facerec.api import FaceRec
from facerec.errors import ModelError, ModelMismatchError
from facerec.evaluation.cache import EvaluationCache
from facerec.evaluation.embed import embed_set
from facerec.faces.embedding import Embedder
from facerec.faces.images import load_image
from facerec.faces.pipeline import Pipeline, select_one, storage_crop
from facerec.models import dlib_resnet
from facerec.models import sface as sface_module
from facerec.models.base import FusionMember, LoadedModel, sha256_file
from facerec.models.dlib_spec import DLIB_SPEC
from facerec.models.fusion import (
    SFACE_DLIB,
    SFACE_DLIB_SPEC,
    fuse,
    fused_spec,
    fusion_digest,
    load_fusion,
)
from facerec.models.registry import available_models, load_model, model_spec
from facerec.models.sface import SFACE_SPEC

from ..conftest import shared_file
from ..test_cli import facerec

EX = "face_recognition/examples"
W_SFACE, W_DLIB = (m.weight for m in SFACE_DLIB_SPEC.members)


@pytest.fixture(scope="module")
def fusion(pipeline: Pipeline, sface: LoadedModel) -> LoadedModel:
    """The fusion built from the session's already-loaded members (as `load_model` builds it)."""
    members = {"sface": sface, "dlib-resnet-v1": pipeline.embedder.model}
    return load_fusion(SFACE_DLIB_SPEC, members.__getitem__)


@pytest.fixture(scope="module")
def fusion_pipeline(pipeline: Pipeline, fusion: LoadedModel) -> Pipeline:
    return Pipeline(pipeline.detector, Embedder(fusion))


def test_registered_with_both_members_and_their_templates() -> None:
    assert SFACE_DLIB in available_models()
    spec = model_spec(SFACE_DLIB)
    assert spec is SFACE_DLIB_SPEC
    assert [m.spec for m in spec.members] == [SFACE_SPEC, DLIB_SPEC]
    assert pytest.approx(1.0) == W_SFACE + W_DLIB and 0 < W_SFACE < 1
    assert spec.embedding_dim == 256
    assert spec.templates == (SFACE_SPEC.template, DLIB_SPEC.template)
    assert [t.size for t in spec.templates] == [112, 150]
    assert spec.template is SFACE_SPEC.template  # the chip the quality gate measures
    assert not spec.non_commercial
    assert "Apache-2.0" in spec.licence and "CC0" in spec.licence
    assert SFACE_SPEC.templates == (SFACE_SPEC.template,)  # a single network: one chip


def test_loads_offline_pinned_to_both_members_and_the_weights(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FACEREC_OFFLINE", "1")
    monkeypatch.delenv("FACEREC_WEIGHTS", raising=False)
    model = load_model(SFACE_DLIB, threads=1)
    assert model.backbone is None
    assert [m.weights_sha256 for m in model.members] == [
        sface_module.WEIGHTS_SHA256,
        sha256_file(dlib_resnet.default_weights_path()),
    ]
    assert model.identity.name == SFACE_DLIB
    assert model.weights_sha256 == fusion_digest(SFACE_DLIB_SPEC, model.members)
    # Another weight is another model for a gallery, under the same name.
    other = fused_spec(
        SFACE_DLIB,
        (FusionMember(SFACE_SPEC, 0.5), FusionMember(DLIB_SPEC, 0.5)),
        threshold=0.7,
        provenance="test",
    )
    assert fusion_digest(other, model.members) != model.weights_sha256
    with pytest.raises(ModelError, match="fine-tune a member"):
        _ = model.module
    # A weights file names one network; it is not guessed onto a member.
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"x")
    with pytest.raises(ModelError, match=r"sface\+dlib is a fusion .*w\.pt"):
        load_model(SFACE_DLIB, weights)


def test_a_fusion_needs_two_single_networks_with_weights_summing_to_one() -> None:
    s, d = FusionMember(SFACE_SPEC, 0.5), FusionMember(DLIB_SPEC, 0.5)
    with pytest.raises(ValueError, match="at least two"):
        fused_spec("x", (s,), threshold=0.5, provenance="")
    with pytest.raises(ValueError, match="sum to 1"):
        fused_spec("x", (s, FusionMember(DLIB_SPEC, 0.6)), threshold=0.5, provenance="")
    with pytest.raises(ValueError, match="positive"):
        fused_spec(
            "x",
            (FusionMember(SFACE_SPEC, 0.0), FusionMember(DLIB_SPEC, 1.0)),
            threshold=0.5,
            provenance="",
        )
    with pytest.raises(ValueError, match="single networks"):
        fused_spec("x", (FusionMember(SFACE_DLIB_SPEC, 0.5), d), threshold=0.5, provenance="")


def test_fuse_is_the_weighted_sum_of_cosines() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 128))
    b = rng.normal(size=(6, 64))
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    f = fuse([a.astype(np.float32), b.astype(np.float32)], (0.3, 0.7))
    assert f.shape == (6, 192) and f.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(f @ f.T, 0.3 * (a @ a.T) + 0.7 * (b @ b.T), atol=1e-6)
    with pytest.raises(ValueError, match="different numbers of faces"):
        fuse([a, b[:5]], (0.5, 0.5))
    with pytest.raises(ValueError, match="2 member embeddings for 3 weights"):
        fuse([a, b], (0.2, 0.3, 0.5))


def test_each_member_sees_its_own_chip_and_the_cosines_add_up(
    shared: Path, fusion_pipeline: Pipeline, pipeline: Pipeline, sface_pipeline: Pipeline
) -> None:
    """On real photos: unit vectors, and cos(fused) = w_sface cos_sface + w_dlib cos_dlib."""
    images = [
        load_image(shared_file(shared, f"{EX}/{n}"))
        for n in ("obama.jpg", "obama2.jpg", "biden.jpg")
    ]
    faces = [select_one(fusion_pipeline.faces(img), img) for img in images]
    fused = np.stack([f.embedding for f in faces])
    # Each model alone, at the same landmarks, on its own template.
    pixels = [img.pixels for img in images]
    marks = [f.detection.landmarks_array() for f in faces]
    alone = sface_pipeline.embed_at(pixels, marks)
    dlib = pipeline.embed_at(pixels, marks)
    np.testing.assert_allclose(np.linalg.norm(fused, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(fused[:, :128], np.sqrt(W_SFACE) * alone, atol=1e-5)
    np.testing.assert_allclose(fused[:, 128:], np.sqrt(W_DLIB) * dlib, atol=1e-5)
    weighted = W_SFACE * (alone @ alone.T) + W_DLIB * (dlib @ dlib.T)
    np.testing.assert_allclose(fused @ fused.T, weighted, atol=1e-5)
    obama, obama2, biden = fused
    assert float(obama @ obama2) > SFACE_DLIB_SPEC.threshold > float(obama @ biden)
    assert all(f.chip.shape == (112, 112, 3) for f in faces)  # the first member's chip


def test_a_single_chip_list_is_refused_for_a_fusion(fusion: LoadedModel) -> None:
    chips = np.zeros((2, 112, 112, 3), dtype=np.uint8)
    embedder = Embedder(fusion)
    with pytest.raises(ValueError, match=r"every member's template \(112px and 150px\)"):
        embedder.embed(chips)
    with pytest.raises(ValueError, match="takes 2 chip"):
        embedder.embed_views([chips])
    assert embedder.templates == (SFACE_SPEC.template, DLIB_SPEC.template)


def test_stored_crops_give_the_fused_embedding_back(
    shared: Path, fusion_pipeline: Pipeline
) -> None:
    """`reembed` cuts both members' chips from the gallery's one stored crop."""
    img = load_image(shared_file(shared, f"{EX}/obama.jpg"))
    face = select_one(fusion_pipeline.faces(img), img)
    again = fusion_pipeline.embed_stored([storage_crop(img, face.detection)])[0]
    assert float(again @ face.embedding) > 0.98


def test_a_fusion_gallery_and_an_sface_gallery_refuse_each_other_until_reembedded(
    shared: Path, sface_pipeline: Pipeline, fusion_pipeline: Pipeline, tmp_path: Path
) -> None:
    db = tmp_path / "gallery.db"
    obama, obama2, biden = (
        shared_file(shared, f"{EX}/{n}") for n in ("obama.jpg", "obama2.jpg", "biden.jpg")
    )
    with FaceRec(db, pipeline=sface_pipeline) as fr:
        fr.enroll("Barack Obama", [obama])
    with FaceRec(db, pipeline=fusion_pipeline) as fr:
        with pytest.raises(ModelMismatchError, match="sface"):
            fr.verify("Barack Obama", obama2)
        assert fr.reembed() == 1
        assert fr.gallery.model == fusion_pipeline.embedder.identity
        # The fusion's own shipped operating point (FAR <= 1e-4 on LFW), for these weights.
        curve = fr.operating_curve()
        assert curve is not None and curve.weights_sha256 == fr.gallery.model.weights_sha256
        door = fr.decision_threshold()
        assert door.far is not None and door.far <= 1e-4
        assert door.value > SFACE_DLIB_SPEC.threshold
        assert fr.verify("Barack Obama", obama2).accepted
        assert not fr.verify("Barack Obama", biden).accepted
    # Now SFace's vectors are refused.
    with (
        FaceRec(db, pipeline=sface_pipeline) as fr,
        pytest.raises(ModelMismatchError, match=r"sface\+dlib"),
    ):
        fr.verify("Barack Obama", obama2)


@pytest.mark.slow
def test_evaluation_fuses_cached_member_vectors_without_running_a_network(
    shared: Path,
    pipeline: Pipeline,
    sface_pipeline: Pipeline,
    fusion_pipeline: Pipeline,
    tmp_path: Path,
) -> None:
    paths = [shared_file(shared, f"{EX}/{n}") for n in ("obama.jpg", "obama2.jpg", "biden.jpg")]
    cache = EvaluationCache(tmp_path / "cache")
    members = [embed_set(p, paths, cache=cache) for p in (sface_pipeline, pipeline)]
    fused = embed_set(fusion_pipeline, paths, cache=cache)
    assert fused.detected == 0 and fused.embedded == 0  # every vector came from the cache
    expected = fuse([m.embeddings for m in members], (W_SFACE, W_DLIB))
    np.testing.assert_allclose(fused.embeddings, expected, atol=1e-6)
    # Without a cache the fusion runs both networks itself and gets the same vectors.
    direct = embed_set(fusion_pipeline, paths)
    assert direct.embedded == 3
    np.testing.assert_allclose(direct.embeddings, expected, atol=1e-5)


@pytest.mark.slow  # four CLI processes, each loading torch, MTCNN and both members
def test_cli_reembeds_an_sface_gallery_to_the_fusion(
    shared: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    db = tmp_path / "gallery.db"
    obama, obama2 = (str(shared_file(shared, f"{EX}/{n}")) for n in ("obama.jpg", "obama2.jpg"))
    r = facerec(["enroll", "Barack Obama", obama, "--model", "sface"], cli_env, db)
    assert r.returncode == 0, r.stderr
    r = facerec(["verify", "Barack Obama", obama2, "--model", SFACE_DLIB], cli_env, db)
    assert r.returncode == 2 and "sface" in r.stderr, r.stdout + r.stderr
    r = facerec(["reembed", "--model", SFACE_DLIB, "--json"], cli_env, db)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["samples"] == 1 and out["model"] == SFACE_DLIB
    r = facerec(["verify", "Barack Obama", obama2, "--json"], cli_env, db)  # the pinned fusion
    assert r.returncode == 0, r.stdout + r.stderr
    verdict = json.loads(r.stdout)
    assert verdict["accepted"] is True and verdict["far"] <= 1e-4
