"""The FAISS cache follows other writers by patching itself, on SQLite and PostgreSQL alike.

Two `Gallery` objects on one database stand for two processes (each keeps
its own cache in memory). After the first writes, the second's next search
must answer from the new state WITHOUT rebuilding: the rows written after
its revision and the tombstones of the people deleted since (both kept by
migration 0011's triggers, whatever path wrote) bring it along. Only a cache
behind the pruned tombstones may rebuild, and then it must.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from facerec.gallery import Gallery, editing, faiss_search
from facerec.gallery import store as store_module
from facerec.gallery.index import PrototypeIndex

from ..db_rows import rows
from .test_store import MODEL, sample, unit

PEOPLE = 30


def search_cache(g: Gallery) -> PrototypeIndex | None:
    return g._search.cached  # type: ignore[attr-defined,no-any-return]


@pytest.fixture()
def two(db_url: str) -> Iterator[tuple[Gallery, Gallery, np.ndarray]]:
    """Two galleries on one database, `PEOPLE` people enrolled, the second's cache built."""
    rng = np.random.default_rng(7)
    with Gallery.open(db_url) as writer, Gallery.open(db_url) as reader:
        embs = np.stack([unit(rng) for _ in range(PEOPLE)])
        for i, e in enumerate(embs):
            writer.enroll(f"p{i:02d}", [sample(rng, emb=e)], MODEL)
        assert reader.search(embs[:1], 1)[0][0].name == "p00"
        yield writer, reader, embs


def no_rebuilds(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> PrototypeIndex:
        raise AssertionError("the cache was rebuilt instead of patched")

    monkeypatch.setattr(PrototypeIndex, "build", refuse)


def identity_ids(db_url: str) -> set[int]:
    return {int(i) for (i,) in rows(db_url, "SELECT id FROM identities")}


def test_another_writer_is_followed_by_patching(
    two: tuple[Gallery, Gallery, np.ndarray], db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer, reader, embs = two
    cache = search_cache(reader)
    assert cache is not None and cache.stamp.revision == PEOPLE
    no_rebuilds(monkeypatch)
    monkeypatch.setattr(faiss_search, "_FETCH_ROWS", 1)  # PostgreSQL: one row per chunk
    rng = np.random.default_rng(8)
    newcomer = unit(rng)
    writer.enroll("newcomer", [sample(rng, emb=newcomer)], MODEL)
    writer.remove("p03")
    writer.enroll("p05", [sample(rng, emb=unit(rng))], MODEL)  # a second photo moves p05
    (s5,) = editing.sample_ids(writer, "p07")
    editing.delete_samples(writer, [s5])  # p07 emptied: deleted by another path

    hits = reader.search(np.stack([newcomer, embs[3], embs[7]]), PEOPLE + 5)
    assert hits[0][0].name == "newcomer"
    names = {h.name for h in hits[1]}
    assert "p03" not in names and "p07" not in names and len(names) == PEOPLE - 1
    assert search_cache(reader) is cache  # patched in place, not rebuilt
    assert cache.stamp.revision == writer.revision
    assert set(cache.ids().tolist()) == identity_ids(db_url)  # the tombstones were applied
    # p05's prototype is now the mean of two photos' embeddings: the cache has the new one.
    got = {h.name: h.similarity for h in reader.search(embs[5:6], PEOPLE)[0]}
    np.testing.assert_allclose(got["p05"], float(writer.prototype("p05") @ embs[5]), atol=1e-5)


def test_triggers_stamp_rows_and_leave_tombstones_without_vectors(
    two: tuple[Gallery, Gallery, np.ndarray], db_url: str
) -> None:
    writer, _, _ = two
    stamped = dict(rows(db_url, "SELECT identity_id, revision FROM prototypes"))
    ids = dict(rows(db_url, "SELECT name, id FROM identities"))
    assert stamped[ids["p00"]] == 1 and stamped[ids["p29"]] == PEOPLE
    writer.remove("p01")
    (s2,) = editing.sample_ids(writer, "p02")
    editing.delete_samples(writer, [s2])
    assert sorted(rows(db_url, "SELECT identity_id, revision FROM prototype_tombstones")) == [
        (ids["p01"], PEOPLE + 1),
        (ids["p02"], PEOPLE + 2),
    ]
    columns = (
        [(r[1],) for r in rows(db_url, "PRAGMA table_info(prototype_tombstones)")]
        if db_url.endswith(".db")
        else rows(
            db_url,
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_name = 'prototype_tombstones'",
        )
    )
    assert sorted(c for (c,) in columns) == ["identity_id", "revision"]  # no face in it


def test_a_cache_behind_the_pruned_tombstones_rebuilds(
    two: tuple[Gallery, Gallery, np.ndarray], db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer, reader, embs = two
    before = search_cache(reader)
    monkeypatch.setattr(faiss_search, "_FETCH_ROWS", 4)  # PostgreSQL: the rebuild in chunks
    monkeypatch.setattr(store_module, "TOMBSTONES_KEPT", 1)
    monkeypatch.setattr(store_module, "TOMBSTONE_PRUNE_EVERY", 1)
    writer.remove("p04")  # its tombstone is pruned by the next write
    writer.set_threshold(MODEL.name, 0.5)
    assert rows(db_url, "SELECT identity_id FROM prototype_tombstones") == []
    hits = reader.search(embs[4:5], PEOPLE)[0]
    assert "p04" not in {h.name for h in hits}
    after = search_cache(reader)
    assert after is not before and after is not None
    assert set(after.ids().tolist()) == identity_ids(db_url)


def test_a_sqlite_file_behind_is_loaded_and_patched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "g.db"
    rng = np.random.default_rng(9)
    embs = np.stack([unit(rng) for _ in range(PEOPLE)])
    with Gallery.open(db) as first:
        for i, e in enumerate(embs):
            first.enroll(f"p{i:02d}", [sample(rng, emb=e)], MODEL)
        first.search(embs[:1], 1)  # the file is written at revision PEOPLE
    assert PrototypeIndex.read(db.with_suffix(".db.faiss")).stamp.revision == PEOPLE  # type: ignore[union-attr]
    with Gallery.open(db) as other:  # another process: wrote nothing yet, holds nothing
        other.remove("p02")
        other.enroll("p02b", [sample(rng, emb=embs[2])], MODEL)
    no_rebuilds(monkeypatch)
    with Gallery.open(db) as third:
        assert third.search(embs[2:3], 1)[0][0].name == "p02b"
        saved = PrototypeIndex.read(db.with_suffix(".db.faiss"))
        assert saved is not None and saved.stamp.revision == PEOPLE + 2 and saved.count == PEOPLE


def test_a_connection_the_server_dropped_is_replaced(postgres_url: str) -> None:
    """The search keeps one autocommit connection; a server that ended it costs a reconnect."""
    rng = np.random.default_rng(10)
    with Gallery.open(postgres_url) as g:
        e = unit(rng)
        g.enroll("alice", [sample(rng, emb=e)], MODEL)
        assert g.search(e[None], 1)[0][0].name == "alice"
        ended = rows(
            postgres_url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        assert ended and all(ok for (ok,) in ended)
        assert g.search(e[None], 1)[0][0].name == "alice"


def test_a_batch_naming_more_people_than_sqlite_takes_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """identify of a crowd asks 512 people per face: more ids than one SQLite statement holds."""
    monkeypatch.setattr(faiss_search, "_SQLITE_IDS", 7)  # slices of 7 ids, as 10,000 at scale
    rng = np.random.default_rng(11)
    with Gallery.open(tmp_path / "g.db") as g:
        embs = np.stack([unit(rng) for _ in range(PEOPLE)])
        for i, e in enumerate(embs):
            g.enroll(f"p{i:02d}", [sample(rng, emb=e)], MODEL)
        hits = g.search(embs, PEOPLE)
        assert all(len(row) == PEOPLE for row in hits)
        assert [row[0].name for row in hits] == [f"p{i:02d}" for i in range(PEOPLE)]
