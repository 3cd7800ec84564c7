"""The chip cache: built once with the real detector and reused, keyed by content; miss
policies; identity exclusions; deterministic augmentation."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facerec.detectors import DetectedFace, Detector, DetectorConfig
from facerec.errors import FacerecError
from facerec.faces.images import RGBImage
from facerec.models.dlib_resnet import DLIB_SPEC, DLIB_TEMPLATE
from facerec.training.data import (
    ChipDataset,
    ChipSet,
    DataError,
    ImageItem,
    Preparation,
    data_fingerprint,
    folder_items,
    lfw_fold_identities,
    load_or_build,
    read_identity_list,
)

from ..conftest import shared_file

PEOPLE, PHOTOS = 6, 6
#: Shared with test_trainer.py: the chips built here are copied there, so a full run detects once.
SESSION_CACHE = "facerec-chip-cache"


def copy_att(shared: Path, dst: Path, people: int = PEOPLE, photos: int = PHOTOS) -> Path:
    src = shared_file(shared, "att_faces")
    for i in range(1, people + 1):
        (dst / f"s{i}").mkdir(parents=True)
        for j in range(1, photos + 1):
            shutil.copyfile(src / f"s{i}" / f"{j}.pgm", dst / f"s{i}" / f"{j}.pgm")
    return dst


class CountingDetector:
    """The real MTCNN, counting the photos it is asked about."""

    def __init__(self) -> None:
        self.inner = Detector(DetectorConfig())
        self.images = 0

    def detect_batch(self, images: Sequence[RGBImage]) -> list[list[DetectedFace]]:
        self.images += len(images)
        return self.inner.detect_batch(images)


class ExplodingDetector:
    def detect_batch(self, images: Sequence[RGBImage]) -> list[list[DetectedFace]]:
        raise AssertionError("the cache should have been used, not the detector")


class FakeDetector:
    """A face in the middle of every bright image, none in dark ones."""

    def __init__(self) -> None:
        self.images = 0

    def detect_batch(self, images: Sequence[RGBImage]) -> list[list[DetectedFace]]:
        self.images += len(images)
        out: list[list[DetectedFace]] = []
        for img in images:
            if img.mean() < 100:
                out.append([])
                continue
            h, w = img.shape[:2]
            pts = DLIB_TEMPLATE.scaled(min(h, w)).points
            lm = tuple((float(x), float(y)) for x, y in pts)
            out.append([DetectedFace((0.0, 0.0, float(w), float(h)), 0.99, lm)])  # type: ignore[arg-type]
        return out


@pytest.fixture(scope="module")
def att_set(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_att(shared, tmp_path_factory.mktemp("att"))


@pytest.fixture(scope="module")
def built(
    att_set: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[ChipSet, CountingDetector, Path, list[ImageItem]]:
    cache = tmp_path_factory.mktemp("cache")
    detector = CountingDetector()
    items = folder_items(att_set)
    chips = load_or_build(items, Preparation(DLIB_TEMPLATE), cache_dir=cache, detector=detector)
    shared_cache = tmp_path_factory.getbasetemp() / SESSION_CACHE
    shared_cache.mkdir(exist_ok=True)
    assert chips.cache_path is not None
    shutil.copyfile(chips.cache_path, shared_cache / chips.cache_path.name)
    return chips, detector, cache, items


def test_cache_built_once_then_reused(
    built: tuple[ChipSet, CountingDetector, Path, list[ImageItem]],
) -> None:
    chips, detector, cache, items = built
    assert detector.images == PEOPLE * PHOTOS and not chips.from_cache
    assert chips.chips.shape == (PEOPLE * PHOTOS, 150, 150, 3) and chips.chips.dtype == np.uint8
    assert chips.names == tuple(sorted(f"s{i}" for i in range(1, PEOPLE + 1)))
    assert set(chips.counts().values()) == {PHOTOS}
    assert chips.paths[0] == "s1/1.pgm" and not chips.missed and not chips.unreadable
    assert chips.cache_path is not None and chips.cache_path.parent == cache
    assert chips.cache_path.name.startswith(chips.fingerprint)

    again = load_or_build(
        items, Preparation(DLIB_TEMPLATE), cache_dir=cache, detector=ExplodingDetector()
    )
    assert again.from_cache and again.fingerprint == chips.fingerprint
    assert np.array_equal(again.chips, chips.chips) and np.array_equal(again.labels, chips.labels)
    assert again.names == chips.names and again.paths == chips.paths
    # Another template or detector setting is another cache file, never these chips.
    other = Preparation(DLIB_TEMPLATE.scaled(112))
    assert other.key() != Preparation(DLIB_TEMPLATE).key()
    assert Preparation(DLIB_TEMPLATE, misses="fallback").key() != Preparation(DLIB_TEMPLATE).key()


def test_fingerprint_follows_content(att_set: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(att_set / "s1", copy / "s1")
    shutil.copytree(att_set / "s2", copy / "s2")
    original = folder_items(att_set, max_per_identity=PHOTOS)
    subset = [it for it in original if it.identity in ("s1", "s2")]
    fp = data_fingerprint(folder_items(copy))
    assert fp == data_fingerprint(subset)  # where the set lives does not matter
    photo = copy / "s2" / "3.pgm"
    photo.write_bytes(photo.read_bytes()[:-1] + b"\x00")
    assert data_fingerprint(folder_items(copy)) != fp
    photo.write_bytes((att_set / "s2" / "3.pgm").read_bytes())
    assert data_fingerprint(folder_items(copy)) == fp
    photo.rename(copy / "s2" / "99.pgm")
    assert data_fingerprint(folder_items(copy)) != fp


def _png(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((80, 80, 3), value, dtype=np.uint8)).save(path)


def test_misses_skipped_for_training_fallback_for_evaluation(tmp_path: Path) -> None:
    root = tmp_path / "set"
    for person in ("ann", "bob"):
        for j in range(3):
            _png(root / person / f"{j}.png", 200)
    _png(root / "bob" / "dark.png", 10)  # the fake detector finds no face here
    (root / "ann" / "broken.png").write_bytes(b"not an image at all")
    items = folder_items(root)
    skip = load_or_build(
        items, Preparation(DLIB_TEMPLATE), cache_dir=tmp_path / "c", detector=FakeDetector()
    )
    assert len(skip) == 6 and skip.missed == ("bob/dark.png",)
    assert skip.unreadable == ("ann/broken.png",)
    assert skip.counts() == {"ann": 3, "bob": 3}
    fallback = load_or_build(
        items,
        Preparation(DLIB_TEMPLATE, misses="fallback"),
        cache_dir=tmp_path / "c",
        detector=FakeDetector(),
    )
    assert len(fallback) == 7 and fallback.missed == ("bob/dark.png",)
    assert "bob/dark.png" in fallback.paths


def test_corrupt_cache_is_rebuilt(tmp_path: Path) -> None:
    root = tmp_path / "set"
    for person in ("ann", "bob"):
        for j in range(2):
            _png(root / person / f"{j}.png", 180 + j)
    items = folder_items(root)
    first = load_or_build(
        items, Preparation(DLIB_TEMPLATE), cache_dir=tmp_path / "c", detector=FakeDetector()
    )
    assert first.cache_path is not None
    first.cache_path.write_bytes(b"garbage")
    detector = FakeDetector()
    second = load_or_build(
        items, Preparation(DLIB_TEMPLATE), cache_dir=tmp_path / "c", detector=detector
    )
    assert detector.images == 4 and not second.from_cache
    assert np.array_equal(second.chips, first.chips)


def test_identity_selection(tmp_path: Path) -> None:
    root = tmp_path / "set"
    for person, n in (("ann", 1), ("bob", 3), ("cyd", 5)):
        for j in range(n):
            _png(root / person / f"{j}.png", 200)
    assert {it.identity for it in folder_items(root)} == {"bob", "cyd"}
    assert len(folder_items(root, min_images=1)) == 9
    capped = folder_items(root, max_per_identity=2)
    assert [it.rel for it in capped] == ["bob/0.png", "bob/1.png", "cyd/0.png", "cyd/1.png"]
    assert {it.identity for it in folder_items(root, exclude={"bob"})} == {"cyd"}
    with pytest.raises(DataError):
        folder_items(root, min_images=6)

    names = tmp_path / "names.txt"
    names.write_text("# people of the test fold\nbob\n\n  cyd  # trailing comment\n")
    assert read_identity_list(names) == {"bob", "cyd"}
    with pytest.raises(FacerecError):
        read_identity_list(tmp_path / "missing.txt")

    chips = load_or_build(
        folder_items(root),
        Preparation(DLIB_TEMPLATE),
        cache_dir=tmp_path / "c",
        detector=FakeDetector(),
    )
    kept = chips.exclude({"bob"})
    assert kept.names == ("cyd",) and len(kept) == 5 and set(kept.labels.tolist()) == {0}
    assert kept.identities_sha256() != chips.identities_sha256()
    assert kept.fingerprint == chips.fingerprint
    assert chips.with_min_chips(4).names == ("cyd",)


def test_lfw_fold_identities(tmp_path: Path, shared: Path) -> None:
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("2\t1\nAnn\t1\t2\nBob\t1\tCyd\t1\nDan\t1\t2\nEve\t1\tFay\t2\n")
    assert lfw_fold_identities(pairs, 1) == {"Ann", "Bob", "Cyd"}
    assert lfw_fold_identities(pairs, 2) == {"Dan", "Eve", "Fay"}
    with pytest.raises(DataError, match=r"folds 1\.\.2"):
        lfw_fold_identities(pairs, 3)
    real = shared / "lfw" / "pairs_dev.txt"
    if real.is_file():
        folds = [lfw_fold_identities(real, k) for k in range(1, 6)]
        assert all(len(f) > 100 for f in folds)
        assert all(not (a & b) for i, a in enumerate(folds) for b in folds[i + 1 :])


def test_augmentation_is_deterministic_and_light(
    built: tuple[ChipSet, CountingDetector, Path, list[ImageItem]],
) -> None:
    chips = built[0]
    a = ChipDataset(chips, DLIB_SPEC.mean, DLIB_SPEC.std, seed=3)
    b = ChipDataset(chips, DLIB_SPEC.mean, DLIB_SPEC.std, seed=3)
    x, label = a[7]
    assert x.shape == (3, 150, 150) and label == int(chips.labels[7])
    assert bool((x == b[7][0]).all())
    a.set_epoch(1)
    assert not bool((x == a[7][0]).all())  # another epoch, another variant
    plain = ChipDataset(chips, DLIB_SPEC.mean, DLIB_SPEC.std, augment=None)
    ref = (chips.chips[7].astype(np.float32) - np.array(DLIB_SPEC.mean, np.float32)) / DLIB_SPEC.std
    assert np.allclose(plain[7][0].numpy(), ref.transpose(2, 0, 1))
    # Light: the augmented chip stays close to the original (same face, same place).
    diff = np.abs(b.image(7) - chips.chips[7].astype(np.float32)).mean()
    flipped = np.abs(b.image(7) - chips.chips[7][:, ::-1].astype(np.float32)).mean()
    assert min(diff, flipped) < 40
