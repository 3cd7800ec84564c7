"""The evaluation cache with the real detector and model: a second pass detects and embeds
nothing; other detector settings or other weights miss; junk entries are ignored and rewritten;
a photo without a face keeps its fallback crop (and key)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from facerec.detectors import Detector, DetectorConfig
from facerec.evaluation.cache import EvaluationCache
from facerec.evaluation.embed import embed_set
from facerec.faces.embedding import Embedder
from facerec.faces.pipeline import Pipeline

from ..conftest import shared_file

PHOTOS = [
    "lfw/images/Hugo_Chavez/Hugo_Chavez_0001.jpg",
    "lfw/images/Hugo_Chavez/Hugo_Chavez_0002.jpg",
    "att_faces/s1/1.pgm",
    "nonface/pilatus800.jpg",  # a mountain
]


@pytest.fixture()
def photos(shared: Path) -> list[Path]:
    return [shared_file(shared, p) for p in PHOTOS]


def test_second_pass_comes_from_the_cache(
    photos: list[Path], pipeline: Pipeline, tmp_path: Path
) -> None:
    cache = EvaluationCache(tmp_path / "c")
    first = embed_set(pipeline, photos, cache=cache)
    assert (first.detected, first.embedded) == (4, 4)
    assert first.missed == {photos[3]}  # the mountain: counted, cut at the set's mean landmarks
    again = embed_set(pipeline, photos, cache=cache)
    assert (again.detected, again.embedded) == (0, 0)
    np.testing.assert_array_equal(again.embeddings, first.embeddings)
    assert again.missed == first.missed
    # The same figures as without any cache.
    plain = embed_set(pipeline, photos)
    np.testing.assert_allclose(plain.embeddings, first.embeddings, atol=1e-6)
    # A subset reuses the detections; the missed photo's fallback moves with the set,
    # so only it is embedded again.
    sub = embed_set(pipeline, [photos[0], photos[2], photos[3]], cache=cache)
    assert (sub.detected, sub.embedded) == (0, 1)


def test_detector_settings_and_weights_are_part_of_the_key(
    photos: list[Path], pipeline: Pipeline, tmp_path: Path
) -> None:
    cache = EvaluationCache(tmp_path / "c")
    some = photos[:2]
    embed_set(pipeline, some, cache=cache)
    other_detector = Pipeline(Detector(DetectorConfig(min_face_size=40)), pipeline.embedder)
    r = embed_set(other_detector, some, cache=cache)
    assert r.detected == 2  # other settings: detected again
    model = pipeline.embedder.model
    other_weights = dataclasses.replace(model, weights_sha256="0" * 64)
    r = embed_set(Pipeline(pipeline.detector, Embedder(other_weights)), some, cache=cache)
    assert (r.detected, r.embedded) == (0, 2)  # same detections, other model: embedded again
    flipped = Embedder(model, flip=True)
    r = embed_set(Pipeline(pipeline.detector, flipped), some, cache=cache)
    assert (r.detected, r.embedded) == (0, 2)


def test_junk_entries_are_ignored_and_rewritten(
    photos: list[Path], pipeline: Pipeline, tmp_path: Path
) -> None:
    root = tmp_path / "c"
    cache = EvaluationCache(root)
    some = photos[:2]
    first = embed_set(pipeline, some, cache=cache)
    det = sorted((root / "detections").rglob("*.json"))
    emb = sorted((root / "embeddings").rglob("*.npy"))
    assert len(det) == 2 and len(emb) == 2
    det[0].write_text('{"width": 250, "height": "tall"}')
    det[1].write_bytes(b"\x00\xff not json")
    emb[0].write_bytes(b"junk")
    np.save(emb[1], np.ones(3, dtype=np.float32), allow_pickle=False)  # wrong size
    (root / "detections" / "stray.txt").write_text("a file nobody asked for")
    again = embed_set(pipeline, some, cache=cache)
    assert (again.detected, again.embedded) == (2, 2)
    np.testing.assert_allclose(again.embeddings, first.embeddings, atol=1e-6)
    third = embed_set(pipeline, some, cache=cache)  # the rewritten entries are good again
    assert (third.detected, third.embedded) == (0, 0)
    assert not list(root.rglob(".tmp-*"))  # no temporary file left behind


def test_a_missing_photo_is_named(pipeline: Pipeline, tmp_path: Path) -> None:
    from facerec.errors import ImageError

    with pytest.raises(ImageError, match=r"nope\.jpg: no such file"):
        embed_set(pipeline, [tmp_path / "nope.jpg"], cache=EvaluationCache(tmp_path / "c"))
