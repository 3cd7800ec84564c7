"""PrototypeIndex layouts: exact and IVF behind one interface, auto choice, stamps that tell them apart."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import faiss
import numpy as np
import pytest

from facerec import runtime
from facerec.gallery.index import (
    IVF_MIN,
    MAGIC,
    IndexKind,
    IndexLayout,
    IndexPolicy,
    IndexStamp,
    PrototypeIndex,
    VectorSearch,
)

DIM = 128
STAMP = IndexStamp(revision=3, model_name="m", model_sha256="a" * 64, dim=DIM)
EXACT = IndexPolicy(kind=IndexKind.EXACT)
IVF = IndexPolicy(kind=IndexKind.IVF)
KINDS = {"exact": EXACT, "ivf": IVF}


def face_like(
    rng: np.random.Generator, n: int, n_queries: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Prototypes (n, DIM) and queries of their first `n_queries` people, shaped like face embeddings.

    Identity centres lean towards one shared direction and spread unevenly
    over the axes (strangers' cosines ~0.1 +- 0.1, as for real face models); a
    prototype is the mean of three noisy samples of its centre and a query is
    a fresh sample (~0.7 to its own prototype). Uniform random vectors would
    make every ANN look perfect; this is the hard case it must pass.
    """
    mean = rng.normal(size=DIM)
    mean /= np.linalg.norm(mean)
    spread = (np.arange(DIM) + 1.0) ** -0.35
    axes = np.linalg.qr(rng.normal(size=(DIM, DIM)))[0] * (spread / np.linalg.norm(spread))
    centres = 0.45 * mean + rng.normal(size=(n, DIM)) @ axes.T
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)

    def sample(c: np.ndarray) -> np.ndarray:
        x = c + rng.uniform(0.5, 1.2, (len(c), 1)) * rng.normal(size=c.shape) / np.sqrt(DIM)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    protos = sample(centres) + sample(centres) + sample(centres)
    protos /= np.linalg.norm(protos, axis=1, keepdims=True)
    return protos.astype(np.float32), sample(centres[:n_queries]).astype(np.float32)


@pytest.fixture(scope="module")
def people() -> tuple[np.ndarray, np.ndarray]:
    """2,500 people (ids 1000, 1003, ...) and their prototypes."""
    protos, _ = face_like(np.random.default_rng(5), 2_500)
    return np.arange(2_500, dtype=np.int64) * 3 + 1000, protos


def header(path: Path) -> dict:
    data = path.read_bytes()
    assert data.startswith(MAGIC)
    return json.loads(data[len(MAGIC) : data.index(b"\n", len(MAGIC))])


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_round_trips_with_its_stamp(
    kind: str, people: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    ids, protos = people
    index = PrototypeIndex.build(ids, protos, STAMP, KINDS[kind])
    assert index.layout.kind == kind
    path = tmp_path / "g.faiss"
    index.save(path)
    layout = header(path)["layout"]
    assert layout["kind"] == kind
    if kind == "ivf":
        assert layout["nlist"] == index.layout.nlist >= 2 and layout["pq_m"] == DIM // 2
        assert layout["nprobe"] == index.layout.nprobe and layout["rerank"] == index.layout.rerank
    loaded = PrototypeIndex.load(path, STAMP, KINDS[kind])
    assert loaded is not None and loaded.layout == index.layout and loaded.count == len(ids)
    queries = protos[:50] + 0.05 * np.random.default_rng(1).normal(size=(50, DIM)).astype(
        np.float32
    )
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    for a, b in zip(index.search(queries, 5), loaded.search(queries, 5), strict=True):
        np.testing.assert_array_equal(a, b)
    assert (loaded.search(queries, 1)[1][:, 0] == ids[:50]).all()
    inspected = PrototypeIndex.read(path)
    assert inspected is not None and inspected.layout == index.layout


def test_a_file_of_another_layout_is_rebuilt_not_misread(
    people: tuple[np.ndarray, np.ndarray], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ids, protos = people
    exact_file, ivf_file = tmp_path / "exact.faiss", tmp_path / "ivf.faiss"
    PrototypeIndex.build(ids, protos, STAMP, EXACT).save(exact_file)
    ivf = PrototypeIndex.build(ids, protos, STAMP, IVF)
    ivf.save(ivf_file)
    nlist = ivf.layout.nlist
    with caplog.at_level(logging.INFO, logger="facerec.gallery.index"):
        assert PrototypeIndex.load(exact_file, STAMP, IVF) is None
        assert PrototypeIndex.load(ivf_file, STAMP, EXACT) is None
        # Other cells: another structure.
        assert (
            PrototypeIndex.load(ivf_file, STAMP, IndexPolicy(IndexKind.IVF, nlist=nlist - 1))
            is None
        )
        # auto wants exact for 2,500 people unless told otherwise.
        assert PrototypeIndex.load(ivf_file, STAMP) is None
        assert PrototypeIndex.load(exact_file, STAMP) is not None
    assert caplog.text.count("the policy wants") == 4
    # Search parameters are not structure: the policy's nprobe is applied, no rebuild.
    probing = PrototypeIndex.load(ivf_file, STAMP, IndexPolicy(IndexKind.IVF, nprobe=3))
    assert probing is not None and probing.layout.nprobe == 3
    auto_small = IndexPolicy(exact_below=2_000)
    loaded = PrototypeIndex.load(ivf_file, STAMP, auto_small)
    assert loaded is not None and loaded.layout.kind is IndexKind.IVF


def test_a_header_that_lies_about_the_layout_is_refused(
    people: tuple[np.ndarray, np.ndarray], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ids, protos = people
    path = tmp_path / "g.faiss"
    PrototypeIndex.build(ids, protos, STAMP, IVF).save(path)
    data = path.read_bytes()
    cut = data.index(b"\n", len(MAGIC)) + 1
    real = json.loads(data[len(MAGIC) : cut])

    def rewrite(h: dict) -> None:
        path.write_bytes(MAGIC + json.dumps(h).encode() + b"\n" + data[cut:])

    fewer_cells = {**real, "layout": {**real["layout"], "nlist": real["layout"]["nlist"] - 1}}
    rewrite(fewer_cells)
    policy = IndexPolicy(IndexKind.IVF, nlist=fewer_cells["layout"]["nlist"])
    with caplog.at_level(logging.WARNING, logger="facerec.gallery.index"):
        assert PrototypeIndex.load(path, STAMP, policy) is None
        # An IVF file relabelled exact: its sections do not fit the kind.
        exact_layout = {"kind": "exact", "nlist": 0, "pq_m": 0, "nprobe": 0, "rerank": 0}
        rewrite({**real, "layout": exact_layout})
        assert PrototypeIndex.load(path, STAMP, EXACT) is None
        rewrite({**real, "layout": {**real["layout"], "kind": "hnsw"}})
        assert PrototypeIndex.read(path) is None
    assert caplog.text.count("damaged") == 3


def test_a_version_1_file_is_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    old = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))
    old.add_with_ids(np.eye(DIM, dtype=np.float32)[:3], np.array([1, 2, 3], dtype=np.int64))
    payload = faiss.serialize_index(old).tobytes()
    head = {"revision": 3, "model_name": "m", "model_sha256": "a" * 64, "dim": DIM, "count": 3}
    path = tmp_path / "old.faiss"
    path.write_bytes(b"FACEREC-INDEX 1\n" + json.dumps(head).encode() + b"\n" + payload)
    with caplog.at_level(logging.INFO, logger="facerec.gallery.index"):
        assert PrototypeIndex.load(path, STAMP) is None
    assert "older format" in caplog.text and "damaged" not in caplog.text


@pytest.mark.parametrize("kind", KINDS)
def test_upsert_and_remove_keep_answers_exact_for_changed_people(
    kind: str, people: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    ids, protos = people
    index = PrototypeIndex.build(ids, protos, STAMP, KINDS[kind])
    gone, moved, twin = int(ids[10]), int(ids[20]), int(ids[30])
    index.remove([gone])
    # `moved` re-enrols with a face close to `twin`'s: both must now be found there, exactly.
    new_face = protos[30] + 0.2 * np.random.default_rng(2).normal(size=DIM).astype(np.float32)
    new_face /= np.linalg.norm(new_face)
    index.upsert([moved], new_face[None])
    assert index.layout.kind == kind and index.count == len(ids) - 1
    for current in (index, _reloaded(index, tmp_path, KINDS[kind])):
        sims, got = current.search(np.stack([protos[10], protos[20], new_face]), 10)
        assert gone not in got
        assert moved not in got[1]  # its old face is nobody's now
        assert got[2, 0] == moved and sims[2, 0] == pytest.approx(1.0, abs=1e-5)
        assert got[2, 1] == twin
        assert sims[2, 1] == pytest.approx(float(new_face @ protos[30]), abs=1e-5)
        assert gone not in current.ids() and moved in current.ids()


def _reloaded(index: PrototypeIndex, tmp_path: Path, policy: IndexPolicy) -> PrototypeIndex:
    index.save(tmp_path / "g.faiss")
    loaded = PrototypeIndex.load(tmp_path / "g.faiss", STAMP, policy)
    assert loaded is not None
    return loaded


def test_auto_is_exact_when_small_and_ivf_when_large(people: tuple[np.ndarray, np.ndarray]) -> None:
    ids, protos = people
    policy = IndexPolicy(exact_below=2_000)
    assert PrototypeIndex.build(ids[:1_900], protos[:1_900], STAMP, policy).layout.kind == "exact"
    grown = PrototypeIndex.build(ids[:1_500], protos[:1_500], STAMP, policy)
    assert grown.layout.kind == "exact"
    grown.upsert(ids[1_500:], protos[1_500:])  # crosses 2,000: re-laid out as IVF
    assert grown.layout.kind == "ivf" and grown.count == len(ids)
    assert (grown.search(protos[-5:], 1)[1][:, 0] == ids[-5:]).all()
    # Hysteresis: IVF stays until the gallery falls below half the threshold.
    grown.remove(ids[:1_400])
    assert grown.layout.kind == "ivf" and grown.count == 1_100
    grown.remove(ids[1_400:1_501])
    assert grown.layout.kind == "exact" and grown.count == 999
    assert (grown.search(protos[-5:], 1)[1][:, 0] == ids[-5:]).all()
    # The default threshold keeps 2,500 people exact; kind=ivf below IVF_MIN stays exact.
    assert PrototypeIndex.build(ids, protos, STAMP).layout.kind == "exact"
    small = PrototypeIndex.build(ids[: IVF_MIN - 1], protos[: IVF_MIN - 1], STAMP, IVF)
    assert small.layout == IndexLayout(IndexKind.EXACT)


def test_ivf_recall_at_1_on_a_face_like_gallery() -> None:
    protos, queries = face_like(np.random.default_rng(11), 20_000, 1_000)
    ids = np.arange(len(protos), dtype=np.int64)
    truth = np.argmax(queries @ protos.T, axis=1)
    index = PrototypeIndex.build(ids, protos, STAMP, IVF)
    assert index.layout.kind is IndexKind.IVF
    sims, got = index.search(queries, 10)
    recall = float(np.mean(got[:, 0] == truth))
    assert recall >= 0.99, recall
    # Re-ranked: the similarities are the true cosines, not code estimates.
    np.testing.assert_allclose(
        sims[:, 0], np.einsum("nd,nd->n", queries, protos[got[:, 0]]), atol=1e-5
    )
    # Too few cells probed loses people: the recall above is the probe setting's doing.
    index.apply_policy(IndexPolicy(IndexKind.IVF, nlist=index.layout.nlist, nprobe=1))
    assert float(np.mean(index.search(queries, 1)[1][:, 0] == truth)) < 0.9


@pytest.mark.parametrize("kind", KINDS)
def test_search_pads_to_k_and_satisfies_the_protocol(
    kind: str, people: tuple[np.ndarray, np.ndarray]
) -> None:
    ids, protos = people
    index: VectorSearch = PrototypeIndex.build(ids, protos, STAMP, KINDS[kind])
    assert index.count == len(ids) and index.dim == DIM
    sims, got = index.search(protos[:3], len(ids) + 7)
    assert sims.shape == got.shape == (3, len(ids) + 7)
    assert sims.dtype == np.float32 and got.dtype == np.int64
    assert (got[:, -7:] == -1).all() and np.isneginf(sims[:, -7:]).all()
    real = got[got >= 0]
    assert set(real.tolist()) <= set(ids.tolist())
    found = sims[got >= 0].reshape(-1)
    assert np.all(np.isfinite(found))


def test_faiss_gets_the_process_thread_count(
    people: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    ids, protos = people
    index = PrototypeIndex.build(ids, protos, STAMP, IVF)
    monkeypatch.setattr(runtime, "_applied", None)
    monkeypatch.setenv(runtime.ENV_THREADS, "1")
    faiss.omp_set_num_threads(3)
    index.search(protos[:2], 3)
    assert faiss.omp_get_max_threads() == 1
    monkeypatch.setenv(runtime.ENV_THREADS, "2")
    index.upsert(ids[:1], protos[:1])
    assert faiss.omp_get_max_threads() == 2


def test_policy_refuses_nonsense() -> None:
    with pytest.raises(TypeError):
        IndexPolicy(kind="ivf")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        IndexKind("annoy")
    for bad in ({"nprobe": 0}, {"nlist": -3}, {"rerank": True}, {"exact_below": 0}):
        with pytest.raises(ValueError, match="positive integer"):
            IndexPolicy(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        IndexLayout(IndexKind.AUTO)
