"""PostgreSQL's `--index hnsw`: in the database, on an HNSW index of the pinned dimension, as exact as FAISS."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import bindparam, text
from sqlalchemy.engine import make_url

from facerec.errors import GalleryError
from facerec.gallery import Gallery
from facerec.gallery.index_kind import IndexKind
from facerec.gallery.pgvector_search import HNSW_INDEX, nearest_query
from facerec.gallery.schema import Identity, Prototype
from facerec.storage import Embedding

from ..db_rows import execute, rows
from ..migrations_support import orm_diff
from .test_store import DIM, MODEL, OTHER, sample, unit


@pytest.fixture()
def gallery(postgres_url: str) -> Iterator[Gallery]:
    with Gallery.open(postgres_url, index=IndexKind.HNSW) as g:
        yield g


def index_definitions(url: str) -> list[str]:
    found = rows(url, "SELECT indexdef FROM pg_indexes WHERE indexname = ?", HNSW_INDEX)
    return [r[0] for r in found]


def test_the_index_follows_the_pinned_dimension(gallery: Gallery, postgres_url: str) -> None:
    rng = np.random.default_rng(3)
    assert index_definitions(postgres_url) == []  # nothing pinned, nothing to index
    gallery.enroll("alice", [sample(rng)], MODEL)
    (definition,) = index_definitions(postgres_url)
    assert "USING hnsw" in definition and "vector_cosine_ops" in definition
    assert f"vector({DIM})" in definition
    assert orm_diff(postgres_url) == []  # schema comparisons leave the per-gallery index out

    # The search's own statement walks that index (sequential scans off: a two-row
    # table would otherwise be scanned, which says nothing about the index).
    explain = text(f"EXPLAIN {nearest_query(DIM).text}").bindparams(
        bindparam("q", type_=Embedding())
    )
    with gallery.database.read() as s:
        s.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(row[0] for row in s.execute(explain, {"q": unit(rng), "k": 3}))
    assert HNSW_INDEX in plan, plan

    # A re-embedding into another dimension rebuilds it; an empty re-pin drops it.
    new = {smp.id: unit(rng, 8) for smp in gallery.samples()}
    gallery.reembed(OTHER, new)
    (definition,) = index_definitions(postgres_url)
    assert "vector(8)" in definition and f"vector({DIM})" not in definition
    assert gallery.search(next(iter(new.values()))[None, :], 1)[0][0].name == "alice"


def test_search_agrees_with_exact_cosine(postgres_url: str) -> None:
    """HNSW is approximate; at gallery sizes with ef_search raised it returns the exact answer.

    Sequential scans are switched off for this database, so the planner walks
    the index even for a table this small (it would rather scan 300 rows).
    """
    name = make_url(postgres_url).database
    execute(postgres_url, f'ALTER DATABASE "{name}" SET enable_seqscan = off')
    with Gallery.open(postgres_url, index=IndexKind.HNSW) as gallery:
        _agrees_with_exact_cosine(gallery)


def _agrees_with_exact_cosine(gallery: Gallery) -> None:
    rng = np.random.default_rng(11)
    n = 300
    gallery.enroll("p000", [sample(rng)], MODEL)  # pins the dimension: the index exists
    # The rest straight into the tables, in one transaction (the index is maintained on
    # insert): this test is about the search, and 300 enrolments would take a while.
    now = datetime.now(UTC)
    with gallery.database.write() as s:
        people = [Identity(name=f"p{i:03d}", created_at=now, updated_at=now) for i in range(1, n)]
        s.add_all(people)
        s.flush()
        s.add_all(
            Prototype(identity_id=p.id, vector=unit(rng), n_samples=1, updated_at=now)
            for p in people
        )
    queries = np.stack([unit(rng) for _ in range(20)])
    names, prototypes = gallery.prototypes()
    exact = queries @ prototypes.T
    for k in (1, 5, 50):
        hits = gallery.search(queries, k)
        for row, got in zip(exact, hits, strict=True):
            order = np.argsort(-row)[:k]
            assert [h.name for h in got] == [names[j] for j in order]
            np.testing.assert_allclose([h.similarity for h in got], row[order], atol=1e-5)
    # More than pgvector's ef_search can hold: the exact scan answers, with everyone.
    assert [len(h) for h in gallery.search(queries[:2], 5000)] == [n, n]


def test_no_index_file_and_no_path(postgres_url: str, tmp_path: Path) -> None:
    for kind in (IndexKind.AUTO, IndexKind.HNSW):
        with pytest.raises(ValueError, match="no index file"):
            Gallery.open(postgres_url, index_path=tmp_path / "g.faiss", index=kind)
    with Gallery.open(postgres_url) as g:
        assert g.index_path is None and g.info().index_path is None
        with pytest.raises(GalleryError, match="has no file"):
            _ = g.path
        g.enroll("alice", [sample(np.random.default_rng(1))], MODEL)
        g.search(np.stack([unit(np.random.default_rng(2))]), 1)
    assert list(tmp_path.iterdir()) == []


def test_opening_with_hnsw_builds_the_index_the_default_does_not_keep(postgres_url: str) -> None:
    rng = np.random.default_rng(5)
    with Gallery.open(postgres_url) as g:  # the default: a FAISS cache, no index in the database
        g.enroll("alice", [sample(rng)], MODEL)
    assert index_definitions(postgres_url) == []
    with Gallery.open(postgres_url, index=IndexKind.HNSW) as g:
        (definition,) = index_definitions(postgres_url)
        assert f"vector({DIM})" in definition and "WHERE" in definition
        assert g.search(np.stack([g.prototype("alice")]), 1)[0][0].name == "alice"
