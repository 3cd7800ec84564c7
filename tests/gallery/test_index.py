"""PrototypeIndex: exact cosine search, atomic single-file persistence, refusal of bad files."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from facerec.gallery.index import MAGIC, IndexStamp, PrototypeIndex

DIM = 12
STAMP = IndexStamp(revision=7, model_name="m", model_sha256="f" * 64, dim=DIM)


def units(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    x = rng.normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


@pytest.fixture()
def built(rng: np.random.Generator) -> tuple[PrototypeIndex, np.ndarray, np.ndarray]:
    ids = np.array([11, 3, 42, 7, 100], dtype=np.int64)
    vectors = units(rng, len(ids))
    return PrototypeIndex.build(ids, vectors, STAMP), ids, vectors


def test_search_is_exact_cosine(
    built: tuple[PrototypeIndex, np.ndarray, np.ndarray], rng: np.random.Generator
) -> None:
    index, ids, vectors = built
    queries = units(rng, 4)
    sims, got = index.search(queries, 3)
    brute = queries @ vectors.T
    order = np.argsort(-brute, axis=1)[:, :3]
    np.testing.assert_array_equal(got, ids[order])
    np.testing.assert_allclose(sims, np.take_along_axis(brute, order, axis=1), atol=1e-6)
    # Always (n, k): slots past the five prototypes hold id -1 and similarity -inf.
    sims, got = index.search(queries, 50)
    assert got.shape == sims.shape == (4, 50) and sims.dtype == np.float32
    assert set(got[:, :5].ravel()) == set(ids.tolist())
    assert (got[:, 5:] == -1).all() and np.isneginf(sims[:, 5:]).all()
    assert index.search(queries, 0)[1].shape == (4, 0)
    with pytest.raises(ValueError):
        index.search(queries[:, :5], 1)


def test_upsert_replaces_and_remove_drops(
    built: tuple[PrototypeIndex, np.ndarray, np.ndarray], rng: np.random.Generator
) -> None:
    index = built[0]
    fresh = units(rng, 1)
    index.upsert([42], fresh)
    assert index.count == 5
    sims, got = index.search(fresh, 1)
    assert got[0, 0] == 42 and sims[0, 0] == pytest.approx(1.0, abs=1e-6)
    index.remove([42, 9999])
    assert index.count == 4 and 42 not in index.ids()
    with pytest.raises(ValueError, match="duplicate"):
        index.upsert([1, 1], units(rng, 2))
    with pytest.raises(ValueError):
        index.upsert([1], units(rng, 1, DIM + 1))


def test_save_load_round_trip(
    built: tuple[PrototypeIndex, np.ndarray, np.ndarray], tmp_path: Path, rng: np.random.Generator
) -> None:
    index, ids, _ = built
    path = tmp_path / "deep" / "g.faiss"
    index.save(path)
    data = path.read_bytes()
    assert data.startswith(MAGIC)
    header = json.loads(data[len(MAGIC) : data.index(b"\n", len(MAGIC))])
    assert {k: header[k] for k in ("revision", "model_name", "model_sha256", "dim", "count")} == {
        "revision": 7,
        "model_name": "m",
        "model_sha256": "f" * 64,
        "dim": DIM,
        "count": 5,
    }
    loaded = PrototypeIndex.load(path, STAMP)
    assert loaded is not None
    assert loaded.stamp == STAMP and sorted(loaded.ids().tolist()) == sorted(ids.tolist())
    queries = units(rng, 3)
    for a, b in zip(index.search(queries, 5), loaded.search(queries, 5), strict=True):
        np.testing.assert_array_equal(a, b)
    # read() skips the stamp check (inspection), but not the integrity checks.
    anyhow = PrototypeIndex.read(path)
    assert anyhow is not None and anyhow.stamp == STAMP and anyhow.count == 5
    # Saving again replaces the file atomically and leaves no temporary behind.
    loaded.restamp(8)
    loaded.save(path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["g.faiss"]
    assert PrototypeIndex.load(path, STAMP) is None
    assert PrototypeIndex.load(path, IndexStamp(8, "m", "f" * 64, DIM)) is not None


def test_empty_index_round_trips(tmp_path: Path, rng: np.random.Generator) -> None:
    empty = PrototypeIndex.build(np.zeros(0, np.int64), np.zeros((0, DIM), np.float32), STAMP)
    empty.save(tmp_path / "e.faiss")
    loaded = PrototypeIndex.load(tmp_path / "e.faiss", STAMP)
    assert loaded is not None and loaded.count == 0
    assert (loaded.search(units(rng, 2), 3)[1] == -1).all()


@pytest.mark.parametrize(
    "other",
    [
        IndexStamp(8, "m", "f" * 64, DIM),
        IndexStamp(7, "n", "f" * 64, DIM),
        IndexStamp(7, "m", "e" * 64, DIM),
        IndexStamp(7, "m", "f" * 64, DIM + 1),
    ],
)
def test_stale_stamp_is_refused(
    built: tuple[PrototypeIndex, np.ndarray, np.ndarray],
    tmp_path: Path,
    other: IndexStamp,
    caplog: pytest.LogCaptureFixture,
) -> None:
    built[0].save(tmp_path / "g.faiss")
    with caplog.at_level(logging.INFO, logger="facerec.gallery.index"):
        assert PrototypeIndex.load(tmp_path / "g.faiss", other) is None
    assert "stale" in caplog.text


@pytest.mark.parametrize(
    "damage", ["missing", "junk", "truncated", "flipped", "bad-json", "lying-count"]
)
def test_damaged_file_is_refused(
    built: tuple[PrototypeIndex, np.ndarray, np.ndarray],
    tmp_path: Path,
    damage: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "g.faiss"
    built[0].save(path)
    data = path.read_bytes()
    cut = data.index(b"\n", len(MAGIC)) + 1
    header = json.loads(data[len(MAGIC) : cut])
    if damage == "missing":
        path.unlink()
    elif damage == "junk":
        path.write_bytes(bytes(range(256)) * 8)
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flipped":
        path.write_bytes(data[:-5] + bytes([data[-5] ^ 1]) + data[-4:])
    elif damage == "bad-json":
        path.write_bytes(MAGIC + b"{not json\n" + data[cut:])
    else:
        header["count"] = 4
        path.write_bytes(MAGIC + json.dumps(header).encode() + b"\n" + data[cut:])
    with caplog.at_level(logging.INFO, logger="facerec.gallery.index"):
        assert PrototypeIndex.load(path, STAMP) is None
        assert PrototypeIndex.read(path) is None
    assert ("no prototype index" if damage == "missing" else "damaged") in caplog.text
